"""Stories (Phenaki): two-prompt videos whose object changes direction at the seam.

    python benchmarks/stories.py --model phenaki-shapes     # -> benchmarks/results/stories_phenaki-shapes.{json,png}

For each of ``-n`` stories (fixed seeds) one colour-shape-size object is asked to move one way,
then another. Reported: the share of 16-frame segments that the checker finds right for their own
prompt, the share of stories with both right, and continuity at the seam: the object's centroid
moves at most twice its per-frame speed between the last frame of a segment and the first of the
next. Beside it, the same test on every pair of consecutive frames inside the segments: a story's
seam can only be as continuous as the model's own frames are, so this is the baseline the seam is
judged against. A contact sheet of the first stories is written beside the JSON.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch

from t2v import load_pipeline
from t2v.data.shapes import speed_px
from t2v.data.vocab import COLOURS, HELD_OUT_PAIRS, SHAPES, SIZES
from t2v.eval.shapes import colour_centroids, judge_video, wilson_interval

RESULTS = Path(__file__).resolve().parent / "results"
DIRECTIONS = ("left", "right", "up", "down")


def make_stories(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(colour, first prompt, second prompt) with a change of direction; seen colour-shape pairs only."""
    rng = random.Random(f"stories:{seed}")
    stories = []
    while len(stories) < n:
        colour, shape, size = rng.choice(COLOURS), rng.choice(SHAPES), rng.choice(SIZES)
        if (colour, shape) in HELD_OUT_PAIRS:
            continue
        first, second = rng.sample(DIRECTIONS, 2)
        stories.append((colour, f"a {size} {colour} {shape} moving {first}", f"the {size} {colour} {shape} moving {second}"))
    return stories


def centroid_steps(frames: np.ndarray, colour: str) -> np.ndarray:
    """(T-1,) centroid distances in pixels from each frame to the next (inf where the object is missing)."""
    c = colour_centroids(frames, colour)  # (T, 2)
    return np.nan_to_num(np.linalg.norm(np.diff(c, axis=0), axis=1), nan=np.inf)


def inner_jumps(steps: np.ndarray, segment: int) -> np.ndarray:
    """The ``centroid_steps`` inside segments of ``segment`` frames: step i (frame i -> i+1) unless i+1 starts one."""
    return steps[(np.arange(len(steps)) + 1) % segment != 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="phenaki-shapes")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, precision="float32")  # as `t2v eval` measures
    t, _, w = pipe.video_shape
    limit = 2 * speed_px(w)
    rows, sheets = [], []
    for i, (colour, first, second) in enumerate(make_stories(args.n)):
        video = pipe.story([first, second], seed=i)
        frames = video.frames
        rights = [judge_video(frames[k * t:(k + 1) * t], p).all_right for k, p in enumerate((first, second))]
        steps = centroid_steps(frames, colour)
        jump, inner = float(steps[t - 1]), inner_jumps(steps, t)
        rows.append({"prompts": [first, second], "segments_right": rights, "seam_jump_px": jump,
                     "continuous": jump <= limit, "inner_pairs": len(inner),
                     "inner_continuous": int((inner <= limit).sum())})
        if i < 4:
            sheets.append(frames[:: max(1, len(frames) // 16)])
    segments = sum(sum(r["segments_right"]) for r in rows)
    both = sum(all(r["segments_right"]) for r in rows)
    continuous = sum(r["continuous"] for r in rows)
    n = len(rows)
    pairs, inner_ok = sum(r["inner_pairs"] for r in rows), sum(r["inner_continuous"] for r in rows)
    summary = {"model": pipe.name, "stories": n, "segment_frames": t, "seam_limit_px": limit,
               "segments_right": segments / (2 * n), "segments_right_ci95": wilson_interval(segments, 2 * n),
               "stories_both_right": both / n, "continuity": continuous / n,
               "continuity_ci95": wilson_interval(continuous, n),
               "inner_continuity": inner_ok / pairs, "inner_continuity_ci95": wilson_interval(inner_ok, pairs),
               "inner_pairs": pairs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"stories_{pipe.name}"
    stem.with_suffix(".json").write_text(json.dumps({**summary, "rows": rows}, indent=2) + "\n")
    from t2v.video import contact_sheet

    contact_sheet(np.concatenate(sheets), columns=len(sheets[0])).save(stem.with_suffix(".png"))
    print(f"{pipe.name}: segments right {summary['segments_right']:.1%} of {2 * n}, both right "
          f"{summary['stories_both_right']:.1%}, seam continuity (<= {limit:.1f} px) {summary['continuity']:.1%}, "
          f"continuity of consecutive frames inside the segments {summary['inner_continuity']:.1%} of {pairs}")
    print(f"wrote {stem}.json and .png")


if __name__ == "__main__":
    main()
