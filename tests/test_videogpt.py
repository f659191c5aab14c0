import pytest
import torch
from einops import rearrange

from t2v.checkpoint import load_model, save_model
from t2v.models.videogpt import VQVAE, VideoGPT
from t2v.nn.pixels import frames_to_tensor


def test_vqvae_shapes_through_encoder_quantizer_decoder(tiny_vqvae_config, shapes_batch):
    model = VQVAE(tiny_vqvae_config)
    video = frames_to_tensor(shapes_batch["video"])  # (4, 3, 8, 32, 32)
    recon, q = model(video)
    assert recon.shape == video.shape
    assert q.codes.shape == (4, 4, 8, 8)  # (B, T/2, H/4, W/4)
    codes = model.encode(video)
    assert codes.shape == (4, *tiny_vqvae_config.latent_shape)
    assert codes.max() < tiny_vqvae_config.codebook_size
    assert model.decode(codes).shape == video.shape


def test_dead_codes_are_restarted(tiny_vqvae_config, shapes_batch):
    model = VQVAE(tiny_vqvae_config).train()
    model(frames_to_tensor(shapes_batch["video"]))
    before = model.quantizer.codebook.clone()
    model.quantizer.cluster_size[:5] = 0.0  # pretend five codes went unused
    model(frames_to_tensor(shapes_batch["video"]))
    assert not torch.equal(before[:5], model.quantizer.codebook[:5])
    assert (model.quantizer.cluster_size[:5] > 0.5).all()


