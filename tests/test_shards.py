"""Webdataset shards: writer -> reader round trip, corrupt samples skipped and counted, every shard
once per epoch across ranks, exact resume of a sharded training run."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from t2v.data.files import write_shapes_dataset
from t2v.data.shards import ShardDataConfig, ShardStream, add_member, shard_index, write_shards
from t2v.errors import T2VError
from t2v.video import read_video

FRAMES, SIZE = 8, (32, 32)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    return write_shapes_dataset(root, 10, num_frames=FRAMES, height=32, width=32)


@pytest.fixture(scope="module")
def shards(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    write_shards(source, out, shard_size=3, num_frames=FRAMES, size=SIZE)
    return out


def stream(shards: Path, **kwargs) -> ShardStream:
    return ShardStream(ShardDataConfig(shards=str(shards), num_frames=FRAMES, height=32, width=32), **kwargs)


def test_writer_reader_round_trip(source, shards):
    assert sorted(p.name for p in shards.glob("*.tar")) == [f"shard-{i:06d}.tar" for i in range(4)]  # 3+3+3+1
    s = stream(shards)
    captions = [row.split(",", 2)[2].strip() for row in source.read_text().splitlines()[1:]]
    seen = {}
    for shard, entries in zip(s.shards, s.index):
        for i, entry in enumerate(entries):
            seen[entry.get("caption")] = (shard, i)
    assert sorted(seen) == sorted(captions)
    # frames equal what reading the source video gives (both decode the same H.264 stream of the same frames)
    first = s.sample(0)
    shard, i = s.locate(0)
    key = s.index[shard][i]["key"]
    original = read_video(source.parent / "videos" / f"{int(key):06d}.mp4", fps=8.0, size=SIZE, num_frames=FRAMES)
    assert first["video"].shape == (FRAMES, 32, 32, 3)
    assert np.abs(first["video"].numpy().astype(int) - original.frames.astype(int)).mean() < 3  # one more H.264 pass


def test_every_shard_once_per_epoch_across_ranks_and_a_new_order_each_epoch(shards):
    ranks = [stream(shards, rank=r, world=2) for r in range(2)]
    for epoch in range(3):
        owned = [set(r.epoch_shards(epoch)) for r in ranks]
        assert owned[0].isdisjoint(owned[1]) and owned[0] | owned[1] == set(range(4))
    orders = {tuple(ranks[0].epoch_shards(e)) + tuple(ranks[1].epoch_shards(e)) for e in range(6)}
    assert len(orders) > 1
    # rank 0 reads exactly its shards' samples in an epoch
    r0 = ranks[0]
    n0 = sum(len(r0.index[s]) for s in r0.epoch_shards(0))
    keys = [r0.index[sh][i]["key"] for sh, i in (r0.locate(p) for p in range(n0))]
    assert len(set(keys)) == n0


def test_workers_give_the_same_batches(shards):
    plain = stream(shards)
    workers = ShardStream(ShardDataConfig(shards=str(shards), num_frames=FRAMES, height=32, width=32, workers=2))
    for position in (0, 4, 8, 12, 2, 6):  # the jump back starts new workers while the old loader is held
        a, b = plain.batch(position, 4), workers.batch(position, 4)
        assert a["caption"] == b["caption"] and torch.equal(a["video"], b["video"])


def corrupt_shards(shards: Path, tmp_path: Path) -> Path:
    """A copy of the shards where one sample's mp4 is garbage."""
    out = tmp_path / "corrupt"
    out.mkdir()
    for path in sorted(shards.glob("*.tar")):
        with tarfile.open(path) as src, tarfile.open(out / path.name, "w") as dst:
            for member in src:
                data = src.extractfile(member).read()
                if path.name == "shard-000001.tar" and member.name.endswith(".mp4") and "000000004" in member.name:
                    data = b"not a video at all" * 10
                add_member(dst, member.name, data)
    return out


def test_a_corrupt_sample_is_skipped_and_counted_per_shard(shards, tmp_path):
    s = stream(corrupt_shards(shards, tmp_path))
    videos = sum(len(s.batch(p, 5)["video"]) for p in range(0, 10, 5))
    assert videos == 9
    assert s.skipped == {"shard-000001.tar": 1}
    assert "skipped 1 samples" in s.report() and "shard-000001.tar: 1" in s.report()


