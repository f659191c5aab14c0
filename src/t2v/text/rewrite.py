"""Prompt rewriting: words a model never saw in its training captions, mapped onto the nearest
phrase it did see, by the similarity of the frozen text encoder (all-MiniLM-L6-v2).

A model trained on a small caption language ("a big red disc moves to the left") conditions on
the text encoder's token states, and states of words outside that language ("a huge red ball
sliding towards the left") land where training never put anything. Sora and DALL-E 3 close this
gap by having a language model rewrite user prompts into the style of the training captions; this
is the same step with the sentence encoder we already ship instead of a language model:

1. words of the prompt that occur in the caption language are known; the others are unknown,
   except inflections of known words ("leftwards" is "left", "bigger" is "big");
2. every span of up to ``max_span`` words holding an unknown word is compared with every phrase
   of the caption language that keeps the span's known content words and adds a word (so
   "sliding towards the right" may become "moving to the right", never "moving left", and "red
   ball" never just "red"): the cosine of their pooled MiniLM embeddings, both set in a carrier
   sentence of the phrase's attribute ("the shape of a ball" against "the shape of a circle"),
   which tells the encoder what sense of the words is asked about. With a lexicon
   (``t2v.text.lexicon``: WordNet, by default), a span also scores as itself with an unknown word
   replaced by each of that word's synonyms and definitions ("ascending" as "go up", as "travel up",
   ...), at ``lexicon_weight`` times the cosine: the dictionary knows words MiniLM places poorly,
   and the weight below 1 keeps the words as typed ahead when they already match;
3. the spans replaced are the non-overlapping ones, scoring at least ``threshold``, at most one
   per attribute and object, that maximise the summed score of the unknown words they cover.

Prompts made only of known words come back unchanged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import torch
import torch.nn.functional as F

from t2v.errors import T2VError
from t2v.text.encoders import LRUCache

# Words that carry no attribute: a span may hold them without the phrase having to keep them.
STOPWORDS = frozenset({"a", "an", "the", "to", "towards", "toward", "of", "and", "that", "is", "in", "on", "at",
                       "its", "it", "with"})
VOCABULARIES = ("moving-shapes",)
MOVING_SHAPES_TEMPLATES = {"colour": "the colour {}", "size": "a {} object", "shape": "the shape of a {}",
                           "motion": "an object {}"}  # carrier sentences, one per attribute
# Endings that make a known word into an unknown one of the same meaning ("leftwards", "bigger").
SUFFIXES = ("s", "es", "er", "est", "ward", "wards", "ly")
WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


@dataclass(frozen=True)
class Replacement:
    span: str  # the prompt's words that were replaced
    phrase: str  # the caption-language phrase they became
    score: float  # cosine similarity of the two (pooled MiniLM, each in the attribute's carrier sentence)


@dataclass(frozen=True)
class Rewrite:
    prompt: str
    rewritten: str
    replacements: tuple[Replacement, ...] = field(default=())


def words_of(text: str) -> list[str]:
    return WORD.findall(text.lower())


@torch.no_grad()
def pooled_embeddings(texts: list[str], chunk: int = 64) -> torch.Tensor:
    """Unit-norm mean-pooled all-MiniLM-L6-v2 embeddings (len(texts), 384), float32 on the CPU.

    Texts go through in chunks of similar length, so that short ones are not padded to the longest."""
    from t2v.text.encoders import load_minilm

    tokenizer, model = load_minilm("cpu")
    ids = tokenizer(texts, truncation=True, max_length=32)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
    out = torch.empty(len(texts), model.config.hidden_size)
    for start in range(0, len(order), chunk):
        rows = order[start:start + chunk]
        tokens = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
        with torch.autocast("cpu", enabled=False):
            states = model(**tokens).last_hidden_state  # (n, L, 384)
        mask = tokens["attention_mask"].unsqueeze(-1).float()
        out[rows] = F.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    return out


class PromptRewriter:
    """``rewriter(prompt) -> prompt`` in a caption language (see the module docstring).

    ``phrases``: the training captions' phrases for each attribute ({"colour": ["red", ...], "motion":
    ["moves to the left", ...]}); ``known_words``: the other words of the training captions;
    ``templates``: a carrier sentence per attribute ("the shape of a {}"; "{}" where none is given);
    ``lexicon``: word -> phrases that may stand for it (``t2v.text.lexicon.WordNetLexicon``), scored at
    ``lexicon_weight`` times their cosine. Each clause of a prompt ("... and ...") gets at most one phrase
    per attribute, counting the attributes its known words already name."""

    def __init__(self, phrases: dict[str, list[str]], known_words: frozenset[str] = frozenset(), *,
                 templates: dict[str, str] | None = None, threshold: float = 0.4, max_span: int = 4,
                 separator: str = "and", vocabulary: str | None = None,
                 lexicon: Callable[[str], Sequence[str]] | None = None, lexicon_weight: float = 0.9) -> None:
        table = sorted({(" ".join(words_of(p)), slot) for slot, ps in phrases.items() for p in ps if words_of(p)})
        if not table:
            raise T2VError("a prompt rewriter needs at least one caption phrase")
        self.phrases = [p for p, _ in table]
        self.slot_names = sorted(phrases)
        self.slots = torch.tensor([self.slot_names.index(s) for _, s in table])  # (P,)
        self.phrase_words = [frozenset(p.split()) for p in self.phrases]
        self.word_slots: dict[str, set[int]] = {}
        for words, slot in zip(self.phrase_words, self.slots.tolist()):
            for w in words - STOPWORDS:
                self.word_slots.setdefault(w, set()).add(slot)
        self.known = frozenset(known_words) | frozenset(w for p in self.phrases for w in p.split()) | {separator}
        self.threshold, self.max_span, self.separator = threshold, max_span, separator
        self.lexicon, self.lexicon_weight = lexicon, lexicon_weight
        # text -> pooled MiniLM vector: a word's lexicon phrases come back in every prompt holding it
        self.vectors = LRUCache(20000)
        self.vectors_lock = threading.Lock()  # t2v serve rewrites from several threads
        self.vocabulary = vocabulary  # the name it is loaded by (load_rewriter), if any
        templates = templates or {}
        self.templates = [templates.get(name, "{}") for name in self.slot_names]
        for template in self.templates:
            if template.count("{}") != 1:
                raise T2VError(f"a carrier sentence holds '{{}}' once, where the phrase goes; got {template!r}")
        # phrase p set in the carrier sentence of its own attribute: (P, 384)
        self.phrase_vectors = pooled_embeddings([self.templates[s].format(p) for p, s in zip(self.phrases, self.slots)])

    def __call__(self, prompt: str) -> str:
        return self.rewrite(prompt).rewritten

    def stem(self, word: str) -> str:
        """A known content word that ``word`` is an inflection of ("leftwards" -> "left", "bigger" ->
        "big"), else ``word`` itself."""
        if word in self.known:
            return word
        for suffix in SUFFIXES:
            base = word[:-len(suffix)] if word.endswith(suffix) else ""
            for candidate in (base, base[:-1] if len(base) > 2 and base[-1] == base[-2] else ""):
                if len(candidate) > 1 and candidate in self.word_slots:
                    return candidate
        return word

    def rewrite(self, prompt: str) -> Rewrite:
        words = words_of(prompt)
        if all(w in self.known for w in words):
            return Rewrite(prompt, prompt)
        words = [self.stem(w) for w in words]
        clauses, current = [], []
        for w in words + [self.separator]:
            if w == self.separator:
                clauses.append(current)
                current = []
            else:
                current.append(w)
        out, replacements = [], []
        for clause in clauses:
            text, done = self.rewrite_clause(clause)
            out.append(text)
            replacements += done
        return Rewrite(prompt, f" {self.separator} ".join(t for t in out if t), tuple(replacements))

    def rewrite_clause(self, words: list[str]) -> tuple[str, list[Replacement]]:
        unknown = [w not in self.known for w in words]
        spans = self.candidate_spans(words, unknown) if any(unknown) else []
        if not spans:
            return " ".join(words), []
        variants = [self.variants(words, unknown, i, j) for i, j, _ in spans]
        allowed = torch.stack([a for _, _, a in spans])  # (S, P)
        named = self.named_slots(words, unknown)
        candidates = []  # (start, end, slot, phrase, score): the best phrase of each attribute for each span
        for slot, template in enumerate(self.templates):
            here = allowed & (self.slots == slot)  # (S, P)
            live = [s for s in range(len(spans)) if here[s].any()]  # spans that may become a phrase of this attribute
            if not live:
                continue
            texts = [template.format(t) for s in live for t, _ in variants[s]]
            weights = torch.tensor([w for s in live for _, w in variants[s]])  # (V,)
            scores = self.embed(texts) @ self.phrase_vectors.T * weights[:, None]  # (V, P)
            scores = torch.stack([v.amax(dim=0) for v in scores.split([len(variants[s]) for s in live])])  # (L, P)
            best, phrase = scores.masked_fill(~here[live], -2.0).max(dim=1)  # (L,): each span's best variant
            for row, s in enumerate(live):
                i, j, _ = spans[s]
                elsewhere = set().union(*(named[k] for k in range(len(words)) if not i <= k < j))
                if slot not in elsewhere and best[row].item() >= self.threshold:
                    candidates.append((i, j, slot, phrase[row].item(), best[row].item()))
        out, replacements, at = [], [], 0
        for i, j, _, p, score in self.best_cover(len(words), unknown, candidates):
            out += words[at:i] + [self.phrases[p]]
            replacements.append(Replacement(" ".join(words[i:j]), self.phrases[p], round(score, 4)))
            at = j
        return " ".join(out + words[at:]), replacements

    def variants(self, words: list[str], unknown: list[bool], i: int, j: int) -> list[tuple[str, float]]:
        """(text, weight) that span i:j scores as: itself (weight 1) and, with a lexicon, itself with one
        unknown word replaced by each phrase the lexicon gives for it (``lexicon_weight``). Function words
        are not looked up: WordNet's "in" is an inch, indium and Indiana."""
        out = [(" ".join(words[i:j]), 1.0)]
        if self.lexicon is None:
            return out
        for k in range(i, j):
            if unknown[k] and words[k] not in STOPWORDS:
                out += [(" ".join([*words[i:k], phrase, *words[k + 1:j]]), self.lexicon_weight)
                        for phrase in self.lexicon(words[k])]
        return out

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Pooled MiniLM vectors of ``texts`` (N, 384), through the cache ``vectors``."""
        with self.vectors_lock:
            found = {t: v for t in dict.fromkeys(texts) if (v := self.vectors.get(t)) is not None}
            missing = [t for t in dict.fromkeys(texts) if t not in found]
            if missing:
                for text, vector in zip(missing, pooled_embeddings(missing)):
                    self.vectors.put(text, vector)
                    found[text] = vector
        return torch.stack([found[t] for t in texts])

    def named_slots(self, words: list[str], unknown: list[bool]) -> list[set[int]]:
        """The attribute each known word names (when its phrases all have one), per word."""
        return [set() if u else s if len(s := self.word_slots.get(w, set())) == 1 else set()
                for w, u in zip(words, unknown)]

    def candidate_spans(self, words: list[str], unknown: list[bool]) -> list[tuple[int, int, torch.Tensor]]:
        """(start, end, phrases allowed (P,) bool) for each span of up to ``max_span`` words holding an
        unknown word: a phrase is allowed when it holds the span's known content words and adds one."""
        spans = []
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + self.max_span) + 1):
                if not any(unknown[i:j]):
                    continue
                kept = {w for w, u in zip(words[i:j], unknown[i:j]) if not u and w not in STOPWORDS}
                allowed = torch.tensor([kept <= pw and bool(pw - kept - STOPWORDS) for pw in self.phrase_words])
                if allowed.any():
                    spans.append((i, j, allowed))
        return spans

    @staticmethod
    def best_cover(n: int, unknown: list[bool], candidates: list[tuple[int, int, int, int, float]]) -> list[tuple]:
        """Non-overlapping candidates (start, end, slot, phrase, score), at most one per attribute,
        maximising the sum of score x unknown words covered: each unknown word goes to the best
        phrase of a span it can share ("floating upward" is one motion, not two), and a word no
        phrase fits stays as it is. Ties go to the cover with more words in spans."""
        best = {(0, 0): ((0.0, 0), ())}  # (words read, attributes used as a bit mask) -> (value, spans)
        for i in range(n):
            for (_, used), (value, chosen) in [kv for kv in best.items() if kv[0][0] == i]:
                moves = [((i + 1, used), (value, chosen))]  # word i kept as it is
                for c in candidates:
                    start, end, slot, _, score = c
                    if start == i and not used >> slot & 1:
                        gain = (value[0] + score * sum(unknown[start:end]), value[1] + end - start)
                        moves.append(((end, used | 1 << slot), (gain, chosen + (c,))))
                for key, item in moves:
                    if key not in best or item[0] > best[key][0]:
                        best[key] = item
        return list(max((item for (read, _), item in best.items() if read == n), key=lambda item: item[0])[1])


