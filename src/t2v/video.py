"""The ``Video`` value and the one reader/writer: H.264 mp4 (PyAV), gif, npy and PNG contact sheets.

``Video.save`` picks the format from the file suffix and writes atomically; ``read_video`` reads
npy, gif and anything PyAV decodes, and can resample to an fps, crop-resize and cut to a length.
"""

from __future__ import annotations

import io
import math
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from einops import rearrange
from PIL import Image, ImageSequence

from t2v.data.shapes import FPS
from t2v.errors import T2VError

MP4_CRF = 12  # near-lossless: the Moving Shapes palette colours survive H.264 and yuv420p
# BT.601, limited range: what swscale converts RGB with, so players decode the colours we meant
_MP4_COLOUR_TAGS = {"colorspace": 6, "color_primaries": 6, "color_trc": 6, "color_range": 1}
_GIF_FPS = re.compile(rb"fps=([0-9.]+)")
_SHEET_GAP_COLOUR = 255
_READ_ERRORS = (OSError, ValueError, EOFError, av.FFmpegError)  # T2VError is a ValueError too


@dataclass
class Video:
    """A clip: ``frames`` uint8 (T, H, W, 3) RGB at ``fps`` frames per second."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float = float(FPS)

    def __post_init__(self) -> None:
        self.frames, self.fps = np.asarray(self.frames), float(self.fps)
        f = self.frames
        if f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3 or 0 in f.shape:
            raise T2VError(f"video frames must be a non-empty uint8 array (T, H, W, 3), got {f.dtype} {f.shape}; "
                           "convert with (x * 255).round().clip(0, 255).astype(np.uint8)")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise T2VError(f"fps must be a positive number, got {self.fps}")

    def __repr__(self) -> str:
        return f"Video({self.num_frames}x{self.height}x{self.width}, {self.fps:g} fps)"

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    def save(self, path: str | os.PathLike) -> Path:
        """Write .mp4 (H.264), .gif, .npy or .png (contact sheet), chosen by suffix; returns the path.

        The file is written beside its target under a temporary name and then moved into place,
        so a failed save leaves nothing behind and never a half-written file.
        """
        path = check_output_path(path)
        writer = _WRITERS[path.suffix.lower()]
        temp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.partial{path.suffix}")
        try:
            writer(self, temp)
            os.replace(temp, path)
        except (OSError, av.FFmpegError) as e:
            raise T2VError(f"cannot write {path}: {_reason(e)}") from e
        finally:
            temp.unlink(missing_ok=True)
        return path


def check_output_path(path: str | os.PathLike) -> Path:
    """A path ``Video.save`` can write: known suffix, existing writable folder (one-line error otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in _WRITERS:
        raise T2VError(f"cannot save {path}: use one of the suffixes {', '.join(_WRITERS)}")
    check_writable_folder(path.parent)
    return path


def check_writable_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise T2VError(f"folder {folder} does not exist; create it first or pick another output path")
    if not os.access(folder, os.W_OK):
        raise T2VError(f"folder {folder} is not writable; pick another output path")


def _write_mp4(video: Video, path: Path) -> None:
    """H.264 in yuv420p (what browsers play); odd sizes get one edge pixel more, as yuv420p needs even ones."""
    frames = _pad_to_even(video.frames)  # (T, H', W', 3)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(video.fps).limit_denominator(1001))
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        stream.options = {"crf": str(MP4_CRF)}
        for name, value in _MP4_COLOUR_TAGS.items():
            setattr(stream.codec_context, name, value)
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder


def _pad_to_even(frames: np.ndarray) -> np.ndarray:
    _, h, w, _ = frames.shape
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _write_gif(video: Video, path: Path) -> None:
    """Looping gif with exact colours (up to 256 per clip); the fps is kept in a comment."""
    images = _to_palette_images(video.frames)
    # gif delays are whole centiseconds: round each frame's end time, so the clip never drifts
    ends_cs = [round(100 * (i + 1) / video.fps) for i in range(video.num_frames)]
    durations_ms = [10 * (end - start) for start, end in zip([0, *ends_cs], ends_cs)]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], loop=0,
                   duration=durations_ms, comment=f"t2v fps={video.fps!r}")


def _to_palette_images(frames: np.ndarray) -> list[Image.Image]:
    """Frames as palette images sharing one exact palette; clips with more than 256 colours are quantised."""
    packed = (frames[..., 0].astype(np.uint32) << 16) | (frames[..., 1].astype(np.uint32) << 8) | frames[..., 2]
    colours, index = np.unique(packed, return_inverse=True)
    if len(colours) > 256:
        return [Image.fromarray(f).quantize(256) for f in frames]
    palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.uint8)
    images = []
    for indices in index.reshape(frames.shape[:3]).astype(np.uint8):
        image = Image.fromarray(indices, mode="P")
        image.putpalette(palette.tobytes())
        images.append(image)
    return images


