import json

import pytest
import torch
from safetensors import safe_open

from t2v.checkpoint import (INT8_SCALE, convert_checkpoint, dequantize_int8, load_model, quantize_int8, read_config,
                            save_model)
from t2v.errors import T2VError
from t2v.models.videogpt import VQVAE


@pytest.fixture
def saved(tmp_path, tiny_vqvae_config):
    torch.manual_seed(0)
    model = VQVAE(tiny_vqvae_config)
    return model, save_model(tmp_path / "ckpt", model, card="# tiny\n")


def test_round_trip_is_bit_exact(saved):
    model, directory = saved
    loaded = load_model(directory)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert read_config(directory)["family"] == "videogpt-vqvae"
    assert (directory / "README.md").read_text() == "# tiny\n"


def test_half_precision_export_loads_as_float32(tmp_path, tiny_vqvae_config):
    model = VQVAE(tiny_vqvae_config)
    loaded = load_model(save_model(tmp_path / "half", model, weights="float16"))
    weight = loaded.decoder[0].weight
    assert weight.dtype == torch.float32
    assert torch.allclose(weight, model.decoder[0].weight, atol=1e-3)


def test_int8_storage_keeps_every_weight_within_half_a_step_and_halves_the_bytes():
    torch.manual_seed(0)
    tensors = {"linear.weight": torch.randn(256, 64), "conv.weight": torch.randn(32, 16, 3, 3, 3) * 0.01,
               "norm.weight": torch.randn(64), "steps": torch.tensor([3])}
    stored = quantize_int8(tensors)
    assert stored["linear.weight"].dtype == torch.int8 and stored["conv.weight"].dtype == torch.int8
    assert stored["norm.weight"].dtype == torch.float16 and torch.equal(stored["steps"], tensors["steps"])
    assert set(stored) == set(tensors) | {"linear.weight" + INT8_SCALE, "conv.weight" + INT8_SCALE}
    back = dequantize_int8(stored)
    for key in ("linear.weight", "conv.weight"):
        rows = tensors[key].flatten(1)
        step = rows.abs().amax(dim=1, keepdim=True) / 127  # (out, 1)
        assert ((back[key] - tensors[key]).flatten(1).abs() <= 0.5 * step * 1.01 + 1e-7).all(), key
    byte_size = lambda t: sum(v.numel() * v.element_size() for v in t.values())  # noqa: E731
    assert byte_size(stored) < 0.55 * byte_size({k: v.half() for k, v in tensors.items()})


def test_an_int8_checkpoint_loads_as_float32_close_to_the_model(tmp_path, tiny_vqvae_config):
    torch.manual_seed(0)
    model = VQVAE(tiny_vqvae_config).eval()
    directory = save_model(tmp_path / "int8", model, weights="int8")
    with safe_open(str(directory / "model.safetensors"), "pt") as f:
        assert sum(key.endswith(INT8_SCALE) for key in f.keys()) >= 4  # its conv weights are stored as int8
    loaded = load_model(directory)
    video = torch.rand(1, 3, 8, 32, 32) * 2 - 1
    with torch.no_grad():
        ours, theirs = model.encoder(video), loaded.encoder(video)
    assert loaded.decoder[0].weight.dtype == torch.float32
    assert (ours - theirs).abs().max() < 0.02 * ours.abs().max()


def test_int8_scales_without_their_weight_are_a_one_line_error():
    stored = quantize_int8({"linear.weight": torch.randn(64, 64)})
    del stored["linear.weight"]
    with pytest.raises(T2VError, match="without a matching int8 tensor 'linear.weight'"):
        dequantize_int8(stored, where="model.safetensors")


def test_convert_copies_the_checkpoint_without_its_scores(saved, tmp_path):
    model, directory = saved
    (directory / "scores.json").write_text("{}")
    (directory / "README.md").write_text("# tiny\n\n## Measured scores\n\n- psnr 30 dB\n")
    out = convert_checkpoint(directory, tmp_path / "converted", "int8")
    assert not (out / "scores.json").exists() and (out / "README.md").read_text() == "# tiny\n"
    assert (out / "model.safetensors").stat().st_size < 0.45 * (directory / "model.safetensors").stat().st_size
    assert load_model(out).decoder[0].weight.shape == model.decoder[0].weight.shape
    with pytest.raises(T2VError, match="one of float32, float16, int8"):
        convert_checkpoint(directory, tmp_path / "bad", "int4")
    assert not (tmp_path / "bad").exists()


def test_missing_directory_names_it(tmp_path):
    with pytest.raises(T2VError, match="not found"):
        load_model(tmp_path / "nowhere")


def test_truncated_weights_fail_with_one_line(saved):
    _, directory = saved
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(T2VError, match="model.safetensors") as err:
        load_model(directory)
    assert "\n" not in str(err.value)


def test_foreign_weights_file_is_refused(saved):
    _, directory = saved
    (directory / "model.safetensors").write_bytes(b"\x80\x04\x95 this is a pickle, not safetensors")
    with pytest.raises(T2VError, match="not a readable safetensors"):
        load_model(directory)


def test_config_of_another_family_or_version_is_refused(saved):
    _, directory = saved
    with pytest.raises(T2VError, match="expected 'videogpt'"):
        load_model(directory, family="videogpt")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(T2VError, match="format version 99"):
        load_model(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(T2VError, match="not valid JSON"):
        load_model(directory)


def test_weights_of_another_shape_are_refused(saved, tmp_path, tiny_vqvae_config):
    _, directory = saved
    from dataclasses import replace

    bigger = VQVAE(replace(tiny_vqvae_config, codebook_size=64))
    other = save_model(tmp_path / "other", bigger)
    (directory / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(T2VError, match="has shape"):
        load_model(directory)