def test_prior_training_steps_lower_the_loss(tiny_videogpt, shapes_batch):
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW([p for p in tiny_videogpt.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        loss, _ = tiny_videogpt.training_loss(shapes_batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_tokenizer_stays_frozen_in_training(tiny_videogpt, shapes_batch):
    before = {k: v.clone() for k, v in tiny_videogpt.tokenizer.state_dict().items()}
    tiny_videogpt.train()
    tiny_videogpt.training_loss(shapes_batch)[0].backward()
    assert not tiny_videogpt.tokenizer.training
    for k, v in tiny_videogpt.tokenizer.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("guidance", [1.0, 3.0])
def test_kv_cache_gives_the_same_tokens(tiny_videogpt, guidance):
    tiny_videogpt.eval()
    prompts = ["a red circle moving left", "a big blue triangle goes up"]
    gens = lambda: [torch.Generator().manual_seed(s) for s in (1, 2)]  # noqa: E731
    with_cache = tiny_videogpt.generate_codes(prompts, generators=gens(), guidance=guidance, use_cache=True)
    without = tiny_videogpt.generate_codes(prompts, generators=gens(), guidance=guidance, use_cache=False)
    assert torch.equal(with_cache, without)


def test_sampling_is_deterministic_per_seed_and_batch_independent(tiny_videogpt):
    tiny_videogpt.eval()
    a = tiny_videogpt.generate_codes(["a red circle", "a green square"], generators=[torch.Generator().manual_seed(s) for s in (5, 6)])
    b = tiny_videogpt.generate_codes(["a green square"], generators=[torch.Generator().manual_seed(6)])
    c = tiny_videogpt.generate_codes(["a green square"], generators=[torch.Generator().manual_seed(7)])
    assert torch.equal(a[1:], b)
    assert not torch.equal(b, c)


def test_top_k_one_is_greedy(tiny_videogpt):
    tiny_videogpt.eval()
    gens = lambda s: [torch.Generator().manual_seed(s)]  # noqa: E731
    a = tiny_videogpt.generate_codes(["a cyan disc"], generators=gens(1), top_k=1)
    b = tiny_videogpt.generate_codes(["a cyan disc"], generators=gens(2), top_k=1)
    assert torch.equal(a, b)


def test_save_load_round_trip_is_bit_exact(tiny_videogpt, tmp_path):
    directory = save_model(tmp_path / "gpt", tiny_videogpt)
    loaded = load_model(directory, family="videogpt")
    assert isinstance(loaded, VideoGPT)
    for key, value in tiny_videogpt.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    gens = lambda: [torch.Generator().manual_seed(0)]  # noqa: E731
    tiny_videogpt.eval()
    assert torch.equal(tiny_videogpt.generate(["a white square"], generators=gens()),
                       loaded.generate(["a white square"], generators=gens()))


def test_a_new_prior_reuses_the_tokenizer_of_a_trained_prior(tiny_videogpt, tmp_path):
    from dataclasses import replace

    directory = save_model(tmp_path / "gpt", tiny_videogpt)
    fresh = VideoGPT.for_training(replace(tiny_videogpt.config, tokenizer=str(directory), layers=1))
    assert len(fresh.blocks) == 1
    for key, value in tiny_videogpt.tokenizer.state_dict().items():
        assert torch.equal(value, fresh.tokenizer.state_dict()[key]), key
    stage1 = save_model(tmp_path / "vqvae", tiny_videogpt.tokenizer)
    assert torch.equal(VideoGPT.for_training(replace(tiny_videogpt.config, tokenizer=str(stage1))).tokenizer.quantizer.codebook,
                       tiny_videogpt.tokenizer.quantizer.codebook)


def test_edge_weight_charges_a_blurred_edge_and_not_a_sharp_one():
    from t2v.models.stages import reconstruction_loss

    video = torch.full((1, 3, 1, 8, 8), -1.0)
    video[..., 2:6, 2:6] = 1.0  # a sharp square
    blurred = video.clone()
    blurred[..., 1, 2:6] = blurred[..., 6, 2:6] = 0.0  # its top and bottom edges smeared by a pixel
    assert reconstruction_loss(video, video, edge_weight=1.0)[1]["edge"] == 0.0
    loss, stats = reconstruction_loss(blurred, video, edge_weight=3.0)
    # down each of the 4 columns, steps of sizes 0, 2, 2, 0 became 1, 1, 1, 1 (4 off); across rows 1 and 6,
    # two steps of size 0 became 1 (2 off each); each direction has 7 x 8 = 56 steps
    assert stats["edge"] == pytest.approx((4 * 4 / 56 + 2 * 2 / 56) / 2)
    assert loss.item() == pytest.approx(stats["mse"] + 3.0 * stats["edge"])


def test_chroma_weight_charges_a_wrong_hue_on_a_small_object_and_not_the_background():
    from t2v.data.vocab import PALETTE
    from t2v.models.stages import chroma_difference, reconstruction_loss

    def video_with(rgb, brightness=1.0):  # a 2x2 object on a 16x16 black frame, in [-1, 1]
        frame = torch.full((1, 3, 1, 16, 16), -1.0)
        frame[..., 4:6, 4:6] = (torch.tensor(rgb, dtype=torch.float32) * brightness / 127.5 - 1).view(1, 3, 1, 1, 1)
        return frame

    orange, yellow = video_with(PALETTE["orange"]), video_with(PALETTE["yellow"])
    assert chroma_difference(orange, orange).item() == 0.0
    assert chroma_difference(video_with(PALETTE["orange"], 0.5), orange).item() < 1e-6  # dimmer, same hue
    wrong = chroma_difference(yellow, orange).item()
    assert wrong == pytest.approx(2 - 2 * 0.9756, abs=2e-3)  # orange and yellow are 0.976 alike in direction
    stats = reconstruction_loss(yellow, orange, chroma_weight=1.0)[1]
    assert stats["chroma"] > 10 * stats["mse"]  # 4 of 256 pixels: the MSE barely sees it
    grey_background = orange.clone()
    grey_background[..., :2, :] = -0.9  # faint light where the target is black
    assert chroma_difference(grey_background, orange).item() == 0.0


def test_chroma_difference_has_finite_gradients_at_black_reconstructed_pixels():
    from t2v.models.stages import chroma_difference

    target = torch.rand(1, 3, 2, 8, 8) * 2 - 1
    recon = target.clone()
    recon[..., :4, :] = -1.0  # pitch black where the target is lit: no hue, the norm clamped
    recon.requires_grad_(True)
    chroma_difference(recon, target).backward()
    assert torch.isfinite(recon.grad).all() and recon.grad[..., :4, :].abs().sum() > 0  # it pulls black to the hue


def test_l1_weight_adds_an_l1_term_to_the_reconstruction_loss(tiny_vqvae_config, shapes_batch):
    from dataclasses import replace

    from t2v.models.stages import reconstruction_loss

    recon, video = torch.zeros(2, 3, 4, 8, 8), torch.full((2, 3, 4, 8, 8), 0.5)
    assert reconstruction_loss(recon, video)[0].item() == pytest.approx(0.25)
    assert reconstruction_loss(recon, video, l1_weight=2.0)[0].item() == pytest.approx(0.25 + 2 * 0.5)
    torch.manual_seed(0)
    mse_only = VQVAE(tiny_vqvae_config).training_loss(shapes_batch)
    torch.manual_seed(0)
    with_l1 = VQVAE(replace(tiny_vqvae_config, l1_weight=1.0)).training_loss(shapes_batch)
    assert "l1" not in mse_only[1] and with_l1[1]["l1"] > 0
    assert with_l1[0].item() == pytest.approx(mse_only[0].item() + with_l1[1]["l1"], rel=1e-5)


def test_chroma_weight_adds_the_hue_term_to_a_vq_tokenizers_loss(tiny_vqvae_config, shapes_batch):
    from dataclasses import replace

    torch.manual_seed(0)
    plain = VQVAE(tiny_vqvae_config).training_loss(shapes_batch)
    torch.manual_seed(0)
    with_hue = VQVAE(replace(tiny_vqvae_config, chroma_weight=2.0)).training_loss(shapes_batch)
    assert "chroma" not in plain[1] and with_hue[1]["chroma"] > 0
    assert with_hue[0].item() == pytest.approx(plain[0].item() + 2.0 * with_hue[1]["chroma"], rel=1e-5)


def test_near_codes_swaps_a_share_of_codes_each_for_one_of_its_nearest_others():
    from t2v.nn.quantize import EMAVectorQuantizer

    quantizer = EMAVectorQuantizer(16, 1)
    quantizer.codebook.copy_(torch.arange(16.0)[:, None] ** 1.5)  # on a line, gaps growing: neighbours known
    codes = torch.full((4000,), 8)
    torch.manual_seed(0)
    swapped = quantizer.near_codes(codes, 0.25, nearest=2)
    assert set(swapped.unique().tolist()) == {7, 8, 9}  # 7 and 9 are the two closest to 8
    assert (swapped != 8).float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert torch.equal(quantizer.near_codes(codes, 0.0), codes)


def test_code_noise_perturbs_what_the_decoder_reads_only_in_training(tiny_vqvae_config, shapes_batch):
    from dataclasses import replace

    torch.manual_seed(0)
    model = VQVAE(replace(tiny_vqvae_config, code_noise=0.3))
    video = frames_to_tensor(shapes_batch["video"])
    model.train()(video)  # initialises the codebook from the batch
    z = rearrange(model.encoder(video), "b d t h w -> b t h w d")
    q = model.quantizer(z)
    noisy = model.decoder_input(q)
    changed = (noisy != q.z_q).any(-1).float().mean().item()
    assert 0.15 < changed < 0.4  # a share of positions near 0.3 (a swap can land on an equal vector)
    assert torch.equal(model.eval().decoder_input(q), q.z_q)
