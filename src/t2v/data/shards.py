"""Web-scale caption-video data as webdataset shards: ``.tar`` files holding ``KEY.mp4`` with
``KEY.txt`` (caption) and/or ``KEY.json`` (``{"caption": ...}``) per sample, the layout
``video2dataset`` writes.

``write_shards`` turns a WebVid-style CSV or a captioned folder into such shards, decoding each
video once to a fixed fps, size (centre crop) and frame count. ``ShardStream`` reads them for
training through the trainer's positional interface, ``batch(position, size)``: each epoch
shuffles the shard order (seeded), ranks take every ``world``-th shard of it, samples follow in
shard order, so a run resumes at exactly the sample it stopped at. Members are read by offset (an
index of each tar's headers is built once), decoding happens in DataLoader workers when
``workers > 0``, and samples that fail to decode are skipped and counted per shard.

``encode_shards`` (``t2v data encode``) caches a stage-1 tokenizer's codes or a VAE's latents as
``KEY.npy`` members of new shards; training a prior or denoiser on them skips the encoder.
"""

from __future__ import annotations

import io
import json
import logging
import random
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from t2v.data.files import CSVVideoDataset, VideoFolderDataset
from t2v.data.stream import choose_bucket
from t2v.data.workers import usable_workers, worker_loader
from t2v.errors import T2VError
from t2v.video import Video, read_video, read_video_bytes

VIDEO_EXTENSIONS = ("mp4", "webm", "avi", "mov", "gif")
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- writing
def list_sources(source: Path) -> list[tuple[Path, str]]:
    """(video, caption) pairs of a WebVid-style CSV or of a folder of videos with .txt captions."""
    source = Path(source)
    return (CSVVideoDataset if source.suffix.lower() == ".csv" else VideoFolderDataset).list_entries(source)


def encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        Video(frames, fps=fps).save(path)
        return path.read_bytes()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(source: str | Path, out_dir: str | Path, *, shard_size: int = 1000, num_frames: int = 16,
                 size: tuple[int, int] = (64, 64), fps: float = 8.0) -> dict:
    """Decode every video of ``source`` to ``num_frames`` frames at ``fps`` and ``size`` (centre crop),
    and write them ``shard_size`` per ``shard-NNNNNN.tar`` in ``out_dir``. Unreadable videos are
    skipped and counted. Returns the statistics also written to ``out_dir/stats.json``."""
    if shard_size < 1:
        raise T2VError(f"--shard-size must be at least 1, got {shard_size}")
    entries = list_sources(Path(source))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped, shards = 0, [], []
    tar, tmp_path = None, None

    def close_shard() -> None:
        tar.close()
        final = tmp_path.with_name(tmp_path.name.removeprefix("."))
        tmp_path.replace(final)  # a shard appears whole or not at all
        shards.append(final.name)

    for path, caption in tqdm(entries, desc="writing shards", unit="video"):
        try:
            video = read_video(path, fps=fps, size=size, num_frames=num_frames)
        except T2VError:
            skipped.append(str(path))
            continue
        if written % shard_size == 0:
            if tar is not None:
                close_shard()
            tmp_path = out_dir / f".shard-{written // shard_size:06d}.tar"
            tar = tarfile.open(tmp_path, "w")
        key = f"{written:09d}"
        add_member(tar, f"{key}.mp4", encode_mp4(video.frames, fps))
        add_member(tar, f"{key}.txt", caption.encode("utf-8"))
        add_member(tar, f"{key}.json", json.dumps({"caption": caption, "source": str(path)}).encode("utf-8"))
        written += 1
    if tar is not None:
        close_shard()
    if not written:
        raise T2VError(f"none of the {len(entries)} videos in {source} could be read")
    stats = {"samples": written, "shards": shards, "skipped": len(skipped), "skipped_files": skipped[:100],
             "num_frames": num_frames, "height": size[0], "width": size[1], "fps": fps}
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


# ----------------------------------------------------------------------------- reading
@dataclass
class ShardDataConfig:
    """``data:`` section of a training config that reads shards."""

    shards: str = ""  # a folder of .tar shards (or one .tar)
    num_frames: int = 16
    height: int = 64
    width: int = 64
    fps: float = 8.0
    seed: int = 0
    workers: int = 0  # DataLoader worker processes that decode ahead of the training step
    # (num_frames, height, width) per global batch, for families that train on mixed sizes; empty: the fixed size
    buckets: list[list[int]] = field(default_factory=list)