def test_writer_skips_unreadable_videos(source, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.mp4").write_bytes(b"garbage")
    (broken / "a.txt").write_text("a broken video")
    good = source.parent / "videos" / "000000.mp4"
    (broken / "b.mp4").write_bytes(good.read_bytes())
    (broken / "b.txt").write_text("a red square")
    stats = write_shards(broken, tmp_path / "out", shard_size=10, num_frames=FRAMES, size=SIZE)
    assert stats["samples"] == 1 and stats["skipped"] == 1
    with pytest.raises(T2VError, match="--shard-size must be at least 1"):
        write_shards(broken, tmp_path / "out2", shard_size=0)


def test_index_reads_json_captions(tmp_path, source):
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tar:
        add_member(tar, "clip1.mp4", (source.parent / "videos" / "000001.mp4").read_bytes())
        add_member(tar, "clip1.json", b'{"caption": "a green square moving up"}')
        add_member(tar, "orphan.txt", b"no video")
    assert [(e["key"], e["caption"]) for e in shard_index(path)] == [("clip1", "a green square moving up")]


def test_sharded_training_resumes_at_the_right_sample(shards, tmp_path):
    """Stopped after 3 steps and resumed, a run sees the same samples as one run straight through."""
    from t2v.train import train_from_config

    spec = {"family": "fvd-shapes",
            "model": {"channels": [8], "strides": [[2, 2, 2]], "num_frames": FRAMES, "height": 32, "width": 32},
            "data": {"shards": str(shards), "num_frames": FRAMES, "height": 32, "width": 32},
            "train": {"steps": 6, "batch_size": 4, "warmup_steps": 1, "min_lr_ratio": 1.0, "threads": 1,
                      "log_every": 1, "checkpoint_every": 3}}
    captions = []

    def run(name, steps, resume=False):
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({**spec, "train": {**spec["train"], "steps": steps,
                                                             "out_dir": str(tmp_path / name)}}))
        return train_from_config("fvd-shapes", config, resume=resume, log=lambda *a: None)

    from t2v.models import shapes_classifier

    original = shapes_classifier.ShapesClassifier.training_loss

    def recording_loss(self, batch):  # the classifier needs labels; shards have captions: record and fake them
        captions.append(list(batch["caption"]))
        return original(self, {**batch, "labels": torch.zeros(len(batch["caption"]), 4, dtype=torch.long)})

    shapes_classifier.ShapesClassifier.training_loss = recording_loss
    try:
        run("straight", 6)
        straight, captions[:] = list(captions), []
        run("stopped", 3)
        run("stopped", 6, resume=True)
    finally:
        shapes_classifier.ShapesClassifier.training_loss = original
    assert captions == straight and len(straight) == 6
    assert sum(len(c) for c in straight) == 24 > 10  # past the end of the first epoch


def test_cached_codes_equal_encoding_now_and_train_a_prior(shards, tmp_path, tiny_vqvae_config, tiny_videogpt):
    from typer.testing import CliRunner

    from t2v.checkpoint import save_model
    from t2v.cli import app
    from t2v.models.videogpt import VQVAE

    torch.manual_seed(0)
    tokenizer = VQVAE(tiny_vqvae_config).eval()
    vqvae = save_model(tmp_path / "vqvae", tokenizer)
    result = CliRunner().invoke(app, ["data", "encode", "--model", str(vqvae), "--shards", str(shards),
                                      "--out", str(tmp_path / "codes")])
    assert result.exit_code == 0, result.output
    cached, videos = stream(tmp_path / "codes"), stream(shards)
    batch, frames = cached.batch(0, 4), videos.batch(0, 4)
    assert batch["caption"] == frames["caption"]
    tiny_videogpt.tokenizer.load_state_dict(tokenizer.state_dict())
    assert torch.equal(batch["latents"], tiny_videogpt.stage1_codes(frames, torch.device("cpu")))
    loss, _ = tiny_videogpt.train().training_loss(batch)  # trains on the cache: no video in the batch
    assert "video" not in batch and torch.isfinite(loss)


def test_buckets_decode_each_batch_at_its_own_size(shards):
    config = ShardDataConfig(shards=str(shards), num_frames=FRAMES, height=32, width=32,
                             buckets=[[8, 32, 32], [4, 16, 48]])
    plain, workers = ShardStream(config), ShardStream(ShardDataConfig(**{**config.__dict__, "workers": 2}))
    shapes = set()
    for position in range(0, 24, 4):
        a, b = plain.batch(position, 4), workers.batch(position, 4)
        assert torch.equal(a["video"], b["video"])
        shapes.add(tuple(a["video"].shape[1:4]))
    assert shapes == {(8, 32, 32), (4, 16, 48)}


def test_skips_made_in_training_workers_reach_the_report(shards, tmp_path, monkeypatch):
    """With ``train.workers``, batches are built in worker processes; their skips still end in the run's report."""
    from t2v.models import shapes_classifier
    from t2v.train import train_from_config

    corrupt = corrupt_shards(shards, tmp_path)
    config = tmp_path / "workers.yaml"
    config.write_text(yaml.safe_dump({
        "family": "fvd-shapes",
        "model": {"channels": [8], "strides": [[2, 2, 2]], "num_frames": FRAMES, "height": 32, "width": 32},
        "data": {"shards": str(corrupt), "num_frames": FRAMES, "height": 32, "width": 32},
        "train": {"steps": 2, "batch_size": 5, "warmup_steps": 1, "threads": 1, "workers": 1,
                  "log_every": 1, "checkpoint_every": 2, "out_dir": str(tmp_path / "run")}}))
    original = shapes_classifier.ShapesClassifier.training_loss

    def labelled_loss(self, batch):  # shards carry captions; the classifier needs labels
        return original(self, {**batch, "labels": torch.zeros(len(batch["caption"]), 4, dtype=torch.long)})

    monkeypatch.setattr(shapes_classifier.ShapesClassifier, "training_loss", labelled_loss)
    logs = []
    train_from_config("fvd-shapes", config, log=logs.append)
    assert any("skipped 1 samples" in line and "shard-000001.tar: 1" in line for line in logs), logs
