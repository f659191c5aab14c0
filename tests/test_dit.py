"""The causal video VAE and the DiT / Sora family on tiny configs: any size and duration, images,
image prompts, extension, the three conditioning variants, training, save/load."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from t2v.checkpoint import load_model, save_model
from t2v.data.stream import ShapesDataConfig, ShapesStream
from t2v.diffusion import DiffusionConfig
from t2v.errors import T2VError
from t2v.models.dit import DiT, DiTConfig
from t2v.models.video_vae import VideoVAE, VideoVAEConfig
from t2v.text import TextEncoderConfig


@pytest.fixture
def vae_config():
    return VideoVAEConfig(channels=[8, 16, 16], num_res_blocks=1, latent_channels=4, num_frames=8, height=32, width=32)


@pytest.fixture
def vae(vae_config):
    torch.manual_seed(0)
    return VideoVAE(vae_config).eval()


def dit_config(vae_config, **overrides):
    text = TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256)
    options = dict(dim=32, layers=2, heads=2, text=text, video_vae=vae_config, num_frames=8, height=32, width=32,
                   diffusion=DiffusionConfig(steps=3), min_side=16, max_side=64)
    return DiTConfig(**(options | overrides))


@pytest.fixture
def dit(vae_config):
    torch.manual_seed(0)
    return DiT(dit_config(vae_config)).eval()


def video(b, t, h, w, seed=0):
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- the VAE
@pytest.mark.parametrize("frames", [1, 4, 8, 12])
def test_vae_compresses_time_by_4_and_space_by_8(vae, frames):
    z = vae.encode(video(2, frames, 32, 48))
    assert z.shape == (2, 4, -(-frames // 4), 4, 6)
    assert vae.decode(z, frames).shape == (2, 3, frames, 32, 48)


@pytest.mark.parametrize("changed_frame", [4, 6, 9])
def test_vae_encoder_and_decoder_are_causal(vae, changed_frame):
    x = video(1, 12, 32, 32)
    y = x.clone()
    y[:, :, changed_frame:] = 0
    changed = (vae.encode(x) - vae.encode(y)).abs().amax(dim=(0, 1, 3, 4))  # per latent frame
    first = changed_frame // 4
    assert changed[:first].max() == 0 and changed[first:].min() > 0
    z = vae.encode(x)
    z2 = z.clone()
    z2[:, :, 1] += 1
    frames_changed = (vae.decode(z) - vae.decode(z2)).abs().amax(dim=(0, 1, 3, 4))
    assert frames_changed[:4].max() == 0 and frames_changed[4:8].min() > 0


def test_an_image_is_a_one_frame_video(vae):
    x = video(2, 8, 32, 32)
    assert vae.encode(x[:, :, :1]).shape[2] == 1
    assert vae.reconstruct(torch.zeros(2, 1, 32, 32, 3, dtype=torch.uint8)).shape == (2, 1, 32, 32, 3)


def test_vae_training_lowers_the_loss(vae):
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 4)
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss, logs = vae.training_loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert {"mse", "psnr", "kl"} <= set(logs)


def test_chroma_weight_adds_the_hue_term_to_the_vae_loss(vae_config):
    from dataclasses import replace

    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 2)
    losses = []
    for weight in (0.0, 2.0):
        torch.manual_seed(0)
        model = VideoVAE(replace(vae_config, chroma_weight=weight))
        torch.manual_seed(1)  # the same latent noise for both
        losses.append(model.training_loss(batch))
    (plain, plain_logs), (with_hue, hue_logs) = losses
    assert "chroma" not in plain_logs and hue_logs["chroma"] > 0
    assert with_hue.item() == pytest.approx(plain.item() + 2.0 * hue_logs["chroma"], rel=1e-5)


def test_vae_refuses_sizes_it_cannot_split(vae):
    with pytest.raises(T2VError, match="multiples of 8"):
        vae.encode(video(1, 4, 30, 32))


# ----------------------------------------------------------------------------- the DiT
def test_adaln_zero_starts_as_identity_with_zero_output(dit):
    x = torch.randn(2, 4, 2, 4, 4)
    text = dit.text(["a red circle moving left", "a blue square moving up"])
    out = dit(x, torch.tensor([10.0, 500.0]), text)
    assert out.shape == x.shape and out.abs().max() == 0


@pytest.mark.parametrize("conditioning", ["adaln-zero", "in-context", "cross-attention"])
def test_every_conditioning_trains(vae_config, conditioning):
    torch.manual_seed(0)
    extra = {} if conditioning == "adaln-zero" else {"image_prompt_prob": 0.0, "extend_prob": 0.0}
    model = DiT(dit_config(vae_config, conditioning=conditioning, **extra)).train()
    batch = ShapesStream(ShapesDataConfig(num_frames=8, height=32, width=32)).batch(0, 8)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for step in range(25):
        torch.manual_seed(step % 5)  # the same five noise draws over and over: the loss must fall
        loss, _ = model.training_loss(batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])


def test_prompting_modes_need_adaln(vae_config):
    with pytest.raises(ValueError, match="per-token timesteps"):
        dit_config(vae_config, conditioning="in-context")


@pytest.mark.parametrize("size", [(8, 32, 32), (8, 16, 48), (12, 48, 16), (4, 32, 32), (1, 32, 32), (16, 32, 32)])
def test_any_size_duration_and_images(dit, size):
    t, h, w = size
    frames = dit.generate(["a red circle moving left"], num_frames=t, height=h, width=w,
                          generators=[torch.Generator().manual_seed(0)])
    assert frames.shape == (1, t, h, w, 3) and frames.dtype == torch.uint8


def test_a_space_4_vae_with_4x4_patches_keeps_the_token_count(vae_config):
    """configs/dit_shapes_s4.yaml: space / 4 latents in (1, 4, 4) patches are as many tokens as space / 8
    latents in (1, 2, 2) patches, and any size still works."""
    torch.manual_seed(0)
    s4 = DiT(dit_config(replace(vae_config, spatial_downsample=4, latent_channels=8), patch=[1, 4, 4])).eval()
    s8 = DiT(dit_config(vae_config)).eval()
    clip = torch.randint(0, 256, (1, 8, 32, 32, 3), dtype=torch.uint8)
    z4, z8 = s4.encode(clip), s8.encode(clip)  # (1, 8, 2, 8, 8) and (1, 4, 2, 4, 4)
    assert z4.shape[-2:] == (8, 8) and z8.shape[-2:] == (4, 4)
    assert s4.patchify(z4).shape[:2] == s8.patchify(z8).shape[:2]
    frames = s4.generate(["a red circle moving left"], num_frames=4, height=16, width=48,
                         generators=[torch.Generator().manual_seed(0)])
    assert frames.shape == (1, 4, 16, 48, 3)


def test_init_partial_carries_the_transformer_to_a_vae_of_another_shape(vae_config):
    """train.init_partial: a DiT on a space / 4 VAE starts from one trained on a space / 8 VAE; the blocks
    and text path are copied, the patch embedding, output layer and latent statistics stay its own."""
    from t2v.train import transferable_weights

    torch.manual_seed(0)
    s8 = DiT(dit_config(vae_config))
    s8.latent_std.fill_(3.0)
    torch.manual_seed(1)
    s4 = DiT(dit_config(replace(vae_config, spatial_downsample=4, latent_channels=8), patch=[1, 4, 4]))
    state = transferable_weights(s4, s8, log=lambda *_: None)
    theirs, own = s8.state_dict(), s4.state_dict()
    blocks = [k for k in state if k.startswith("blocks.")]
    assert blocks and all(torch.equal(state[k], theirs[k]) for k in blocks)
    assert not torch.equal(own["blocks.0.attn.qkv.weight"], theirs["blocks.0.attn.qkv.weight"])
    for name in ("patch_embed.weight", "latent_std", "tokenizer.encoder.0.conv.weight"):
        assert torch.equal(state[name], own[name]), name
    s4.load_state_dict(state)


def test_sizes_outside_the_range_are_one_line_errors(dit):
    with pytest.raises(T2VError, match="multiple of 16"):
        dit.generate(["a red circle"], height=40)
    with pytest.raises(T2VError, match="num_frames must be between 1 and 32"):
        dit.generate(["a red circle"], num_frames=40)


def test_sampling_is_deterministic_per_seed_and_batch_independent(dit):
    gen = lambda seeds: [torch.Generator().manual_seed(s) for s in seeds]  # noqa: E731
    prompts = ["a red circle moving left", "a blue square moving up"]
    both = dit.generate(prompts, generators=gen([3, 4]))
    assert torch.equal(both, dit.generate(prompts, generators=gen([3, 4])))
    assert torch.equal(both[1:], dit.generate(prompts[1:], generators=gen([4])))


@pytest.mark.parametrize("sampler", ["ddim", "dpm++", "flow-euler", "flow-heun"])
def test_samplers_run_on_the_model(dit, sampler):
    assert dit.generate(["a red circle"], sampler=sampler, steps=2).shape == (1, 8, 32, 32, 3)


def test_image_prompt_and_extension(dit):
    image = torch.randint(0, 255, (1, 32, 48, 3), dtype=torch.uint8)
    assert dit.generate(["a red circle moving left"], first_frame=image).shape == (1, 8, 32, 48, 3)
    given = torch.randint(0, 255, (1, 8, 32, 32, 3), dtype=torch.uint8)
    assert dit.generate(["a red circle moving left"], context=given, num_frames=8).shape == (1, 8, 32, 32, 3)
    with pytest.raises(T2VError, match="at least 4 frames"):
        dit.generate(["a red circle"], context=given[:, :2])


def test_extension_context_changes_the_continuation(dit):
    """The known frames enter the sequence: different context, different continuation (same seed)."""
    torch.manual_seed(0)
    for p in dit.parameters():  # leave the zero init, so the output depends on its input
        p.data.add_(torch.randn_like(p) * 0.05)
    gen = lambda: [torch.Generator().manual_seed(0)]  # noqa: E731
    a = dit.generate(["a red circle"], context=torch.zeros(1, 8, 32, 32, 3, dtype=torch.uint8), generators=gen())
    b = dit.generate(["a red circle"], context=torch.full((1, 8, 32, 32, 3), 255, dtype=torch.uint8), generators=gen())
    assert not torch.equal(a, b)


def test_for_training_measures_latent_statistics(vae, vae_config, tmp_path):
    directory = save_model(tmp_path / "vae", vae)
    model = DiT.for_training(dit_config(vae_config, tokenizer=str(directory)))
    assert not torch.allclose(model.latent_std, torch.ones_like(model.latent_std))
    torch.testing.assert_close(model.tokenizer.state_dict(), vae.state_dict())


def test_save_load_round_trip(dit, tmp_path):
    dit.latent_std.fill_(0.5)
    loaded = load_model(save_model(tmp_path / "dit", dit))
    assert loaded.config == dit.config and torch.equal(loaded.latent_std, dit.latent_std)
    gen = lambda: [torch.Generator().manual_seed(1)]  # noqa: E731
    assert torch.equal(loaded.generate(["a cat"], generators=gen()), dit.generate(["a cat"], generators=gen()))


def test_buckets_give_each_batch_one_size():
    stream = ShapesStream(ShapesDataConfig(buckets=[[8, 32, 32], [4, 16, 48], [1, 32, 32]]))
    shapes = {tuple(stream.batch(p, 2)["video"].shape[1:4]) for p in range(0, 40, 2)}
    assert shapes == {(8, 32, 32), (4, 16, 48), (1, 32, 32)}
    assert torch.equal(stream.batch(6, 2)["video"], stream.batch(6, 2)["video"])  # a pure function of position


# ----------------------------------------------------------------------------- the pipeline and CLI
@pytest.fixture
def dit_dir(dit, tmp_path):
    return save_model(tmp_path / "dit-tiny", dit)


def test_pipeline_sizes_first_frame_and_extension(dit_dir):
    from t2v.pipelines import load_pipeline

    pipe = load_pipeline(dit_dir)
    assert pipe("a red circle moving left", seed=0, num_frames=12, height=16, width=48).frames.shape == (12, 16, 48, 3)
    assert pipe("a red circle", seed=0, num_frames=1).frames.shape == (1, 32, 32, 3)  # text to image
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    assert pipe("a red circle", seed=0, first_frame=image).num_frames == 8
    given = pipe("a red circle moving left", seed=0)
    longer = pipe.extend(given, "a red circle moving left", seed=1, num_frames=8)
    assert longer.num_frames == 16 and np.array_equal(longer.frames[:8], given.frames)
    with pytest.raises(T2VError, match="height must be a multiple of 16"):
        pipe("a red circle", height=20)
    with pytest.raises(T2VError, match="does not take the option 'temperature'"):
        pipe("a red circle", temperature=0.5)


def test_cli_generates_at_any_size_and_extends(dit_dir, tmp_path):
    from typer.testing import CliRunner

    from t2v.cli import app

    runner = CliRunner()
    out = tmp_path / "wide.mp4"
    result = runner.invoke(app, ["generate", "a red circle moving left", "-m", str(dit_dir), "--frames", "4",
                                 "--height", "16", "--width", "48", "--sampler", "ddim", "--steps", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "4x16x48" in result.output and out.is_file()
    longer = tmp_path / "longer.npy"
    result = runner.invoke(app, ["generate", "a red circle moving left", "-m", str(dit_dir), "--extend", str(out),
                                 "--frames", "4", "--steps", "2", "-o", str(longer)])
    assert result.exit_code == 0, result.output
    assert np.load(longer).shape == (8, 16, 48, 3)
    result = runner.invoke(app, ["generate", "a red circle", "-m", str(dit_dir), "--sampler", "heun9"])
    assert isinstance(result.exception, T2VError) and "unknown sampler 'heun9'" in str(result.exception)  # main() prints it
