"""Text encoders: MiniLM loads offline and is frozen, cached and semantic; the small encoder learns."""

from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.nn.functional as F

os.environ["HF_HUB_OFFLINE"] = "1"  # any attempt to reach a hub fails instead of downloading
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from t2v.errors import T2VError  # noqa: E402
from t2v.text import (MiniLMEncoder, SmallTextEncoder, TextEmbedding, TextEncoderConfig,  # noqa: E402
                      build_text_encoder, hash_tokenize)

PROMPTS = ["a red circle moving left", "a square", "two small blue triangles bouncing around the frame quickly"]


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEncoder(max_length=32)


@pytest.fixture
def small():
    torch.manual_seed(0)
    return SmallTextEncoder(TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256, max_length=16))


def test_minilm_shapes_and_mask_pad_to_longest_prompt(minilm):
    out = minilm(PROMPTS)
    lengths = out.mask.sum(1).tolist()
    assert out.states.shape == (3, max(lengths), 384) and out.pooled.shape == (3, 384)
    assert out.mask.dtype == torch.bool and lengths[1] < lengths[0] < lengths[2]
    for row, n in zip(out.mask, lengths):  # real tokens first, padding after
        assert row[:n].all() and not row[n:].any()
    assert (out.states[1, lengths[1]:] == 0).all()


def test_minilm_pooled_is_normalised_and_matches_sentence_transformers(minilm):
    pooled = minilm(PROMPTS).pooled
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(3), atol=1e-5)
    st = pytest.importorskip("sentence_transformers")
    from t2v.text.encoders import minilm_dir

    reference = st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(PROMPTS, convert_to_tensor=True)
    assert torch.allclose(pooled, reference.cpu(), atol=1e-4)


def test_minilm_paraphrase_is_closer_than_a_different_scene(minilm):
    anchor, paraphrase, other = minilm(["a red circle moving left", "a crimson ball drifting leftwards",
                                        "a green square staying still"]).pooled
    assert F.cosine_similarity(anchor, paraphrase, dim=0) > F.cosine_similarity(anchor, other, dim=0)


def test_minilm_is_deterministic_and_cache_matches_fresh_encoding(minilm):
    MiniLMEncoder.clear_cache()
    fresh = minilm(PROMPTS)
    cached = minilm(PROMPTS)
    for a, b in zip((fresh.states, fresh.mask, fresh.pooled), (cached.states, cached.mask, cached.pooled)):
        assert torch.equal(a, b)
    # a cached prompt in a batch with a longer one: same real tokens, padded further
    mixed = minilm(["a square", PROMPTS[2]])
    n = fresh.mask[1].sum()
    assert torch.allclose(mixed.states[0, :n], fresh.states[1, :n], atol=1e-5)
    assert torch.allclose(mixed.pooled[0], fresh.pooled[1], atol=1e-5)


def test_minilm_encodes_in_float32_under_a_callers_bf16_autocast(minilm):
    """A bf16 sampler that meets a prompt first must not leave a bf16-rounded encoding in the shared cache."""
    MiniLMEncoder.clear_cache()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = minilm(PROMPTS)
    MiniLMEncoder.clear_cache()
    plain = minilm(PROMPTS)
    assert under_autocast.states.dtype == torch.float32
    assert torch.equal(under_autocast.states, plain.states) and torch.equal(under_autocast.pooled, plain.pooled)


def test_minilm_results_do_not_alias_the_cache(minilm):
    first = minilm(["a square"])
    expected = first.states.clone()
    first.states.mul_(0)
    first.pooled.mul_(0)
    again = minilm(["a square"])
    assert torch.equal(again.states, expected) and again.pooled.abs().sum() > 0


def test_minilm_is_frozen_and_not_in_the_checkpoint(minilm):
    assert not minilm.trainable and minilm.dim == 384
    assert not any(p.requires_grad for p in minilm.parameters())
    assert len(minilm.state_dict()) == 0
    holder = torch.nn.Module()
    holder.text_encoder, holder.proj = minilm, torch.nn.Linear(384, 8)
    assert set(holder.state_dict()) == {"proj.weight", "proj.bias"}
    holder.train()
    assert not minilm.training
    assert not minilm(["a square"]).states.requires_grad
    copy.deepcopy(holder).load_state_dict(holder.state_dict())  # EMA copies and strict loads work


def test_long_prompts_are_truncated_and_blank_prompts_still_encode(minilm, small):
    long = " ".join(["circle"] * 100)
    assert minilm([long]).states.shape[1] == 32
    assert small([long]).states.shape[1] == 16
    assert minilm(["   "]).states.shape == (1, 2, 384)  # [CLS] [SEP]
    assert small(["   "]).mask.tolist() == [[True]]


def test_small_encoder_shapes_mask_and_pooled_is_cls(small):
    out = small(["a red circle", "a blue square moving left"])
    assert out.states.shape == (2, 6, 32) and out.pooled.shape == (2, 32)
    assert out.mask.tolist() == [[True] * 4 + [False] * 2, [True] * 6]
    assert torch.equal(out.pooled, out.states[:, 0])


def test_small_encoder_trains(small):
    assert small.trainable and all(p.requires_grad for p in small.parameters())
    prompts, target = ["a red circle", "a blue square"], torch.randn(2, 32, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(small.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):
        loss = F.mse_loss(small(prompts).pooled, target)
        opt.zero_grad()
        loss.backward()
        assert small.embed.weight.grad.abs().sum() > 0  # gradients reach the word embeddings
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert len(small.state_dict()) > 0  # its weights belong to the model's checkpoint


def test_hash_tokenizer_is_stable_case_and_punctuation_blind():
    ids = hash_tokenize("A red circle, moving LEFT!", vocab_size=4096, max_length=32)
    assert ids == [1, 2271, 4005, 4025, 1952, 1616]  # crc32 buckets: the same in every process and release
    assert hash_tokenize("a red circle moving left", 4096, 32) == ids
    assert hash_tokenize("a red circle moving left", 4096, 3) == ids[:3]
    assert all(2 <= i < 16 for i in hash_tokenize("every word lands in a bucket", 16, 32)[1:])


def test_build_text_encoder_and_config_round_trip():
    config = TextEncoderConfig(name="small", dim=32, layers=1, heads=2, vocab_size=256)
    assert TextEncoderConfig.from_dict(config.to_dict()) == config
    assert isinstance(build_text_encoder(config), SmallTextEncoder)
    assert isinstance(build_text_encoder(TextEncoderConfig()), MiniLMEncoder)
    with pytest.raises(T2VError, match="one of minilm, small"):
        TextEncoderConfig(name="clip")
    with pytest.raises(T2VError, match="unknown key"):
        TextEncoderConfig.from_dict({"nmae": "small"})


@pytest.mark.parametrize("bad", [[], "a red circle", [3]])
def test_bad_prompt_lists_raise_t2v_error(minilm, small, bad):
    for encoder in (minilm, small):
        with pytest.raises(T2VError):
            encoder(bad)


def test_text_embedding_index_and_to():
    emb = TextEmbedding(torch.randn(3, 5, 4), torch.ones(3, 5, dtype=torch.bool), torch.randn(3, 4))
    assert len(emb) == 3 and emb[1].states.shape == (1, 5, 4) and emb[-1].pooled.shape == (1, 4)
    assert torch.equal(emb[1:].pooled, emb.pooled[1:])
    assert emb.to("cpu").mask.dtype == torch.bool
