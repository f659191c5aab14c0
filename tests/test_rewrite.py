"""Prompt rewriting into the training captions' words (all-MiniLM-L6-v2 similarity and WordNet), and how
pipelines and checkpoints choose it. The words here are not the paraphrase prompt set's."""

from __future__ import annotations

import json

import pytest
import torch

from t2v.checkpoint import save_model
from t2v.errors import T2VError
from t2v.eval.shapes import parse_prompt
from t2v.pipelines.base import Pipeline, load_pipeline
from t2v.text.rewrite import PromptRewriter, load_rewriter, moving_shapes_rewriter, pooled_embeddings


@pytest.fixture(scope="module")
def shapes_rewriter():
    return load_rewriter("moving-shapes")


@pytest.fixture(scope="module")
def minilm_alone():
    return moving_shapes_rewriter(lexicon=None)


def attributes(prompt):
    return [(o.size, o.colour, o.shape, o.motion) for o in parse_prompt(prompt)]


def test_prompts_in_the_caption_words_come_back_unchanged(shapes_rewriter):
    for prompt in ("a large red circle moving left", "The little blue disc moves to the left and a cyan block goes up",
                   "a green triangle that does not move"):
        done = shapes_rewriter.rewrite(prompt)
        assert done.rewritten == prompt and done.replacements == ()


@pytest.mark.parametrize("prompt, expected", [
    ("a giant blue sphere shifting right", ("large", "blue", "circle", "right")),
    ("a petite yellow rectangle floating upward", ("small", "yellow", "square", "up")),
    ("the massive white orb drifting to the right", ("large", "white", "circle", "right")),
    ("a mini cyan triangle frozen in place", ("small", "cyan", "triangle", "still")),
])
def test_unseen_words_become_the_nearest_caption_phrases(shapes_rewriter, prompt, expected):
    rewritten = shapes_rewriter(prompt)
    assert attributes(rewritten) == [expected], rewritten
    assert all(w in shapes_rewriter.known for w in rewritten.split()), rewritten


def test_inflections_of_known_words_keep_their_meaning(shapes_rewriter):
    assert shapes_rewriter.stem("leftwards") == "left" and shapes_rewriter.stem("bigger") == "big"
    assert shapes_rewriter.stem("zebra") == "zebra"
    assert attributes(shapes_rewriter("a bigger red square heading rightwards")) == [("large", "red", "square", "right")]


def test_each_clause_gets_at_most_one_phrase_per_attribute(shapes_rewriter):
    rewritten = shapes_rewriter("a giant green sphere ascending and a petite magenta tile idle")
    first, second = rewritten.split(" and ")
    for clause in (first, second):
        assert len(parse_prompt(clause)) == 1, clause
    assert [o.colour for o in parse_prompt(rewritten)] == ["green", "magenta"]


def test_a_span_keeps_the_known_words_it_covers():
    rewriter = PromptRewriter({"motion": ["moving left", "moving right"], "colour": ["red"]}, threshold=-1.0,
                              templates={"motion": "an object {}"})
    done = rewriter.rewrite("red thing sliding towards the right")
    assert "moving right" in done.rewritten and "left" not in done.rewritten  # "right" must survive the rewrite
    assert done.rewritten.startswith("red")  # never "red ..." -> a phrase that only repeats "red"


def test_no_phrases_or_an_unknown_vocabulary_is_a_one_line_error():
    with pytest.raises(T2VError, match="at least one caption phrase"):
        PromptRewriter({"colour": []})
    with pytest.raises(T2VError, match="unknown caption vocabulary 'klingon'"):
        load_rewriter("klingon")
    with pytest.raises(T2VError, match="carrier sentence holds"):
        PromptRewriter({"colour": ["red"]}, templates={"colour": "the colour"})


def test_pipelines_rewrite_into_the_vocabulary_their_checkpoint_names(tmp_path, tiny_videogpt):
    plain = save_model(tmp_path / "plain", tiny_videogpt)
    named = save_model(tmp_path / "named", tiny_videogpt, captions="moving-shapes")
    assert "captions" not in json.loads((plain / "config.json").read_text())
    assert load_pipeline(plain).rewriter is None
    pipe = load_pipeline(named)
    assert pipe.rewriter is load_rewriter("moving-shapes")
    assert load_pipeline(named, rewrite="off").rewriter is None
    assert load_pipeline(plain, rewrite="moving-shapes").rewriter is not None
    unseen, seen = "a giant blue sphere shifting right", "a red circle moving left"
    expected = load_rewriter("moving-shapes")(unseen)
    assert pipe.prepare_prompts([unseen, seen]) == [expected, seen]
    assert pipe.last_rewrites == [(unseen, expected)]
    with pytest.raises(T2VError, match="the prompt is empty"):
        pipe.prepare_prompts(["  "])


def test_rewriting_changes_what_the_model_is_given(tmp_path, tiny_videogpt):
    """Same seed: the rewritten prompt draws exactly the video its rewrite draws without rewriting."""
    directory = save_model(tmp_path / "named", tiny_videogpt, captions="moving-shapes")
    prompt = "a giant blue sphere shifting right"
    rewritten = load_rewriter("moving-shapes")(prompt)
    with_rewrite = load_pipeline(directory)(prompt, seed=4).frames
    plain = Pipeline(tiny_videogpt, name="plain")
    assert (with_rewrite == plain(rewritten, seed=4).frames).all()


@pytest.mark.parametrize("prompt, expected", [
    ("a jumbo red circle moving left", ("large", "red", "circle", "left")),
    ("a big blue pellet moving up", ("large", "blue", "circle", "up")),
    ("a small green square parked", ("small", "green", "square", "still")),
])
def test_the_lexicon_knows_words_minilm_places_poorly(shapes_rewriter, minilm_alone, prompt, expected):
    """Development words (DEV_SYNONYMS_2 of benchmarks/text_grounding.py) MiniLM alone maps to the wrong phrase."""
    assert attributes(shapes_rewriter(prompt)) == [expected]
    assert attributes(minilm_alone(prompt)) != [expected], "MiniLM alone got it right: the test no longer shows the lexicon"


def test_embedding_in_length_sorted_chunks_keeps_each_text_its_own_vector():
    texts = ["a red circle", "an object moving to the left of the frame very slowly", "up", "the shape of a ball",
             "a very small blue square that drifts down and then stays still"]
    chunked, whole = pooled_embeddings(texts, chunk=2), pooled_embeddings(texts, chunk=len(texts))
    assert chunked.shape == (5, 384)
    assert torch.allclose(chunked, whole, atol=1e-5)
    for i, text in enumerate(texts):  # in the caller's order, whatever order the chunks ran in
        assert torch.allclose(chunked[i], pooled_embeddings([text])[0], atol=1e-5)


def test_function_words_are_not_looked_up_in_the_lexicon():
    from t2v.text.lexicon import WordNetLexicon

    asked, wordnet = [], WordNetLexicon()

    def lexicon(word):
        asked.append(word)
        return wordnet(word)

    assert wordnet("in")  # WordNet has senses for it (inch, indium, ...), none of them meant here
    rewriter = moving_shapes_rewriter(lexicon=lexicon)
    assert parse_prompt(rewriter("a huge red ball resting in place"))[0].motion == "still"
    assert "in" not in asked and "resting" in asked

