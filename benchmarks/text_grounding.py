"""What the frozen text encoder alone knows of a prompt set: nearest training caption in its sentence space.

Every training caption of one object is enumerated (colour x shape x size x motion, each written with
the training templates and synonyms), and each evaluation prompt is matched to the caption nearest it
by cosine of the encoder's pooled sentence embedding. An attribute is "grounded" when that caption
has the prompt's value. A generator conditioned on this encoder, trained only on these captions, has
no other way to learn what a word it never saw in training means: where the encoder does not place a
paraphrase near its training counterpart, the generator can only guess.

The prompt rewriter (``t2v.text.rewrite``, on by default for models trained on Moving Shapes) uses
the same encoder phrase by phrase instead, with WordNet as its lexicon: the second table is the share of
prompts whose rewrite the checker's parser reads with the prompt's value. Its threshold, carrier sentences
and lexicon settings were chosen on words of our own (``DEV_SYNONYMS`` and ``DEV_MOTION_PHRASES``, and the
second list ``DEV_SYNONYMS_2``, ``DEV_MOTION_PHRASES_2``: neither training nor paraphrase words), swept here too.

    python benchmarks/text_grounding.py -n 100
    # -> benchmarks/results/text_grounding.{json,md}
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from pathlib import Path

import torch

from t2v.data.shapes import ShapeObject, describe_object
from t2v.data.vocab import COLOURS, HELD_OUT_PAIRS, MOTIONS, SHAPES, SIZES, TRAIN_MOTION_PHRASES, TRAIN_SYNONYMS
from t2v.eval.shapes import parse_prompt, prompt_set
from t2v.text.encoders import LRUCache, MiniLMEncoder
from t2v.text.lexicon import WordNetLexicon
from t2v.text.rewrite import moving_shapes_rewriter

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTES = ("colour", "shape", "size", "motion")
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)
REWRITE_THRESHOLD = 0.4  # t2v.text.rewrite's default, chosen on the development words (swept below)
# Development words for the rewriter: in neither the training captions nor the paraphrase prompt set.
DEV_SYNONYMS = {"small": ("minuscule", "petite", "mini", "teeny"), "large": ("giant", "enormous", "massive", "oversized"),
                "circle": ("orb", "sphere", "round shape", "ring", "dot"),
                "square": ("rectangle", "tile", "cubic shape", "quadrilateral"),
                "triangle": ("triangular shape", "arrowhead", "cone", "three-sided shape")}
DEV_MOTION_PHRASES = {"left": ("shifting left", "heading leftward", "panning to the left", "going west"),
                      "right": ("shifting right", "heading rightward", "drifting to the right", "going east"),
                      "up": ("ascending", "climbing", "floating upward", "lifting off"),
                      "down": ("descending", "dropping", "plunging", "going downhill"),
                      "still": ("frozen in place", "unmoving", "idle", "at rest", "not budging")}
# A second list, written (2026-12-07) before any rewriter ran on it, to choose the lexicon's settings on
# more words than the first list's 44.
DEV_SYNONYMS_2 = {"small": ("wee", "diminutive", "pint-sized", "compact", "modest"),
                  "large": ("gigantic", "jumbo", "colossal", "hefty", "sizable"),
                  "circle": ("globe", "bead", "bubble", "coin", "pellet"),
                  "square": ("brick", "crate", "slab", "cuboid", "four-sided shape"),
                  "triangle": ("spike", "pennant", "prism", "three-cornered shape", "delta")}
DEV_MOTION_PHRASES_2 = {"left": ("veering left", "sweeping leftward", "creeping to the left", "heading westward"),
                        "right": ("veering right", "sweeping rightward", "creeping to the right", "heading eastward"),
                        "up": ("soaring", "levitating", "going skyward", "mounting upward", "elevating"),
                        "down": ("plummeting", "tumbling down", "descending slowly", "going lower", "sagging"),
                        "still": ("immobile", "fixed in place", "parked", "static", "not stirring")}
LEXICON_SETTINGS = ((1, 0.9), (2, 0.9), (4, 0.9), (2, 1.0))  # (WordNet senses, lexicon weight) swept


def training_captions() -> list[tuple[str, tuple[str, str, str, str]]]:
    """Every one-object caption the training templates write for the train split's colour-shape pairs:
    (caption, (colour, shape, size, motion))."""
    out = []
    for colour, shape, size, motion in itertools.product(COLOURS, SHAPES, SIZES, MOTIONS):
        if (colour, shape) in HELD_OUT_PAIRS:
            continue
        obj = ShapeObject(colour, shape, size, motion, 0.0, 0.0)
        out.append((describe_object(obj, random.Random(0), canonical=True), (colour, shape, size, motion)))
        for size_word, shape_word, phrase in itertools.product(TRAIN_SYNONYMS[size], TRAIN_SYNONYMS[shape],
                                                               TRAIN_MOTION_PHRASES[motion]):
            out.append((f"a {size_word} {colour} {shape_word} {phrase}", (colour, shape, size, motion)))
    return out


def grounding(encoder: MiniLMEncoder, prompts: list[str], captions: list[tuple[str, tuple]]) -> dict:
    """Share of prompts whose nearest training caption has the prompt's value, per attribute and for all four."""
    bank = encoder([c for c, _ in captions]).pooled  # (N, D), unit norm
    query = encoder(prompts).pooled  # (P, D)
    nearest = (query @ bank.T).argmax(1).tolist()
    right = {a: 0 for a in (*ATTRIBUTES, "all_right")}
    for prompt, index in zip(prompts, nearest):
        spec = parse_prompt(prompt)[0]
        found = dict(zip(ATTRIBUTES, captions[index][1]))
        hits = {a: getattr(spec, a) in (None, found[a]) for a in ATTRIBUTES}  # a size left unsaid is no miss
        for a, hit in hits.items():
            right[a] += hit
        right["all_right"] += all(hits.values())
    return {k: v / len(prompts) for k, v in right.items()}


