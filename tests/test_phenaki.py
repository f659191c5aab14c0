"""Phenaki: the causal C-ViViT tokenizer, MaskGIT sampling, first-frame prompts and stories (tiny configs)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from t2v.checkpoint import load_model, save_model
from t2v.errors import T2VError
from t2v.models.phenaki import CViViT, CViViTConfig, Phenaki, PhenakiConfig, mask_ratio
from t2v.nn.pixels import frames_to_tensor
from t2v.pipelines import load_pipeline
from t2v.text import TextEncoderConfig


@pytest.fixture
def cvivit_config():
    # 7 frames = the first + 2 tubelets of 3; 32x32 in 8x8 patches -> a (3, 4, 4) code grid
    return CViViTConfig(dim=32, heads=2, spatial_layers=1, temporal_layers=2, patch_size=8, temporal_patch=3,
                        codebook_size=64, code_dim=8, max_slots=8, num_frames=7, height=32, width=32)


@pytest.fixture
def cvivit(cvivit_config):
    torch.manual_seed(0)
    return CViViT(cvivit_config).eval()


@pytest.fixture
def phenaki(cvivit_config):
    torch.manual_seed(0)
    text = TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256)
    return Phenaki(PhenakiConfig(dim=32, layers=2, heads=2, text=text, cvivit=cvivit_config, steps=4)).eval()


def random_video(frames: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, frames, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_tokens_per_video_against_a_per_frame_tokenizer(cvivit_config):
    slots, h, w = CViViTConfig().latent_shape  # the shapes default: 16x64x64 -> (4, 8, 8)
    assert slots * h * w == 256 and 16 * h * w == 1024  # 75% fewer tokens than per-frame 8x8 patches


@pytest.mark.parametrize("frames", [1, 4, 7, 10, 13])
def test_variable_length_encode_decode(cvivit, frames):
    codes = cvivit.encode(random_video(frames))
    assert codes.shape == (2, 1 + (frames - 1) // 3, 4, 4)
    assert cvivit.decode(codes).shape == (2, 3, frames, 32, 32)


def test_frame_counts_the_tokenizer_cannot_split_are_refused(cvivit):
    with pytest.raises(T2VError, match=r"1 \+ k\*3 frames, got 6"):
        cvivit.encode(random_video(6))


@pytest.mark.parametrize("changed_frame", [1, 4, 6])
def test_encoder_is_causal(cvivit, changed_frame):
    video = random_video(10)
    edited = video.clone()
    edited[:, :, changed_frame] = -edited[:, :, changed_frame]
    slot = 1 + (changed_frame - 1) // 3  # the tubelet holding the changed frame
    with torch.no_grad():
        before, after = cvivit.encode_latents(video), cvivit.encode_latents(edited)
    assert torch.equal(before[:, :slot], after[:, :slot])  # earlier slots: bit-identical
    assert not torch.allclose(before[:, slot], after[:, slot])


def test_decoder_is_causal(cvivit):
    codes = cvivit.encode(random_video(10))
    with torch.no_grad():
        full, prefix = cvivit.decode(codes), cvivit.decode(codes[:, :2])
    assert torch.allclose(full[:, :, :4], prefix, atol=1e-5)


def test_pixel_refiner_starts_as_the_identity_and_keeps_decoding_causal(cvivit_config):
    torch.manual_seed(0)
    plain = CViViT(cvivit_config).eval()
    refined = CViViT(replace(cvivit_config, refine_channels=8)).eval()
    refined.load_state_dict(plain.state_dict(), strict=False)
    codes = plain.encode(random_video(10))
    with torch.no_grad():
        assert torch.equal(refined.decode(codes), plain.decode(codes))  # zero-initialised last convolution
        torch.nn.init.normal_(refined.refine.net[-1].weight, std=0.1)
        full, prefix = refined.decode(codes), refined.decode(codes[:, :2])
    assert not torch.allclose(full, plain.decode(codes))
    assert torch.allclose(full[:, :, :4], prefix, atol=1e-5)  # frame by frame: still causal


def test_one_image_is_a_one_frame_video(cvivit):
    image = random_video(1)
    assert cvivit.encode(image).shape == (2, 1, 4, 4)
    assert cvivit.decode(cvivit.encode(image)).shape == (2, 3, 1, 32, 32)


def test_mask_schedule_endpoints():
    assert mask_ratio(0.0).item() == pytest.approx(1.0)
    assert mask_ratio(1.0).item() == pytest.approx(0.0, abs=1e-6)
    ratios = mask_ratio(torch.linspace(0, 1, 11))
    assert (ratios[1:] <= ratios[:-1]).all()


def test_tokenizer_training_lowers_the_loss(cvivit_config):
    from t2v.data.stream import ShapesDataConfig, ShapesStream
    from t2v.train.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    data = ShapesStream(ShapesDataConfig(num_frames=7, height=32, width=32))
    trainer = Trainer(CViViT(cvivit_config), data, TrainConfig(steps=30, batch_size=4, lr=2e-3, warmup_steps=3,
                                                                out_dir="unused"), log=lambda *_: None)
    losses = [trainer.train_step()["loss"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_maskgit_training_lowers_the_loss(phenaki):
    from t2v.data.stream import ShapesDataConfig, ShapesStream

    batch = ShapesStream(ShapesDataConfig(num_frames=7, height=32, width=32)).batch(0, 4)
    phenaki.train()
    optimizer = torch.optim.AdamW([p for p in phenaki.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        torch.manual_seed(1)  # the same masks each step: the loss on them must fall
        loss, _ = phenaki.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_sampling_fills_every_token_and_keeps_a_prefix(phenaki):
    prefix = torch.randint(0, 64, (2, 1, 4, 4))
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    codes = phenaki.generate_codes(["a red circle moving left", "a blue square"], generators=gens, prefix=prefix)
    assert codes.shape == (2, 3, 4, 4)
    assert (codes < 64).all()  # no [MASK] left
    assert torch.equal(codes[:, :1], prefix)


def test_steps_out_of_range_is_an_error(phenaki):
    with pytest.raises(T2VError, match="steps must be 1..64"):
        phenaki.generate_codes(["a red circle"], steps=0)


def test_choice_temperature_is_the_noise_on_which_tokens_are_kept(phenaki):
    def codes(choice_temperature, seed):
        gens = [torch.Generator().manual_seed(seed)]
        return phenaki.generate_codes(["a red circle moving left"], generators=gens, temperature=0.0,
                                      choice_temperature=choice_temperature)

    # greedy tokens and no Gumbel noise: the same grid whatever the generator draws
    assert torch.equal(codes(0.0, 1), codes(0.0, 2))
    assert any(not torch.equal(codes(50.0, 1), codes(50.0, seed)) for seed in (2, 3, 4))
    with pytest.raises(T2VError, match="choice_temperature must be >= 0"):
        codes(-1.0, 1)


@pytest.fixture
def pipe(phenaki, tmp_path):
    return load_pipeline(save_model(tmp_path / "tiny-phenaki", phenaki))


def test_sampling_is_deterministic_for_a_seed(pipe):
    a, b = pipe("a red circle moving left", seed=3), pipe("a red circle moving left", seed=3)
    assert np.array_equal(a.frames, b.frames)
    assert a.frames.shape == (7, 32, 32, 3)
    assert not np.array_equal(a.frames, pipe("a red circle moving left", seed=4).frames)


def test_any_frame_count_the_tokenizer_allows(pipe):
    assert pipe("a red circle", seed=0, num_frames=13).frames.shape == (13, 32, 32, 3)
    with pytest.raises(T2VError, match="1 \\+ k\\*3"):
        pipe("a red circle", seed=0, num_frames=8)


def test_first_frame_is_continued(pipe, tmp_path):
    from t2v.video import Video

    image = np.zeros((32, 32, 3), np.uint8)
    image[8:16, 8:16] = (220, 40, 40)
    Video(image[None], fps=8).save(tmp_path / "first.png")
    for given in (image, tmp_path / "first.png"):
        video = pipe("a red square moving right", seed=0, first_frame=given)
        assert video.frames.shape == (7, 32, 32, 3)
    with pytest.raises(T2VError, match="first_frame must be uint8"):
        pipe("a red square", first_frame=np.zeros((5, 5, 3), np.uint8))


def test_story_length_is_segments_times_frames(pipe):
    story = pipe.story(["a red circle moving left", "a red circle moving up", "a red circle staying still"], seed=0)
    assert story.frames.shape == (3 * 7, 32, 32, 3)
    again = pipe.story(["a red circle moving left", "a red circle moving up", "a red circle staying still"], seed=0)
    assert np.array_equal(story.frames, again.frames)
    with pytest.raises(T2VError, match="empty"):
        pipe.story(["a red circle", " "])


def test_save_load_round_trip(phenaki, tmp_path):
    loaded = load_model(save_model(tmp_path / "p", phenaki))
    for key, value in phenaki.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    video = frames_to_tensor(torch.zeros(1, 7, 32, 32, 3, dtype=torch.uint8))
    assert torch.equal(phenaki.tokenizer.encode(video), loaded.tokenizer.encode(video))


def test_story_from_the_command_line(phenaki, tiny_videogpt, tmp_path):
    import subprocess
    import sys

    from t2v.video import read_video

    model = save_model(tmp_path / "tiny-phenaki", phenaki)
    cmd = [sys.executable, "-m", "t2v.cli", "generate", "--story", "a red circle moving left", "a red circle moving up",
           "--model", str(model), "-o", str(tmp_path / "story.mp4"), "--steps", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert read_video(tmp_path / "story.mp4").frames.shape == (14, 32, 32, 3)
    gpt = save_model(tmp_path / "tiny-gpt", tiny_videogpt)
    for extra, message in ((["--story", "a", "b"], "cannot follow a story"), (["a red circle", "--steps", "4"], "'steps'")):
        done = subprocess.run([sys.executable, "-m", "t2v.cli", "generate", *extra, "--model", str(gpt), "-o",
                               str(tmp_path / "x.mp4")], capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "float32")])
def test_auto_precision_samples_in_bf16_only_with_bfloat16_instructions(phenaki, monkeypatch, native, expected):
    import t2v.pipelines.base as base
    from t2v.pipelines.phenaki import PhenakiPipeline

    monkeypatch.setattr(base, "bf16_is_fast", lambda device: native)
    pipe = PhenakiPipeline(phenaki, precision="auto")
    assert pipe.precision == expected
    seen = []
    hook = phenaki.head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    try:
        video = pipe("a red circle moving left", seed=0)
        story = pipe.story(["a red circle moving left", "a red circle moving up"], seed=0, num_frames=4)
    finally:
        hook.remove()
    assert video.frames.dtype == np.uint8 and video.frames.shape == (7, 32, 32, 3) and story.num_frames == 8
    assert set(seen) == {torch.bfloat16 if expected == "bf16" else torch.float32}


def test_unknown_precision_is_a_one_line_error(phenaki):
    from t2v.pipelines.phenaki import PhenakiPipeline

    with pytest.raises(T2VError, match="precision must be one of auto, float32, bf16, got 'fp8'"):
        PhenakiPipeline(phenaki, precision="fp8")
    assert PhenakiPipeline(phenaki).precision == "float32"  # a pipeline built directly (as `t2v eval` does)


def test_stories_benchmark_judges_the_seam_apart_from_the_frames_inside_segments():
    import importlib.util
    from pathlib import Path

    from t2v.data.shapes import ShapeObject, Scene, render_scene, speed_px

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "stories.py"
    spec = importlib.util.spec_from_file_location("stories_benchmark", path)
    stories = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stories)
    left = render_scene(Scene((ShapeObject("red", "circle", "large", "left", 40.0, 32.0),), num_frames=8))
    jumped = render_scene(Scene((ShapeObject("red", "circle", "large", "up", 16.0, 40.0),), num_frames=8))
    frames = np.concatenate([left, jumped])  # (16, 64, 64, 3): the object jumps at frame 8
    limit = 2 * speed_px(64)
    steps = stories.centroid_steps(frames, "red")
    assert steps[7] > limit  # frame 7 -> 8, the seam
    inner = stories.inner_jumps(steps, 8)
    assert len(inner) == 14 and (inner <= limit).all()  # the seam pair is not among them
    assert np.isinf(stories.centroid_steps(np.zeros_like(frames), "red")).all()  # no object: never continuous