def shard_index(path: Path) -> list[dict]:
    """Samples of one tar in order: {"key", "video": (offset, size, extension), "caption": ...} from headers
    (and the small caption members); the video bytes are read later by offset."""
    samples: dict[str, dict] = {}
    with tarfile.open(path, "r") as tar:
        for member in tar:
            if not member.isfile() or "." not in Path(member.name).name:
                continue
            key, ext = Path(member.name).name.split(".", 1)
            key = str(Path(member.name).parent / key)
            sample = samples.setdefault(key, {"key": key})
            if ext.lower() in VIDEO_EXTENSIONS:
                sample["video"] = (member.offset_data, member.size, ext.lower())
            elif ext == "npy":
                sample["latent"] = (member.offset_data, member.size, ext)
            elif ext == "txt":
                sample["caption"] = tar.extractfile(member).read().decode("utf-8").strip()
            elif ext == "json" and "caption" not in sample:
                try:
                    meta = json.loads(tar.extractfile(member).read())
                    sample["caption"] = str(meta.get("caption", "")).strip() if isinstance(meta, dict) else ""
                except (json.JSONDecodeError, UnicodeDecodeError):
                    pass
    return [s for s in samples.values() if "video" in s or "latent" in s]


def list_shards(root: Path) -> list[Path]:
    root = Path(root)
    shards = [root] if root.is_file() else sorted(root.glob("*.tar"))
    if not shards:
        raise T2VError(f"no .tar shards in {root}")
    return shards


class ShardStream:
    """Positional reader of shards for one rank of ``world``; ``batch(position, size)`` where
    position counts this rank's samples since the start of training."""

    def __init__(self, config: ShardDataConfig, *, rank: int = 0, world: int = 1) -> None:
        self.config, self.rank, self.world = config, rank, world
        self.shards = list_shards(Path(config.shards))
        if len(self.shards) < world:
            raise T2VError(f"{len(self.shards)} shards cannot feed {world} processes: write more, smaller shards")
        self.index = [shard_index(p) for p in self.shards]
        self.skipped: Counter = Counter()  # shard name -> samples that failed to decode
        self._loader, self._next = None, None

    def __getstate__(self) -> dict:
        """What a worker process gets: everything but the parent's own worker loader."""
        return {**self.__dict__, "_loader": None, "_next": None}

    def epoch_shards(self, epoch: int) -> list[int]:
        """This rank's shard indices for ``epoch``: a seeded shuffle of all shards, every world-th from rank."""
        order = list(range(len(self.shards)))
        random.Random(f"shards:{self.config.seed}:{epoch}").shuffle(order)
        return order[self.rank:: self.world]

    def locate(self, position: int) -> tuple[int, int]:
        """(shard index, sample index) of this rank's sample number ``position``."""
        epoch = 0
        while True:
            for shard in self.epoch_shards(epoch):
                n = len(self.index[shard])
                if position < n:
                    return shard, position
                position -= n
            if not any(self.index[s] for s in self.epoch_shards(epoch)):
                raise T2VError(f"rank {self.rank}'s shards hold no samples")
            epoch += 1

    def sample(self, position: int, size: tuple[int, int, int] | None = None) -> dict:
        """Sample ``position`` of this rank, decoded at ``size`` (frames, height, width; default: the
        config's): {"video" or "latent", "caption"}, or {"skipped": shard name}."""
        shard, i = self.locate(position)
        entry = self.index[shard][i]
        if "latent" in entry:
            return {"latent": torch.from_numpy(read_latent(self.shards[shard], entry["latent"])),
                    "caption": entry.get("caption", "")}
        return self.decode_entry(self.shards[shard], entry, size)

    def bucket(self, position: int, batch_size: int) -> tuple[int, int, int] | None:
        """The size of the batch holding this rank's sample ``position`` (shared by the global batch)."""
        block = position // batch_size
        return choose_bucket(self.config.buckets, self.config.seed, block * self.world * batch_size)

    def decode_entry(self, path: Path, entry: dict, size: tuple[int, int, int] | None = None) -> dict:
        """{"video", "caption"} of one indexed sample of shard ``path``, or {"skipped": shard name}."""
        c = self.config
        num_frames, height, width = size or (c.num_frames, c.height, c.width)
        try:
            video = read_video_bytes(read_member(path, entry["video"]), name=f"{entry['key']}.{entry['video'][2]}",
                                     fps=c.fps, size=(height, width), num_frames=num_frames)
        except T2VError:
            return {"skipped": path.name}
        return {"video": torch.from_numpy(video.frames), "caption": entry.get("caption", "")}

    def collate(self, items: list[dict]) -> dict:
        """One batch of decoded samples; ``skipped_from`` names the shards of the samples that failed."""
        skipped_from = Counter(x["skipped"] for x in items if "skipped" in x)
        self.skipped.update(skipped_from)
        if items and "latent" in items[0]:
            return {"latents": torch.stack([x["latent"] for x in items]), "caption": [x["caption"] for x in items],
                    "skipped": 0, "skipped_from": {}}
        good = [x for x in items if "video" in x]
        if not good:
            return {"video": torch.empty(0, self.config.num_frames, self.config.height, self.config.width, 3,
                                         dtype=torch.uint8), "caption": [], "skipped": len(items),
                    "skipped_from": dict(skipped_from)}
        return {"video": torch.stack([x["video"] for x in good]), "caption": [x["caption"] for x in good],
                "skipped": len(items) - len(good), "skipped_from": dict(skipped_from)}

    def count_skipped(self, batch: dict) -> None:
        """Count the skips of a batch built in a worker process, whose own counts this process never sees."""
        self.skipped.update(batch.get("skipped_from", {}))

    def batch(self, position: int, batch_size: int) -> dict:
        """Samples [position, position + batch_size) of this rank; undecodable ones are dropped and counted."""
        if usable_workers(self.config.workers) <= 0:
            size = self.bucket(position, batch_size)
            return self.collate([self.sample(position + i, size) for i in range(batch_size)])
        if self._loader is None or self._next != (position, batch_size):
            dataset = _Positions(self, position, batch_size)
            self._loader = iter(worker_loader(dataset, self.config.workers, batch_size=batch_size, collate_fn=list))
        items = next(self._loader)
        self._next = (position + batch_size, batch_size)
        return self.collate(items)

    def report(self) -> str:
        """One line naming the shards with skipped samples (empty when none were)."""
        if not self.skipped:
            return ""
        parts = ", ".join(f"{name}: {n}" for name, n in sorted(self.skipped.items()))
        return f"skipped {sum(self.skipped.values())} samples that could not be decoded ({parts})"


