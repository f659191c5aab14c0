"""What the frozen text encoder alone knows of a prompt set: nearest training caption in its sentence space.

Every training caption of one object is enumerated (colour x shape x size x motion, each written with
the training templates and synonyms), and each evaluation prompt is matched to the caption nearest it
by cosine of the encoder's pooled sentence embedding. An attribute is "grounded" when that caption
has the prompt's value. A generator conditioned on this encoder, trained only on these captions, has
no other way to learn what a word it never saw in training means: where the encoder does not place a
paraphrase near its training counterpart, the generator can only guess.

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
from t2v.text.encoders import MiniLMEncoder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTES = ("colour", "shape", "size", "motion")


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
    RESULTS.mkdir(parents=True, exist_ok=True)
    command = f"python benchmarks/text_grounding.py -n {args.n}" + (f" --seed {args.seed}" if args.seed else "")
    (RESULTS / "text_grounding.json").write_text(json.dumps({"command": command, "captions": len(captions),
                                                            "rows": rows}, indent=2) + "\n")
    lines = [f"Nearest of {len(captions)} training captions (pooled all-MiniLM-L6-v2, cosine) to each prompt "
             f"(n={args.n} per set, seed {args.seed}): the share whose nearest caption has the prompt's value.", "",
             "| prompt set | colour | shape | size | motion | all four |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | " + " | ".join(f"{r[a]:.0%}" for a in (*ATTRIBUTES, "all_right")) + " |"
              for name, r in rows.items()]
    lines += ["", "Held-out pairs have no training caption of their own colour and shape, so their all-four share is "
              "low by construction: retrieval cannot compose, a generator must."]
    (RESULTS / "text_grounding.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'text_grounding.md'}")


if __name__ == "__main__":
    main()
