"""The diffusion core on a denoiser whose answer is known exactly: Gaussian data N(mu, s^2), whose
posterior mean E[x0 | x_t] is linear in x_t. Any correct sampler must then draw N(mu, s^2)."""

import pytest
import torch

from t2v.diffusion import SAMPLERS, DiffusionConfig, DiffusionProcess, classifier_free_guidance, ddim_invert, sample

MU, STD = 0.7, 0.3


def gaussian_denoiser(process: DiffusionProcess):
    """The optimal denoiser for data N(MU, STD^2), in the process's own prediction target."""

    def denoise(x, t):
        alpha, sigma = (a.view(-1, *([1] * (x.dim() - 1))) for a in process.alpha_sigma(t))
        x0 = MU + alpha * STD**2 / (alpha**2 * STD**2 + sigma**2) * (x - alpha * MU)
        eps = (x - alpha * x0) / sigma.clamp_min(1e-8)
        return {"eps": eps, "v": alpha * eps - sigma * x0, "flow": eps - x0}[process.config.prediction]

    return denoise


def noise(n=2000, seed=0):
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("prediction", ["eps", "v", "flow"])
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_draws_the_data_distribution_for_every_prediction(prediction, sampler):
    process = DiffusionProcess(DiffusionConfig(prediction=prediction))
    steps = 100 if sampler == "ddpm" else 50
    x = sample(gaussian_denoiser(process), process, noise(), sampler=sampler, steps=steps,
               generators=[torch.Generator().manual_seed(1)] if sampler == "ddpm" else None)
    assert abs(x.mean().item() - MU) < 0.02
    assert abs(x.std().item() - STD) < 0.05


def test_deterministic_samplers_converge_to_one_map_whatever_the_model_was_trained_on():
    """The probability-flow ODE is the same for eps, v and flow models: the same noise lands on the same sample."""
    results = []
    for prediction in ("eps", "flow"):
        process = DiffusionProcess(DiffusionConfig(prediction=prediction))
        for sampler in ("ddim", "dpm++", "flow-heun"):
            results.append(sample(gaussian_denoiser(process), process, noise(64), sampler=sampler, steps=200))
    for x in results[1:]:
        assert (x - results[0]).abs().max() < 0.05  # samples spread 0.3; a wrong map is off by that much


def test_more_steps_approach_the_exact_answer():
    process = DiffusionProcess(DiffusionConfig(prediction="flow"))
    errors = [abs(sample(gaussian_denoiser(process), process, noise(), sampler="flow-euler", steps=n).std().item() - STD)
              for n in (5, 20, 200)]
    assert errors[0] > errors[1] > errors[2]


def test_sampling_is_deterministic_for_a_seed():
    process = DiffusionProcess(DiffusionConfig(prediction="v"))
    runs = [sample(gaussian_denoiser(process), process, noise(8), sampler="ddpm", steps=20,
                   generators=[torch.Generator().manual_seed(3) for _ in range(8)]) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_ddim_inversion_round_trip_improves_with_steps():
    process = DiffusionProcess(DiffusionConfig(prediction="v"))
    denoise = gaussian_denoiser(process)
    x0 = MU + STD * noise(16, seed=5)
    errors = []
    for steps in (10, 100):
        z = ddim_invert(denoise, process, x0, steps=steps)
        errors.append((sample(denoise, process, z, sampler="ddim", steps=steps) - x0).abs().max().item())
        assert 0.5 < z.std().item() < 1.5  # inverted latents look like unit noise
    assert errors[1] < errors[0] / 4 and errors[1] < 0.1  # first-order: 10x the steps, ~1/10 the error


@pytest.mark.parametrize("prediction", ["eps", "v", "flow"])
def test_training_target_recovers_x0_and_eps(prediction):
    process = DiffusionProcess(DiffusionConfig(prediction=prediction))
    x0, eps = torch.randn(6, 3), torch.randn(6, 3)
    t = torch.tensor([10.0, 100, 400, 700, 900, 990])
    x = process.add_noise(x0, eps, t)
    x0_hat, eps_hat = process.to_x0_eps(process.target(x0, eps, t), x, t)
    torch.testing.assert_close(x0_hat, x0, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(eps_hat, eps, atol=1e-3, rtol=1e-3)


def test_min_snr_weighting_down_weights_low_noise_steps():
    process = DiffusionProcess(DiffusionConfig(prediction="eps", loss_weighting="min_snr"))
    w = process.loss_weight(torch.tensor([5.0, 500.0, 990.0]))
    assert w[0] < 0.1 and w[2] == pytest.approx(1.0)


def test_training_loss_is_lower_for_the_right_denoiser():
    process = DiffusionProcess(DiffusionConfig(prediction="flow"))
    x0 = MU + STD * noise(512)
    right = process.training_loss(gaussian_denoiser(process), x0, torch.Generator().manual_seed(0))
    wrong = process.training_loss(lambda x, t: torch.zeros_like(x), x0, torch.Generator().manual_seed(0))
    assert right < 0.5 * wrong


def test_guidance_extrapolates_from_unconditional_to_conditional():
    def pair(x, t, guided):
        return torch.cat([torch.ones_like(x[: len(x) // 2]), torch.zeros_like(x[len(x) // 2:])]) if guided else x

    out = classifier_free_guidance(pair, 3.0)(torch.zeros(2, 4), torch.zeros(2))
    assert torch.equal(out, torch.full((2, 4), 3.0))


def test_bad_sampler_and_steps_are_one_line_errors():
    process = DiffusionProcess(DiffusionConfig())
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(lambda x, t: x, process, noise(2), sampler="heun9")
    with pytest.raises(ValueError, match="steps must be"):
        sample(lambda x, t: x, process, noise(2), steps=0)
    with pytest.raises(ValueError, match="prediction must be"):
        DiffusionConfig(prediction="x0")
