"""Hue-rotation augmentation for tokenizer stages (``data.recolour``)."""

import math
import random
import textwrap

import numpy as np
import pytest

from t2v.data.shapes import make_example
from t2v.data.stream import ShapesDataConfig, ShapesStream, hue_rotation, read_colour, recolour_angle, recolour_video
from t2v.data.vocab import COLOURS, HELD_OUT_PAIRS, PALETTE
from t2v.eval.shapes import classify_pixels


def test_hue_rotation_is_a_rotation_that_keeps_black_and_greys():
    turn = hue_rotation(1.3)
    assert np.allclose(turn @ turn.T, np.eye(3)) and math.isclose(np.linalg.det(turn), 1.0)
    assert np.allclose(turn @ np.array([235.0, 235, 235]), 235)
    assert np.allclose(hue_rotation(2 * math.pi / 3) @ np.array([1.0, 0, 0]), [0, 1, 0])  # red -> green


def test_a_full_turn_of_the_palette_passes_through_other_colours():
    seen = {read_colour(hue_rotation(a) @ np.array(PALETTE["red"], float)) for a in np.linspace(0, 2 * math.pi, 24)}
    assert {"red", "orange", "yellow", "green", "cyan", "blue", "magenta"} <= seen


def test_recoloured_videos_keep_their_background_and_never_show_a_held_out_pair():
    config = ShapesDataConfig(num_frames=4, height=32, width=32, recolour=1.0, level2_prob=0.5)
    stream, plain = ShapesStream(config), ShapesStream(ShapesDataConfig(num_frames=4, height=32, width=32, level2_prob=0.5))
    changed = 0
    for index in range(60):
        video, original = stream.example(index)["video"].numpy(), plain.example(index)["video"].numpy()
        assert ((video.sum(-1) == 0) == (original.sum(-1) == 0)).all()  # black stays black, objects stay
        changed += not np.array_equal(video, original)
        example = make_example(index, level=2, split="train", num_frames=4, height=32, width=32)
        angle = recolour_angle(example.scene, random.Random(index))
        turned = recolour_video(example.video, angle)
        for obj in example.scene.objects:
            colour = read_colour(hue_rotation(angle) @ np.array(PALETTE[obj.colour], float))
            assert (colour, obj.shape) not in HELD_OUT_PAIRS
            assert (classify_pixels(turned) == COLOURS.index(colour) + 1).any() or obj.colour == "white"
    assert changed > 40  # white-only videos are the ones a rotation leaves alone


def test_recolour_share_and_determinism():
    config = ShapesDataConfig(num_frames=4, height=32, width=32, recolour=0.5, level2_prob=0.0)
    plain = ShapesStream(ShapesDataConfig(num_frames=4, height=32, width=32, level2_prob=0.0))
    a, b = ShapesStream(config).batch(0, 40)["video"], ShapesStream(config).batch(0, 40)["video"]
    assert np.array_equal(a, b)
    changed = sum(not np.array_equal(x, y) for x, y in zip(a, plain.batch(0, 40)["video"]))
    assert 8 <= changed <= 32


def test_recolour_for_a_model_that_reads_captions_or_labels_is_a_one_line_error(tmp_path):
    from t2v.errors import T2VError
    from t2v.train import train_from_config

    config = tmp_path / "classifier.yaml"
    config.write_text(textwrap.dedent(f"""
        family: fvd-shapes
        model: {{preset: tiny, num_frames: 8, height: 32, width: 32}}
        data: {{num_frames: 8, height: 32, width: 32, labels: true, level2_prob: 0.0, recolour: 0.5}}
        train: {{steps: 1, batch_size: 2, threads: 1, out_dir: {tmp_path / 'out'}}}
    """))
    with pytest.raises(T2VError, match="recolour: fvd-shapes reads captions or labels"):
        train_from_config("fvd-shapes", config, log=lambda *_: None)
