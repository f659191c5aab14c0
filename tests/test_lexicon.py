"""WordNet read from its dictionary files (t2v.text.lexicon): bisection of sorted lines, morphology, the
order of senses, and the phrases the prompt rewriter scores for an unknown word."""

from __future__ import annotations

import io

import pytest

from t2v.errors import T2VError
from t2v.text.lexicon import WordNetDictionary, WordNetLexicon, shared_dictionary, sorted_line, wordnet_directory


@pytest.fixture(scope="module")
def wordnet():
    return shared_dictionary(str(wordnet_directory()))


def test_bisection_finds_every_line_of_a_sorted_file_and_nothing_else():
    lines = [b"  1 license text\r\n", b"  2 more license\r\n"] + [f"{k:08d} line {k}\r\n".encode() for k in range(0, 500, 7)]
    text = b"".join(lines)
    f = io.BytesIO(text)
    for k in range(0, 500, 7):
        assert sorted_line(f, len(text), f"{k:08d}".encode()) == f"{k:08d} line {k}\r\n".encode()
    for missing in (b"00000001", b"00000499", b"99999999", b"0"):
        assert sorted_line(f, len(text), missing) is None


def test_morphology_finds_lemmas_by_rule_and_by_exception(wordnet):
    assert wordnet.lemma("ascending", "verb") == "ascend"
    assert wordnet.lemma("boxes", "noun") == "box"
    assert wordnet.lemma("went", "verb") == "go"  # verb.exc
    assert wordnet.lemma("mice", "noun") == "mouse"  # noun.exc
    assert wordnet.lemma("xyzzyq", "noun") is None


def test_senses_come_nouns_first_with_glosses_cut_before_their_examples(wordnet):
    senses = wordnet.senses("ascending")
    assert senses[0].lemmas[:2] == ("rise", "ascent")  # the noun sense comes before the verb's
    travel_up = next(s for s in senses if "go up" in s.lemmas)
    assert travel_up.definition == "travel up"  # not 'travel up, "we ascended the mountain"'
    satellites = [s.satellite for s in wordnet.senses("minuscule")]  # 2 nouns, 1 head adjective, 2 satellites
    assert satellites == [False, False, False, True, True]
    assert wordnet.senses("xyzzyq") == []


def test_the_lexicon_gives_synonyms_and_definitions_of_the_first_senses():
    lexicon = WordNetLexicon(senses=2)
    phrases = lexicon("ascending")
    assert "go up" in phrases and "travel up" in phrases and "ascending" not in phrases
    assert "become king or queen" not in phrases  # the third verb sense is past the first two senses
    assert lexicon("teeny") == ("bitty", "bittie", "teensy", "teentsy", "wee", "weeny", "weensy", "teensy-weensy",
                                "teeny-weeny", "itty-bitty", "itsy-bitsy", "(used informally) very small")
    assert lexicon("xyzzyq") == ()


def test_a_folder_without_wordnet_is_a_one_line_error(tmp_path):
    with pytest.raises(T2VError, match="no WordNet dictionary files"):
        WordNetDictionary(tmp_path)
    with pytest.raises(T2VError, match="no WordNet dictionary files"):
        WordNetLexicon(directory=tmp_path)("ascending")
