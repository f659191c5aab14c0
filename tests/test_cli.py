"""The ``t2v`` command end to end on a tiny checkpoint: outputs, and one-line errors for bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from t2v.checkpoint import save_model
from t2v.video import read_video


@pytest.fixture
def tiny_checkpoint(tmp_path, tiny_videogpt):
    return save_model(tmp_path / "tiny-videogpt", tiny_videogpt)


def t2v(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "T2V_CHECKPOINTS": os.environ.get("T2V_CHECKPOINTS", "")}
    return subprocess.run([sys.executable, "-m", "t2v.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_generate_writes_mp4_and_contact_sheet(tmp_path, tiny_checkpoint):
    result = t2v("generate", "a red circle moving left", "--model", tiny_checkpoint, "-o", tmp_path / "v.mp4",
                 "--sheet", "--seed", 3)
    assert result.returncode == 0, result.stderr
    video = read_video(tmp_path / "v.mp4")
    assert video.frames.shape == (8, 32, 32, 3)
    assert (tmp_path / "v.png").stat().st_size > 0
    assert "wrote" in result.stdout and "(float32)" in result.stdout  # VideoGPT samples in float32 everywhere


def test_same_seed_same_video(tmp_path, tiny_checkpoint):
    for name in ("a", "b"):
        assert t2v("generate", "a blue square moving up", "--model", tiny_checkpoint, "-o", tmp_path / f"{name}.npy",
                   "--seed", 5).returncode == 0
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_prompts_file_makes_one_video_per_line(tmp_path, tiny_checkpoint):
    (tmp_path / "p.tsv").write_text("one\ta red circle moving left\n# a comment\n\ntwo\ta green square moving up\n")
    result = t2v("generate", "--prompts", tmp_path / "p.tsv", "--out", tmp_path / "vids", "--format", "npy",
                 "--model", tiny_checkpoint)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "vids").iterdir()) == ["one.npy", "two.npy"]


@pytest.mark.parametrize("args, fragments", [
    (["generate", "   "], ["prompt is empty"]),
    (["generate", "x" * 1001], ["1001 characters"]),
    (["generate", "a red circle", "--model", "no-such-model"], ["unknown model 'no-such-model'"]),
    (["generate", "a red circle", "--model", "../../etc/passwd"], ["unknown model"]),
    (["generate", "a red circle", "--seed", "-1", "--model", "TINY"], ["seed must be a non-negative"]),
    (["generate", "a red circle", "--frames", "99", "--model", "TINY"], ["num_frames must be 8"]),
    (["generate", "a red circle", "-o", "OUT/missing/v.mp4", "--model", "TINY"], ["does not exist"]),
    (["generate", "a red circle", "-o", "OUT/v.avi", "--model", "TINY"], [".avi"]),
    (["generate", "a red circle", "--precision", "fp8", "--model", "TINY"], ["precision must be one of"]),
    (["generate", "--prompts", "OUT/bad.tsv", "--out", "OUT/vids", "--model", "TINY"], ["line 1"]),
    (["eval", "TINY", "--suite", "nope"], ["unknown suite 'nope'"]),
    (["eval", "TINY", "--precision", "bf16", "--record"], ["--record stores float32"]),
    (["train", "videogpt", "--config", "OUT/missing.yaml"], ["missing.yaml"]),
])
def test_bad_input_is_a_one_line_error(tmp_path, tiny_checkpoint, args, fragments):
    (tmp_path / "bad.tsv").write_text("no tab here\n")
    args = [str(a).replace("TINY", str(tiny_checkpoint)).replace("OUT", str(tmp_path)) for a in args]
    assert_one_line_error(t2v(*args), *fragments)


def test_read_only_output_folder_is_refused(tmp_path, tiny_checkpoint):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert_one_line_error(t2v("generate", "a red circle", "--model", tiny_checkpoint, "-o", locked / "v.mp4"),
                          "not writable")


def test_models_lists_bundled_checkpoints(tmp_path, tiny_videogpt):
    save_model(tmp_path / "bundle" / "my-model", tiny_videogpt)
    env = {**os.environ, "T2V_CHECKPOINTS": str(tmp_path / "bundle")}
    out = subprocess.run([sys.executable, "-m", "t2v.cli", "models"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert "my-model" in out and "videogpt" in out


def test_generate_says_how_it_rewrote_the_prompt(tmp_path, tiny_videogpt):
    checkpoint = save_model(tmp_path / "named", tiny_videogpt, captions="moving-shapes")
    result = t2v("generate", "a giant blue sphere shifting right", "--model", checkpoint, "-o", tmp_path / "v.npy")
    assert result.returncode == 0, result.stderr
    assert "prompt rewritten into named's caption words: 'a giant blue sphere shifting right' -> 'a " in result.stdout
    plain = t2v("generate", "a giant blue sphere shifting right", "--model", checkpoint, "-o", tmp_path / "w.npy",
                "--rewrite", "off")
    assert plain.returncode == 0 and "rewritten" not in plain.stdout, plain.stderr
    assert_one_line_error(t2v("generate", "a red circle", "--model", checkpoint, "-o", tmp_path / "x.npy",
                              "--rewrite", "klingon"), "unknown caption vocabulary")
    (tmp_path / "p.tsv").write_text("a\ta giant blue sphere shifting right\nb\ta red circle moving left\n")
    batch = t2v("generate", "--prompts", tmp_path / "p.tsv", "--out", tmp_path / "batch", "--format", "npy",
                "--model", checkpoint)
    assert batch.returncode == 0 and "1 of 2 prompts rewritten into named's caption words" in batch.stdout, batch.stderr


def test_convert_writes_an_int8_copy_that_generates(tmp_path, tiny_checkpoint):
    result = t2v("convert", tiny_checkpoint, tmp_path / "int8")
    assert result.returncode == 0 and "int8 weights" in result.stdout, result.stderr
    assert t2v("generate", "a red circle moving left", "--model", tmp_path / "int8", "-o", tmp_path / "v.mp4",
               "--seed", "0").returncode == 0
    assert read_video(tmp_path / "v.mp4").frames.shape == (8, 32, 32, 3)
    assert_one_line_error(t2v("convert", tiny_checkpoint, tmp_path / "x", "--weights", "int4"), "int4")
