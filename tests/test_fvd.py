"""FVD: the Fréchet distance, the FVD-shapes classifier, the I3D loader and the ``fvd``/``speed`` eval suites."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from t2v.checkpoint import save_model
from t2v.data.stream import ATTRIBUTES, ShapesDataConfig, ShapesStream
from t2v.data.vocab import PALETTE, TRAIN_MOTION_PHRASES, TRAIN_SYNONYMS
from t2v.errors import T2VError
from t2v.eval.fvd import frechet_distance, load_feature_net, video_features
from t2v.eval.i3d import InceptionI3d, load_i3d
from t2v.eval.run import recon_suite, run_suites, train_throughput
from t2v.models.shapes_classifier import (
    OFF_PALETTE_DISTANCE,
    ShapesClassifier,
    ShapesClassifierConfig,
    attribute_accuracy,
    recolour_off_palette,
)


def test_frechet_distance_of_a_set_with_itself_is_zero():
    feats = np.random.default_rng(0).normal(size=(256, 32))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_a_mean_shift():
    rng = np.random.default_rng(0)
    a, noise = rng.normal(size=(256, 32)), rng.normal(size=(256, 32))
    distances = [frechet_distance(a, noise + shift) for shift in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(distances, distances[1:])), distances
    # the mean term is exact: shifting every one of 32 dims by 2 adds 32 * 2^2 = 128 on top of the same covariances
    assert frechet_distance(a, a + 2.0) == pytest.approx(128.0, rel=1e-6)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(T2VError, match="same F"):
        frechet_distance(np.zeros((8, 4)), np.zeros((8, 5)))


def test_labels_are_added_only_on_request_and_match_the_caption():
    plain = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 3)
    assert set(plain) == {"video", "caption"}  # existing users see the same batch as before
    same = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, labels=True)).batch(0, 3)
    assert torch.equal(same["video"], plain["video"]) and same["labels"].shape == (3, 4)
    one = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, level2_prob=0.0, labels=True)).batch(0, 8)
    for caption, labels in zip(one["caption"], one["labels"]):
        colour, shape, _, motion = (values[i] for values, i in zip(ATTRIBUTES.values(), labels))
        assert colour in caption
        assert any(word in caption for word in TRAIN_SYNONYMS[shape])
        assert any(phrase in caption for phrase in TRAIN_MOTION_PHRASES[motion])


def test_classifier_accepts_any_video_size_and_learns():
    torch.manual_seed(0)
    model = ShapesClassifier(ShapesClassifierConfig(**ShapesClassifier.presets["tiny"], num_frames=8, height=32, width=32))
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, level2_prob=0.0, labels=True)).batch(0, 16)
    assert model.features(torch.zeros(2, 5, 24, 40, 3, dtype=torch.uint8)).shape == (2, model.feature_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss, logs = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    assert set(logs) == {f"acc_{name}" for name in ATTRIBUTES}


def test_classifier_training_without_labels_says_how_to_get_them(shapes_batch):
    model = ShapesClassifier(ShapesClassifierConfig(**ShapesClassifier.presets["tiny"]))
    with pytest.raises(T2VError, match="labels: true"):
        model.training_loss(shapes_batch)


def test_recolouring_paints_the_same_object_off_palette_and_drops_its_colour_loss():
    torch.manual_seed(0)
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, level2_prob=0.0, labels=True)).batch(0, 8)
    frames, repainted = recolour_off_palette(batch["video"], 0.5)
    assert 0 < repainted.sum() < 8
    palette = torch.tensor(list(PALETTE.values()), dtype=torch.float32)
    for video, before, was_repainted in zip(frames, batch["video"], repainted):
        drawn = video.amax(-1) > 0  # (T, H, W)
        assert torch.equal(drawn, before.amax(-1) > 0)  # same object in the same place
        far = torch.cdist(video[drawn].float(), palette).amin(1) > OFF_PALETTE_DISTANCE
        assert bool(far.all()) == bool(was_repainted)
    model = ShapesClassifier(ShapesClassifierConfig(**ShapesClassifier.presets["tiny"], recolour_prob=1.0)).train()
    assert "acc_colour" not in model.training_loss(batch)[1]  # every object repainted: no colour to learn


def test_bundled_fvd_shapes_classifier_is_accurate_on_held_out_pairs():
    net = load_feature_net()  # the bundled checkpoints/fvd-shapes
    stream = ShapesStream(ShapesDataConfig(split="test", level2_prob=0.0, labels=True, seed=1))
    accuracy = attribute_accuracy(net, (stream.batch(start, 50) for start in range(0, 200, 50)))
    assert all(value >= 0.95 for value in accuracy.values()), accuracy


def test_i3d_builds_with_pytorch_i3d_names_and_takes_a_small_video():
    net = InceptionI3d().eval()
    names = net.state_dict()
    for key in ("Conv3d_1a_7x7.conv3d.weight", "Mixed_4f.b1b.bn.running_var", "Mixed_5c.b3b.conv3d.weight",
                "logits.conv3d.bias"):
        assert key in names
    assert tuple(names["logits.conv3d.weight"].shape) == (400, 1024, 1, 1, 1)
    with torch.no_grad():
        video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
        assert net.pooled(video).shape == (2, 1024)
        assert net(video).shape == (2, 400)


def test_i3d_loads_an_old_style_pt_state_dict(tmp_path):
    torch.manual_seed(0)
    source = InceptionI3d().eval()
    state = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}  # as pytorch-i3d ships
    torch.save(state, tmp_path / "rgb_imagenet.pt")
    loaded = load_i3d(tmp_path / "rgb_imagenet.pt")
    frames = torch.randint(0, 256, (1, 8, 16, 16, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.allclose(loaded.features(frames), source.features(frames))


class NotATensor:  # pickled into a .pt: torch.load(weights_only=True) must refuse it
    pass


@pytest.mark.parametrize("kind", ["text.pt", "pickle.pt", "foreign.safetensors", "wrong.bin", "missing.pt"])
def test_wrong_i3d_weights_give_a_one_line_error(tmp_path, kind):
    path = tmp_path / kind
    if kind == "text.pt":
        path.write_text("not weights")
    elif kind == "pickle.pt":
        path.write_bytes(pickle.dumps({"x": NotATensor()}))
    elif kind == "foreign.safetensors":
        save_file({"encoder.weight": torch.zeros(2, 2)}, str(path))
    elif kind == "wrong.bin":
        path.write_bytes(b"\0" * 8)
    with pytest.raises(T2VError) as info:
        load_feature_net(path)
    assert "\n" not in str(info.value) and str(path.name) in str(info.value)


def test_eval_json_has_fvd_and_speed_keys(tmp_path, tiny_videogpt):
    directory = save_model(tmp_path / "tiny-videogpt", tiny_videogpt)  # makes 8x32x32 videos
    results = run_suites(str(directory), ["fvd", "speed"], fvd_videos=6, log=lambda *_: None)
    fvd = results["fvd"]
    assert {"fvd_shapes", "videos", "feature_net"} <= set(fvd)
    assert fvd["videos"] == 6 and fvd["feature_net"] == "fvd-shapes" and fvd["fvd_shapes"] > 0
    speed = results["speed"]
    assert {"seconds_per_video", "threads", "peak_rss_mb", "train_videos_per_s"} <= set(speed)
    assert speed["seconds_per_video"] > 0 and speed["train_videos_per_s"] > 0
    assert results["precision"] == "float32"  # what records hold, unless asked otherwise


def test_training_throughput_leaves_the_model_as_it_was(tiny_videogpt):
    model = tiny_videogpt.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_throughput(model, (8, 32, 32), batch_size=2, steps=1)
    assert result["train_videos_per_s"] > 0
    assert not model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert train_throughput(torch.nn.Linear(2, 2), (8, 32, 32))["train_videos_per_s"] is None


def test_video_features_stacks_batches():
    net = ShapesClassifier(ShapesClassifierConfig(**ShapesClassifier.presets["tiny"]))
    batches = [np.zeros((3, 4, 16, 16, 3), np.uint8), np.zeros((2, 4, 16, 16, 3), np.uint8)]
    assert video_features(net, batches).shape == (5, net.feature_dim)


class PerfectTokenizer(torch.nn.Module):
    """Reconstructs every video exactly: the checker's ceiling is then the ground truth's."""

    config = type("Config", (), {"num_frames": 16, "height": 64, "width": 64})()

    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.clone()


def test_recon_suite_judges_reconstructions_against_their_own_captions():
    result = recon_suite(PerfectTokenizer(), n=20, batch_size=8, log=lambda *_: None)
    assert result["psnr_db"] > 60 and result["checker_on_reconstructions"]["count"] == 20
    assert result["checker_on_reconstructions"]["all_right"] >= 0.95  # captions stay paired with their videos
    seen = result["checker_on_seen_reconstructions"]
    assert seen["count"] == 20 and seen["all_right"] >= 0.95  # the train split's videos, judged the same way
    blurred = type("Blurred", (PerfectTokenizer,), {"reconstruct": lambda self, f: torch.zeros_like(f)})()
    blurred_result = recon_suite(blurred, n=8, log=lambda *_: None)
    assert blurred_result["checker_on_reconstructions"]["all_right"] == 0.0
    assert blurred_result["checker_on_seen_reconstructions"]["all_right"] == 0.0