def development_prompts(n: int, seed: int, second_list: bool = False) -> list[tuple[str, tuple[str, str, str, str]]]:
    """``n`` one-object prompts in the development words (of the second list if ``second_list``):
    (prompt, (colour, shape, size, motion))."""
    rng = random.Random(f"rewrite-dev2:{seed}" if second_list else f"rewrite-dev:{seed}")
    synonyms, motions = (DEV_SYNONYMS_2, DEV_MOTION_PHRASES_2) if second_list else (DEV_SYNONYMS, DEV_MOTION_PHRASES)
    out = []
    for _ in range(n):
        colour, shape, size, motion = (rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(SIZES), rng.choice(MOTIONS))
        prompt = (f"{rng.choice(('a', 'the'))} {rng.choice(synonyms[size])} {colour} "
                  f"{rng.choice(synonyms[shape])} {rng.choice(motions[motion])}")
        out.append((prompt, (colour, shape, size, motion)))
    return out


def rewrite_grounding(rewriter, items: list[tuple[str, tuple]]) -> dict:
    """Share of prompts whose rewrite the checker's parser reads with the prompt's value, per attribute
    and for all four (one object each; a rewrite read as several objects, or none, misses all)."""
    right = {a: 0 for a in (*ATTRIBUTES, "all_right")}
    for prompt, truth in items:
        found = parse_prompt(rewriter(prompt))
        hits = {a: len(found) == 1 and getattr(found[0], a) == value for a, value in zip(ATTRIBUTES, truth)}
        for a, hit in hits.items():
            right[a] += hit
        right["all_right"] += all(hits.values())
    return {k: v / len(items) for k, v in right.items()}


def asked(prompt: str) -> tuple[str, str, str, str]:
    spec = parse_prompt(prompt)[0]
    return tuple(getattr(spec, a) for a in ATTRIBUTES)


