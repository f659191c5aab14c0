"""The Moving Shapes checker: right on ground truth, wrong on shuffled prompts, and its parts."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from t2v.data.shapes import make_example
from t2v.errors import T2VError
from t2v.eval.shapes import (
    ObjectSpec,
    PROMPT_SETS,
    judge_video,
    parse_prompt,
    prompt_set,
    read_prompts,
    score,
    score_directory,
    wilson_interval,
)
from t2v.video import Video


def examples(level: int, n: int, start: int = 50_000):
    """Ground-truth videos from both splits (odd seeds train, even seeds held-out pairs)."""
    return [make_example(start + i, level=level, split="train" if i % 2 else "test") for i in range(n)]


@pytest.mark.parametrize("level", [1, 2])
def test_ground_truth_scores_at_least_99_percent(level):
    report = score((e.video, e.caption) for e in examples(level, 200))
    assert report.rate("all_right") >= 0.99, report.format()


@pytest.mark.parametrize("level", [1, 2])
def test_shuffled_prompts_score_at_most_5_percent(level):
    found = examples(level, 200)
    captions = [e.caption for e in found]
    random.Random(level).shuffle(captions)
    report = score((e.video, c) for e, c in zip(found, captions))
    assert report.rate("all_right") <= 0.05, report.format()


def test_ground_truth_survives_mp4_round_trip(tmp_path):
    """H.264's half-resolution colour blurs edges; the checker must still read the video right."""
    found = examples(1, 24) + examples(2, 16, start=60_000)
    lines = []
    for i, e in enumerate(found):
        Video(e.video, fps=8).save(tmp_path / f"v{i}.mp4")
        lines.append(f"v{i}\t{e.caption}")
    (tmp_path / "prompts.tsv").write_text("\n".join(lines) + "\n")
    report = score_directory(tmp_path / "prompts.tsv", tmp_path)
    assert report.count == len(found)
    assert report.rate("all_right") >= 0.95, report.format()


def test_each_attribute_is_judged():
    e = make_example(7, level=1, split="train", canonical=True)
    obj = e.scene.objects[0]
    assert judge_video(e.video, e.caption).all_right
    other_colour = next(c for c in ("red", "green", "blue") if c != obj.colour)
    other_motion = "still" if obj.motion != "still" else "left"
    other_size = "small" if obj.size == "large" else "large"
    assert not judge_video(e.video, e.caption.replace(obj.colour, other_colour)).colour
    assert not judge_video(e.video, e.caption.replace(obj.size, other_size)).size
    wrong_motion = f"a {obj.size} {obj.colour} {obj.shape} " + ("staying still" if other_motion == "still" else "moving left")
    assert not judge_video(e.video, wrong_motion).motion


def test_black_video_is_wrong_not_an_error():
    verdict = judge_video(np.zeros((16, 64, 64, 3), np.uint8), "a red circle moving left")
    assert not verdict.all_right and not verdict.colour


def test_parse_prompt_one_and_two_objects():
    assert parse_prompt("a small red circle moving left") == [ObjectSpec("red", "circle", "small", "left")]
    assert parse_prompt("the green triangle goes up") == [ObjectSpec("green", "triangle", None, "up")]
    assert parse_prompt("a yellow square that does not move") == [ObjectSpec("yellow", "square", None, "still")]
    two = parse_prompt("a red circle moving left and a large white square moving down")
    assert two == [ObjectSpec("red", "circle", None, "left"), ObjectSpec("white", "square", "large", "down")]


def test_paraphrase_prompts_parse_fully():
    for _, prompt in prompt_set("paraphrase", n=50):
        (spec,) = parse_prompt(prompt)
        assert None not in (spec.colour, spec.shape, spec.size, spec.motion), prompt


def test_prompt_sets_are_fixed_and_sized():
    for name in PROMPT_SETS:
        first, again = prompt_set(name, n=100, seed=0), prompt_set(name, n=100, seed=0)
        assert first == again and len(first) == 100
        assert len({vid for vid, _ in first}) == 100
    with pytest.raises(T2VError, match="unknown prompt set"):
        prompt_set("nope")


def test_wilson_interval_brackets_the_rate():
    low, high = wilson_interval(90, 100)
    assert low < 0.9 < high and 0.8 < low and high < 0.96
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(T2VError, match="one or two objects"):
        judge_video(np.zeros((4, 8, 8, 3), np.uint8), "hello there")
    with pytest.raises(T2VError, match="shape"):
        judge_video(np.zeros((8, 8, 3), np.uint8), "a red circle")
    bad = tmp_path / "bad.tsv"
    bad.write_text("only-an-id\n")
    with pytest.raises(T2VError, match="line 1"):
        read_prompts(bad)
    good = tmp_path / "good.tsv"
    good.write_text("a\ta red circle moving left\n")
    with pytest.raises(T2VError, match="no video for id 'a'"):
        score_directory(good, tmp_path)


def test_check_command_prints_rates(tmp_path):
    found = examples(1, 6)
    for i, e in enumerate(found):
        np.save(tmp_path / f"v{i}.npy", e.video)
    (tmp_path / "p.tsv").write_text("".join(f"v{i}\t{e.caption}\n" for i, e in enumerate(found)))
    out = subprocess.run([sys.executable, "-m", "t2v.cli", "check", str(tmp_path / "p.tsv"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "all right" in out and "100.0%" in out and "6 videos" in out
