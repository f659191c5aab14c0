"""Training data from files: a folder of videos with .txt captions, or a WebVid-style CSV.

Videos that cannot be read are skipped, never fatal: each epoch ends with one warning naming them.
``write_shapes_dataset`` writes Moving Shapes in the CSV layout, to try the file path end to end.
"""

from __future__ import annotations

import csv
import logging
import os
import random
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info
from tqdm import tqdm

from t2v.data.shapes import FPS, make_example
from t2v.errors import T2VError
from t2v.video import Video, read_video

VIDEO_SUFFIXES = (".mp4", ".webm", ".avi", ".mov", ".gif", ".npy")
CSV_COLUMNS = ("videoid", "contentUrl", "name")
_NAMES_IN_WARNING = 10
log = logging.getLogger(__name__)


class _CaptionedVideoFiles(IterableDataset):
    """Yields ``{"video": uint8 (T, H, W, 3), "caption": str}`` for each readable entry of ``source``.

    Every clip is cut to ``num_frames`` (after resampling to ``fps`` when given) and crop-resized to
    ``size`` (height, width). With DataLoader workers, each worker reads its share and reports its own skips.
    """

    def __init__(self, source: str | os.PathLike, *, num_frames: int, size: tuple[int, int],
                 fps: float | None = None, shuffle: bool = False, seed: int = 0) -> None:
        self.entries = self.list_entries(Path(source))
        self.num_frames, self.size, self.fps = num_frames, size, fps
        self.shuffle, self.seed = shuffle, seed
        self.skipped: list[Path] = []  # unreadable videos of the last finished epoch
        self._epoch = 0

    @staticmethod
    def list_entries(source: Path) -> list[tuple[Path, str]]:
        """The (video path, caption) pairs that ``source`` describes."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        entries = self._epoch_order()
        worker = get_worker_info()
        if worker is not None:
            entries = entries[worker.id:: worker.num_workers]
        skipped = []
        for path, caption in entries:
            try:
                video = read_video(path, fps=self.fps, size=self.size, num_frames=self.num_frames)
            except T2VError:
                skipped.append(path)
                continue
            yield {"video": torch.from_numpy(video.frames), "caption": caption}  # (T, H, W, 3) uint8
        self.skipped = skipped
        if skipped:
            log.warning(self._skip_message(skipped, len(entries)))

    def _epoch_order(self) -> list[tuple[Path, str]]:
        """The entries in this epoch's order: as listed, or shuffled anew each epoch from ``seed``."""
        if not self.shuffle:
            return list(self.entries)
        worker = get_worker_info()
        # a worker's copy of the dataset may be fresh each epoch, restarting the count, so also key the
        # order on the loader's base seed: the same in all workers (they must agree) and new every epoch
        base_seed = worker.seed - worker.id if worker is not None else 0
        entries = list(self.entries)
        random.Random(f"{self.seed}:{base_seed}:{self._epoch}").shuffle(entries)
        self._epoch += 1
        return entries

    def _skip_message(self, skipped: list[Path], total: int) -> str:
        names = ", ".join(p.name for p in skipped[:_NAMES_IN_WARNING])
        more = f" and {len(skipped) - _NAMES_IN_WARNING} more" if len(skipped) > _NAMES_IN_WARNING else ""
        return (f"skipped {len(skipped)} of {total} videos that could not be read or have fewer than "
                f"{self.num_frames} frames: {names}{more}")


class VideoFolderDataset(_CaptionedVideoFiles):
    """Every video (mp4, webm, avi, mov, gif, npy) in a folder, captioned by the same-name .txt beside it."""

    @staticmethod
    def list_entries(source: Path) -> list[tuple[Path, str]]:
        if not source.is_dir():
            raise T2VError(f"video folder {source} does not exist")
        videos = sorted(p for p in source.iterdir()
                        if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))  # hidden: partial saves
        if not videos:
            raise T2VError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {source}")
        entries = []
        for video in videos:
            caption = video.with_suffix(".txt")
            if not caption.is_file():
                raise T2VError(f"video {video} has no caption file {caption.name} beside it; "
                               "add one or move the video out")
            entries.append((video, caption.read_text(encoding="utf-8").strip()))
        return entries


class CSVVideoDataset(_CaptionedVideoFiles):
    """A WebVid-style CSV (videoid, contentUrl, name); contentUrl is a local path, relative to the CSV's folder."""

    @staticmethod
    def list_entries(source: Path) -> list[tuple[Path, str]]:
        if not source.is_file():
            raise T2VError(f"caption CSV {source} does not exist")
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in ("contentUrl", "name") if c not in (reader.fieldnames or [])]
            if missing:
                raise T2VError(f"{source} lacks the columns {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
            rows = list(reader)
        if not rows:
            raise T2VError(f"{source} has no rows")
        for line, row in enumerate(rows, start=2):
            if "://" in row["contentUrl"]:
                raise T2VError(f"{source} line {line}: contentUrl {row['contentUrl']} is a web address; "
                               "download the videos and point contentUrl at the local files")
        return [(source.parent / row["contentUrl"], row["name"]) for row in rows]  # absolute paths stay absolute


def write_shapes_dataset(out_dir: str | os.PathLike, n: int, *, seed: int = 0, split: str = "train", level: int = 1,
                         num_frames: int = 16, height: int = 64, width: int = 64) -> Path:
    """Write Moving Shapes examples ``seed .. seed + n - 1`` as out_dir/videos/{id}.mp4 and out_dir/captions.csv.

    Returns the CSV path, ready for ``CSVVideoDataset``.
    """
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in tqdm(range(seed, seed + n), desc="writing videos", unit="video"):
        example = make_example(index, level=level, split=split, num_frames=num_frames, height=height, width=width)
        video_id = f"{index:06d}"
        Video(example.video, fps=FPS).save(out_dir / "videos" / f"{video_id}.mp4")
        rows.append({"videoid": video_id, "contentUrl": f"videos/{video_id}.mp4", "name": example.caption})
    csv_path = out_dir / "captions.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return csv_path