def table(rows: dict, first: str) -> list[str]:
    return [f"| {first} | colour | shape | size | motion | all four |", "| --- | --- | --- | --- | --- | --- |",
            *(f"| {name} | " + " | ".join(f"{r[a]:.0%}" for a in (*ATTRIBUTES, "all_right")) + " |"
              for name, r in rows.items())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="prompts per prompt set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoder, captions = MiniLMEncoder(), training_captions()
    rows = {}
    for name in ("seen", "held_out", "paraphrase"):
        prompts = [p for _, p in prompt_set(name, args.n, args.seed)]
        rows[name] = grounding(encoder, prompts, captions)
        print(name, ", ".join(f"{k} {v:.0%}" for k, v in rows[name].items()))
    development = development_prompts(2 * args.n, args.seed)
    second = development_prompts(4 * args.n, args.seed, second_list=True)
    fresh = development_prompts(4 * args.n, args.seed + 1)
    vectors = LRUCache(10 ** 6)  # one cache of MiniLM vectors for every rewriter below

    def rewriter(**options):
        made = moving_shapes_rewriter(**{"threshold": REWRITE_THRESHOLD, **options})
        made.vectors = vectors
        return made

    plain = rewriter(lexicon=None)  # MiniLM alone, as before the lexicon
    rewritten = {f"MiniLM alone, development, threshold {t}":
                 rewrite_grounding(rewriter(lexicon=None, threshold=t) if t != REWRITE_THRESHOLD else plain, development)
                 for t in THRESHOLDS}
    rewritten["MiniLM alone, development, no carrier sentences, threshold 0.3"] = rewrite_grounding(
        rewriter(lexicon=None, threshold=0.3, templates=None), development)
    rewritten[f"MiniLM alone, development list 2 ({len(second)})"] = rewrite_grounding(plain, second)
    rewritten[f"MiniLM alone, development, fresh draw of {len(fresh)}"] = rewrite_grounding(plain, fresh)
    for senses, weight in LEXICON_SETTINGS:
        swept = rewriter(lexicon=WordNetLexicon(senses), lexicon_weight=weight)
        for name, items in (("development", development), (f"development list 2 ({len(second)})", second)):
            rewritten[f"WordNet {senses} senses, weight {weight}, {name}"] = rewrite_grounding(swept, items)
    default = rewriter()  # t2v's rewriter: WordNet, 2 senses, weight 0.9
    rewritten[f"WordNet (default), development, fresh draw of {len(fresh)}"] = rewrite_grounding(default, fresh)
    for name in ("paraphrase", "seen", "held_out"):
        items = [(p, asked(p)) for _, p in prompt_set(name, args.n, args.seed)]
        rewritten[f"WordNet (default), {name}"] = rewrite_grounding(default, items)
        if name == "paraphrase":
            rewritten["MiniLM alone, paraphrase"] = rewrite_grounding(plain, items)
    for name, row in rewritten.items():
        print("rewritten:", name, ", ".join(f"{k} {v:.0%}" for k, v in row.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/text_grounding.py -n {args.n}" + (f" --seed {args.seed}" if args.seed else "")
    (RESULTS / "text_grounding.json").write_text(json.dumps({"command": command, "captions": len(captions),
                                                            "rows": rows, "rewritten": rewritten,
                                                            "rewrite_threshold": REWRITE_THRESHOLD,
                                                            "lexicon": "WordNet 3.0, 2 senses, weight 0.9"},
                                                           indent=2) + "\n")
    lines = [f"Nearest of {len(captions)} training captions (pooled all-MiniLM-L6-v2, cosine) to each prompt "
             f"(n={args.n} per set, seed {args.seed}): the share whose nearest caption has the prompt's value.", "",
             *table(rows, "prompt set")]
    lines += ["", "Held-out pairs have no training caption of their own colour and shape, so their all-four share is "
              "low by construction: retrieval cannot compose, a generator must.", "",
              "The prompt rewriter (`t2v.text.rewrite`, same encoder, phrase by phrase): the share of prompts whose "
              "rewrite the checker's parser reads with the prompt's value. Its carrier sentences and threshold "
              f"({REWRITE_THRESHOLD}, inside the plateau of the sweep) were chosen on the {len(development)} "
              "development prompts (words in neither the training captions nor the paraphrase set: `DEV_SYNONYMS` "
              f"in `benchmarks/text_grounding.py`) before the paraphrase set was rewritten with them; the fresh draw of {len(fresh)} "
              "development prompts was not looked at while choosing. Its lexicon (WordNet 3.0: each unknown word "
              "also scored as the synonyms and definitions of its first senses, at a weight times the cosine) was "
              f"chosen on the {len(development)} development prompts and {len(second)} of a second list of words "
              "(`DEV_SYNONYMS_2`), before the paraphrase set was rewritten with it: 2 senses at weight 0.9.", "",
              *table(rewritten, "prompts")]
    (RESULTS / "text_grounding.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'text_grounding.md'}")


if __name__ == "__main__":
    main()