def moving_shapes_rewriter(**options) -> PromptRewriter:
    """A rewriter into the caption language of the Moving Shapes training split (``t2v.data.vocab``), with
    WordNet as its lexicon unless ``lexicon`` says otherwise (None: MiniLM alone)."""
    from t2v.data.vocab import COLOURS, MOTIONS, SHAPES, SIZES, TRAIN_MOTION_PHRASES, TRAIN_SYNONYMS
    from t2v.text.lexicon import WordNetLexicon

    phrases = {"colour": list(COLOURS),
               "size": [w for size in SIZES for w in TRAIN_SYNONYMS[size]],
               "shape": [w for shape in SHAPES for w in TRAIN_SYNONYMS[shape]],
               "motion": [*(p for ps in TRAIN_MOTION_PHRASES.values() for p in ps), "staying still",
                          *(f"moving {m}" for m in MOTIONS if m != "still")]}  # with the canonical template's
    options = {"templates": MOVING_SHAPES_TEMPLATES, "lexicon": WordNetLexicon(), **options}
    return PromptRewriter(phrases, frozenset({"a", "the"}), vocabulary="moving-shapes", **options)


@lru_cache(maxsize=None)
def load_rewriter(vocabulary: str) -> PromptRewriter:
    """The rewriter of a named caption vocabulary (one per process)."""
    if vocabulary == "moving-shapes":
        return moving_shapes_rewriter()
    raise T2VError(f"unknown caption vocabulary {vocabulary!r}; known: {', '.join(VOCABULARIES)}")