def _write_npy(video: Video, path: Path) -> None:
    """The frames exactly; npy keeps no fps, so it reads back at the Moving Shapes rate."""
    with open(path, "wb") as f:
        np.save(f, video.frames)


def _write_png(video: Video, path: Path) -> None:
    contact_sheet(video.frames).save(path, format="PNG")


_WRITERS = {".mp4": _write_mp4, ".gif": _write_gif, ".npy": _write_npy, ".png": _write_png}


def contact_sheet(frames: np.ndarray, *, columns: int = 8, pad: int = 2) -> Image.Image:
    """All frames (N, H, W, 3) uint8 in a grid, ``columns`` wide, ``pad`` white pixels between them."""
    frames = Video(frames).frames
    n, h, w, _ = frames.shape
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    tiles = np.full((rows * cols, h + pad, w + pad, 3), _SHEET_GAP_COLOUR, np.uint8)
    tiles[:n, :h, :w] = frames
    sheet = rearrange(tiles, "(r c) h w ch -> (r h) (c w) ch", c=cols)  # (rows*(H+pad), cols*(W+pad), 3)
    return Image.fromarray(sheet[: rows * (h + pad) - pad, : cols * (w + pad) - pad])


def read_video(path: str | os.PathLike, *, fps: float | None = None, size: tuple[int, int] | None = None,
               num_frames: int | None = None, pad: bool = False) -> Video:
    """Read .npy, .gif or any container PyAV decodes (mp4, webm, avi, mov, ...).

    ``fps``: resample in time, taking for each output timestamp the nearest source frame (ties and
    repeats resolved evenly). ``size`` (height, width): centre-crop to that aspect, then resize (Pillow bilinear).
    ``num_frames``: keep the first ones; a shorter clip raises T2VError, or with ``pad`` repeats its last frame.
    """
    path = Path(path)
    _check_read_options(fps, size, num_frames)
    if not path.is_file():
        raise T2VError(f"cannot read video {path}: no such file")
    return _decode(lambda: _open_frames(path), str(path), fps, size, num_frames, pad)


def read_video_bytes(data: bytes, *, name: str = "video.mp4", fps: float | None = None,
                     size: tuple[int, int] | None = None, num_frames: int | None = None, pad: bool = False) -> Video:
    """``read_video`` for an encoded video held in memory (e.g. a webdataset shard member) named ``name``."""
    _check_read_options(fps, size, num_frames)
    return _decode(lambda: _open_frames(Path(name), io.BytesIO(data)), name, fps, size, num_frames, pad)


