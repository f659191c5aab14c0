"""The video-text matcher and best-of-N reranking: hard-negative captions, the contrastive loss,
and pipelines that keep the candidate the matcher ranks first."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from t2v.checkpoint import load_model, save_model
from t2v.data.shapes import counterfactual_scenes, sample_scene
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.data.vocab import HELD_OUT_PAIRS
from t2v.errors import T2VError
from t2v.models.matcher import MatcherConfig, VideoTextMatcher, gaussian_blur, silhouette
from t2v.pipelines.base import Pipeline
from t2v.text import TextEncoderConfig

SMALL_TEXT = TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256)


def tiny_matcher(preset: str = "tiny") -> VideoTextMatcher:
    torch.manual_seed(0)
    return VideoTextMatcher(MatcherConfig(text=SMALL_TEXT, **VideoTextMatcher.presets[preset],
                                          num_frames=8, height=32, width=32))


def attribute_changes(a, b) -> list[tuple[int, str]]:
    return [(i, name) for i, (x, y) in enumerate(zip(a.objects, b.objects))
            for name in ("colour", "shape", "size", "motion") if getattr(x, name) != getattr(y, name)]


@pytest.mark.parametrize("level", [1, 2])
def test_counterfactual_scenes_differ_in_one_attribute_and_stay_in_the_train_split(level):
    rng = random.Random(3)
    for _ in range(20):
        scene = sample_scene(rng, level=level)
        for other in counterfactual_scenes(scene, rng, 6):
            assert len(attribute_changes(scene, other)) == 1
            assert not any((o.colour, o.shape) in HELD_OUT_PAIRS for o in other.objects)
            assert len({o.colour for o in other.objects}) == level


def test_stream_gives_each_video_its_negative_captions_deterministically():
    stream = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, negatives=3))
    batch = stream.batch(0, 4)
    assert [len(n) for n in batch["negatives"]] == [3, 3, 3, 3]
    assert all(c not in n for c, n in zip(batch["caption"], batch["negatives"]))
    assert batch["negatives"] == stream.batch(0, 4)["negatives"]


def test_blur_keeps_a_flat_video_and_softens_an_edge():
    flat = torch.full((3, 2, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0), flat, atol=1e-6)
    edge = torch.zeros(3, 2, 16, 16)
    edge[..., 8:] = 1.0
    blurred = gaussian_blur(edge, 1.0)
    assert 0.1 < blurred[0, 0, 5, 7] < 0.5 < blurred[0, 0, 5, 8] < 0.9  # the step is now a ramp


def test_silhouette_is_blind_to_the_palette_colour():
    red, green = torch.full((1, 3, 2, 8, 8), -1.0), torch.full((1, 3, 2, 8, 8), -1.0)
    red[:, :, :, 2:5, 3:6] = torch.tensor([220, 40, 40]).view(1, 3, 1, 1, 1) / 127.5 - 1
    green[:, :, :, 2:5, 3:6] = torch.tensor([40, 190, 60]).view(1, 3, 1, 1, 1) / 127.5 - 1
    assert torch.allclose(silhouette(red), silhouette(green), atol=1e-6)
    assert silhouette(red)[0, 0, 0, 3, 4] == 1 and silhouette(red)[0, 0, 0, 0, 0] == -1


def test_a_matcher_with_a_silhouette_tower_saves_and_loads_it(tmp_path):
    model = tiny_matcher("tiny-silhouette").eval()
    loaded = load_model(save_model(tmp_path / "matcher", model))
    assert loaded.shape_stages is not None
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 2)
    assert torch.equal(loaded.score(batch["video"], batch["caption"]), model.score(batch["video"], batch["caption"]))


@pytest.mark.parametrize("silhouette_tower", [False, True])
def test_matcher_training_steps_lower_the_loss(silhouette_tower):
    model = tiny_matcher("tiny-silhouette" if silhouette_tower else "tiny").train()
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32, negatives=2)).batch(0, 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, logs = model.training_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert 0 <= logs["hard_acc"] <= 1
    assert losses[-1] < 0.8 * losses[0], losses


def test_matcher_needs_negatives_and_one_prompt_per_video():
    model = tiny_matcher()
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 2)
    with pytest.raises(T2VError, match="negatives"):
        model.training_loss(batch)
    with pytest.raises(T2VError, match="one prompt per video"):
        model.score(batch["video"], ["a red circle"])
    scores = model.eval().score(batch["video"], batch["caption"])
    assert scores.shape == (2,) and (scores.abs() <= 1 + 1e-5).all()


@pytest.fixture
def reranking_pipeline(tiny_videogpt, tmp_path):
    directory = save_model(tmp_path / "matcher", tiny_matcher())
    return Pipeline(tiny_videogpt, name="tiny", reranker=directory)


def test_one_candidate_is_the_plain_draw(reranking_pipeline):
    plain = reranking_pipeline("a red circle moving left", seed=4)
    assert np.array_equal(reranking_pipeline("a red circle moving left", seed=4, candidates=1).frames, plain.frames)
    assert reranking_pipeline._reranker is None  # one candidate never loads the matcher


def test_best_of_n_keeps_the_candidate_the_matcher_ranks_first(reranking_pipeline):
    prompts = ["a red circle moving left", "a small white square staying still"]
    drawn = reranking_pipeline.generate_candidates(prompts, 7, 3)  # (2, 3, T, H, W, 3)
    assert drawn.shape[:2] == (2, 3)
    assert torch.equal(drawn[:, 0], torch.stack([torch.as_tensor(v.frames) for v in
                                                 reranking_pipeline.generate_batch(prompts, seed=7)]))
    scores = reranking_pipeline.reranker.score(drawn.flatten(0, 1), [p for p in prompts for _ in range(3)]).view(2, 3)
    videos = reranking_pipeline.generate_batch(prompts, seed=7, candidates=3, batch_size=3)  # one prompt per batch
    for i, video in enumerate(videos):
        assert np.array_equal(video.frames, drawn[i, scores[i].argmax()].numpy())


@pytest.mark.parametrize("candidates", [0, 17, 2.5])
def test_candidates_out_of_range_are_a_one_line_error(reranking_pipeline, candidates):
    with pytest.raises(T2VError, match="candidates must be an integer from 1 to 16"):
        reranking_pipeline("a red circle", seed=0, candidates=candidates)


def test_a_reranker_that_is_not_a_matcher_is_refused(tiny_videogpt, tmp_path):
    directory = save_model(tmp_path / "gpt", tiny_videogpt)
    pipe = Pipeline(tiny_videogpt, name="tiny", reranker=directory)
    with pytest.raises(T2VError, match="not a video-text matcher"):
        pipe("a red circle", seed=0, candidates=2)


def test_bundled_matcher_tells_held_out_videos_from_their_hard_negatives():
    """On test-split videos (held-out colour-shape pairs it never saw) the true caption outscores
    captions one attribute away."""
    from t2v.models.matcher import hard_negative_accuracy
    from t2v.pipelines.base import load_reranker

    accuracy = hard_negative_accuracy(load_reranker(), split="test", n=48)
    assert accuracy["all"] >= 0.6, accuracy


def test_match_suite_measures_a_matcher_only(tmp_path, tiny_videogpt):
    from t2v.eval.run import run_suites

    directory = save_model(tmp_path / "matcher", tiny_matcher())
    result = run_suites(str(directory), ["match"], log=lambda *_: None)["match"]
    assert set(result["test"]) == {"all", "colour", "shape", "size", "motion"}
    assert all(0 <= v <= 1 for v in result["test"].values())
    with pytest.raises(T2VError, match="not one"):
        run_suites(str(save_model(tmp_path / "gpt", tiny_videogpt)), ["match"], log=lambda *_: None)
