import json

import pytest
import torch

from t2v.checkpoint import load_model, read_config, save_model
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
    loaded = load_model(save_model(tmp_path / "half", model, half=True))
    weight = loaded.decoder[0].weight
    assert weight.dtype == torch.float32
    assert torch.allclose(weight, model.decoder[0].weight, atol=1e-3)


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
