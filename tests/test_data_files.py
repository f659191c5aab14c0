"""File datasets: good videos come out shaped and captioned, unreadable ones are skipped and reported once."""

import csv
import logging
import shutil

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from t2v.data.files import CSVVideoDataset, VideoFolderDataset, write_shapes_dataset
from t2v.data.shapes import make_example
from t2v.errors import T2VError

N_GOOD = 6
BAD = ("corrupt.mp4", "empty.mp4")


@pytest.fixture(scope="module")
def shapes_csv(tmp_path_factory):
    """Six 8-frame 32x32 Moving Shapes mp4s plus a corrupt and an empty one, all captioned in captions.csv."""
    out = tmp_path_factory.mktemp("shapes")
    csv_path = write_shapes_dataset(out, N_GOOD, seed=10, num_frames=8, height=32, width=32)
    (out / "videos" / BAD[0]).write_bytes(np.random.default_rng(0).bytes(4000))
    (out / "videos" / BAD[1]).write_bytes(b"")
    with open(csv_path, "a", newline="") as f:
        csv.writer(f).writerows([[name, f"videos/{name}", "a broken video"] for name in BAD])
    return csv_path


@pytest.fixture(scope="module")
def shapes_folder(shapes_csv, tmp_path_factory):
    """The same videos as a folder with a same-name .txt caption beside each."""
    folder = tmp_path_factory.mktemp("folder")
    with open(shapes_csv, newline="") as f:
        for row in csv.DictReader(f):
            video = shapes_csv.parent / row["contentUrl"]
            shutil.copy(video, folder / video.name)
            (folder / video.name).with_suffix(".txt").write_text(row["name"] + "\n")
    return folder


def expected_captions() -> list[str]:
    return [make_example(10 + i, num_frames=8, height=32, width=32).caption for i in range(N_GOOD)]


def test_write_shapes_dataset_writes_mp4s_and_a_webvid_csv(shapes_csv):
    with open(shapes_csv, newline="") as f:
        rows = list(csv.DictReader(f))[:N_GOOD]
    assert list(rows[0]) == ["videoid", "contentUrl", "name"]
    assert [r["name"] for r in rows] == expected_captions()
    assert all((shapes_csv.parent / r["contentUrl"]).read_bytes()[4:8] == b"ftyp" for r in rows)


@pytest.mark.parametrize("make_dataset", [
    lambda csv_path, folder: CSVVideoDataset(csv_path, num_frames=4, size=(16, 16)),
    lambda csv_path, folder: VideoFolderDataset(folder, num_frames=4, size=(16, 16)),
], ids=["csv", "folder"])
def test_dataset_yields_good_videos_and_skips_bad_ones_with_one_warning(make_dataset, shapes_csv, shapes_folder,
                                                                         caplog):
    dataset = make_dataset(shapes_csv, shapes_folder)
    with caplog.at_level(logging.WARNING, logger="t2v.data.files"):
        items = list(dataset)
    assert len(items) == N_GOOD
    assert all(x["video"].shape == (4, 16, 16, 3) and x["video"].dtype == torch.uint8 for x in items)
    assert sorted(x["caption"] for x in items) == sorted(expected_captions())
    assert sorted(p.name for p in dataset.skipped) == sorted(BAD)
    assert len(caplog.records) == 1
    assert "skipped 2 of 8 videos" in caplog.text and all(name in caplog.text for name in BAD)


def test_fps_resampling_applies_to_every_video(shapes_csv):
    items = list(CSVVideoDataset(shapes_csv, num_frames=4, size=(32, 32), fps=4))
    first = make_example(10, num_frames=8, height=32, width=32).video
    assert len(items) == N_GOOD
    assert np.abs(items[0]["video"].numpy().astype(int) - first[0::2]).mean() < 6


def test_each_epoch_reports_its_own_skips(shapes_csv, caplog):
    dataset = CSVVideoDataset(shapes_csv, num_frames=4, size=(16, 16))
    with caplog.at_level(logging.WARNING, logger="t2v.data.files"):
        for _ in range(2):
            assert len(list(dataset)) == N_GOOD
    assert len(caplog.records) == 2


def test_shuffle_is_seeded_and_changes_between_epochs(shapes_csv):
    def orders(seed):
        dataset = CSVVideoDataset(shapes_csv, num_frames=1, size=(8, 8), shuffle=True, seed=seed)
        return [[x["caption"] for x in dataset] for _ in range(2)]

    first, again = orders(0), orders(0)
    assert first == again
    assert first[0] != first[1]
    assert sorted(first[0]) == sorted(expected_captions())


def test_dataloader_workers_split_the_videos_without_repeats(shapes_csv):
    dataset = CSVVideoDataset(shapes_csv, num_frames=2, size=(8, 8))
    loader = DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="forkserver",
                        timeout=60)  # a hang fails in a minute
    assert sorted(x["caption"] for x in loader) == sorted(expected_captions())


def test_folder_video_without_caption_raises(tmp_path, shapes_folder):
    shutil.copy(next(shapes_folder.glob("*.mp4")), tmp_path / "lonely.mp4")
    with pytest.raises(T2VError, match="lonely.mp4 has no caption file lonely.txt"):
        VideoFolderDataset(tmp_path, num_frames=2, size=(8, 8))


def test_csv_with_web_addresses_raises(tmp_path):
    csv_path = tmp_path / "webvid.csv"
    csv_path.write_text("videoid,contentUrl,name\n1,https://example.com/1.mp4,a cat\n")
    with pytest.raises(T2VError, match="web address; download the videos"):
        CSVVideoDataset(csv_path, num_frames=2, size=(8, 8))