def read_member(path: Path, where: tuple[int, int, str]) -> bytes:
    """The bytes of a tar member at (offset, size, extension) from ``shard_index``."""
    offset, size, _ = where
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(size)


def read_latent(path: Path, where: tuple[int, int, str]) -> np.ndarray:
    """A cached code grid (int64) or latent (float32) array from a tar member."""
    array = np.load(io.BytesIO(read_member(path, where)), allow_pickle=False)
    return array.astype(np.int64 if np.issubdtype(array.dtype, np.integer) else np.float32)


@torch.no_grad()
def encode_shards(model, shards: str | Path, out_dir: str | Path, *, batch_size: int = 16) -> dict:
    """Encode every sample of ``shards`` with a stage-1 ``model`` (VQ tokenizer or VAE, at its trained
    video size) into shards of the same names holding ``KEY.npy`` (codes int16, latents float16) and
    ``KEY.txt``. Undecodable samples are skipped and counted."""
    if not hasattr(model, "encode"):
        raise T2VError(f"{type(model).__name__} is not a tokenizer or VAE: give a stage-1 checkpoint")
    from t2v.nn.pixels import frames_to_tensor

    cfg = model.config
    stream = ShardStream(ShardDataConfig(shards=str(shards), num_frames=cfg.num_frames, height=cfg.height,
                                         width=cfg.width))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = 0
    for path, entries in tqdm(list(zip(stream.shards, stream.index)), desc="encoding shards", unit="shard"):
        tmp = out_dir / f".{path.name}"
        with tarfile.open(tmp, "w") as tar:
            for first in range(0, len(entries), batch_size):
                chunk = entries[first:first + batch_size]
                items = [stream.decode_entry(path, e) for e in chunk]
                good = [(e, x) for e, x in zip(chunk, items) if "video" in x]
                for x in items:
                    if "skipped" in x:
                        stream.skipped[x["skipped"]] += 1
                if not good:
                    continue
                codes = model.encode(frames_to_tensor(torch.stack([x["video"] for _, x in good])))
                for (entry, x), array in zip(good, codes.cpu().numpy()):
                    array = array.astype(np.int16 if np.issubdtype(array.dtype, np.integer) else np.float16)
                    buffer = io.BytesIO()
                    np.save(buffer, array, allow_pickle=False)
                    add_member(tar, f"{entry['key']}.npy", buffer.getvalue())
                    add_member(tar, f"{entry['key']}.txt", x["caption"].encode("utf-8"))
                encoded += len(good)
        tmp.replace(out_dir / path.name)
    return {"samples": encoded, "skipped": sum(stream.skipped.values()), "shards": len(stream.shards)}


class _Positions(Dataset):
    """Map-style view of a rank's samples from ``start`` on, so DataLoader workers decode ahead in order."""

    def __init__(self, stream: ShardStream, start: int, batch_size: int) -> None:
        self.stream, self.start, self.batch_size = stream, start, batch_size

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int) -> dict:
        position = self.start + i
        return self.stream.sample(position, self.stream.bucket(position, self.batch_size))