def _decode(open_frames, label: str, fps, size, num_frames, pad) -> Video:
    try:
        with open_frames() as (source_fps, timed_frames):
            horizon = None if num_frames is None else num_frames / (fps or source_fps)
            times, frames, end = _collect(timed_frames, horizon, source_fps)
    except _READ_ERRORS as e:
        raise T2VError(f"cannot read video {label}: {_reason(e)}") from e
    if fps is not None:
        frames = frames[_resample_indices(times, end, fps, source_fps)]
    if num_frames is not None:
        frames = _fit_length(frames, num_frames, pad, Path(label))
    if size is not None:
        frames = _crop_resize(frames, size)
    return Video(frames, fps or source_fps)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def read_image(path: str | os.PathLike, *, size: tuple[int, int] | None = None) -> np.ndarray:
    """An image file (or a video's first frame) as uint8 (H, W, 3), centre-cropped and resized to ``size``."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return read_video(path, size=size, num_frames=1).frames[0]
    if not path.is_file():
        raise T2VError(f"cannot read image {path}: no such file")
    try:
        with Image.open(path) as image:
            frame = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as e:
        raise T2VError(f"cannot read image {path}: {_reason(e)}") from e
    return frame if size is None else _crop_resize(frame[None], size)[0]


def _check_read_options(fps: float | None, size: tuple[int, int] | None, num_frames: int | None) -> None:
    if fps is not None and not fps > 0:
        raise T2VError(f"fps must be a positive number, got {fps}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise T2VError(f"size must be (height, width) in pixels, got {size}")
    if num_frames is not None and num_frames < 1:
        raise T2VError(f"num_frames must be at least 1, got {num_frames}")


@contextmanager
def _open_frames(path: Path, data: io.BytesIO | None = None) -> Iterator[tuple[float, Iterator[tuple[float, np.ndarray]]]]:
    """The source fps and a lazy stream of (seconds, frame (H, W, 3) uint8) for any supported file
    (read from ``data`` instead of ``path`` when given; ``path`` then only names the format)."""
    suffix = path.suffix.lower()
    source = path if data is None else data
    if suffix == ".npy":
        frames = np.load(source, allow_pickle=False)
        if not isinstance(frames, np.ndarray):
            raise ValueError("not a single array")
        frames = Video(frames).frames
        yield float(FPS), ((i / FPS, f) for i, f in enumerate(frames))
    elif suffix == ".gif":
        with Image.open(source) as image:
            yield _gif_frames(image)
    else:
        with av.open(str(path) if data is None else data) as container:
            if not container.streams.video:
                raise ValueError("it has no video stream")
            stream = container.streams.video[0]
            # slice threads only: frame threading can deadlock when decoding stops before the end of the
            # stream, as reading num_frames does, notably in DataLoader worker processes (PyAV #1849, #1962);
            # on 2 cores slice threading also decoded 720p H.264 no slower than frame threading
            stream.thread_type = "SLICE"
            rate = float(stream.average_rate or stream.guessed_rate or FPS)
            yield rate, ((f.time if f.time is not None else i / rate, f.to_ndarray(format="rgb24"))
                         for i, f in enumerate(container.decode(stream)))


def _gif_frames(image: Image.Image) -> tuple[float, Iterator[tuple[float, np.ndarray]]]:
    """Gif frames at a constant rate: writers merge identical frames into one longer one, so we expand them."""
    durations_ms = [frame.info.get("duration") or 100 for frame in ImageSequence.Iterator(image)]  # 0: browsers use 100
    image.seek(0)
    found = _GIF_FPS.search(image.info.get("comment", b""))
    rate = float(found.group(1)) if found else 1000 / min(durations_ms)
    ends = np.rint(np.cumsum(durations_ms) * rate / 1000).astype(int)  # frame count at the end of each gif frame

    def frames() -> Iterator[tuple[float, np.ndarray]]:
        for frame, start, end in zip(ImageSequence.Iterator(image), [0, *ends], ends):
            rgb = np.asarray(frame.convert("RGB"))
            yield from ((i / rate, rgb) for i in range(start, end))

    return rate, frames()


def _collect(timed_frames: Iterator[tuple[float, np.ndarray]], horizon: float | None,
             source_fps: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Frame start times, frames (T, H, W, 3) and the end time, decoding only the first ``horizon`` seconds."""
    times, frames = [], []
    for t, frame in timed_frames:
        if horizon is not None and times and t - times[0] >= horizon:
            return np.array(times), np.stack(frames), t  # this frame's start is where the last one ends
        times.append(t)
        frames.append(frame)
    if not frames:
        raise ValueError("it has no frames")
    return np.array(times), np.stack(frames), times[-1] + 1 / source_fps


def _resample_indices(times: np.ndarray, end: float, fps: float, source_fps: float) -> np.ndarray:
    """Source frame indices at ``fps`` for the clip from ``times[0]`` to ``end`` (frame start times in seconds)."""
    count = max(1, math.floor((end - times[0]) * fps + 0.5))
    # the frame on screen half a frame after each timestamp: the nearest one when slowing down, each
    # repeated evenly when speeding up, and immune to timestamps that are off by a millisecond
    stamps = times[0] + np.arange(count) / fps + 0.5 / max(fps, source_fps)
    return np.searchsorted(times, stamps, side="right") - 1


def _fit_length(frames: np.ndarray, num_frames: int, pad: bool, path: Path) -> np.ndarray:
    if len(frames) < num_frames and not pad:
        raise T2VError(f"video {path} has {len(frames)} frames, fewer than the {num_frames} asked for; "
                       "ask for fewer or pass pad=True to repeat its last frame")
    repeats = np.minimum(np.arange(num_frames), len(frames) - 1)
    return frames[repeats]


def _crop_resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop (T, H, W, 3) to the aspect of ``size`` (height, width), then resize bilinearly."""
    height, width = size
    _, h, w, _ = frames.shape
    crop_h, crop_w = min(h, round(w * height / width)), min(w, round(h * width / height))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    frames = frames[:, top: top + crop_h, left: left + crop_w]
    if (crop_h, crop_w) == (height, width):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BILINEAR))
                     for f in frames])


def _reason(error: Exception) -> str:
    """The short cause of an I/O or decoding error, without the file name most of them repeat."""
    return getattr(error, "strerror", None) or str(error)
