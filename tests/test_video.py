"""Video: every format round-trips, reading resamples/resizes/cuts, and bad paths raise T2VError."""

import os

import av
import numpy as np
import pytest

from t2v.data.shapes import make_example
from t2v.errors import T2VError
from t2v.video import Video, contact_sheet, read_video


@pytest.fixture(scope="module")
def shapes_video() -> Video:
    return Video(make_example(1).video, fps=8)  # 16 x 64 x 64 at 8 fps


@pytest.fixture(scope="module")
def still_video() -> Video:
    video = make_example(2).video  # seed 2 does not move: identical frames that gif writers merge
    assert (video == video[:1]).all()
    return Video(video, fps=8)


def decode_with_pyav(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_npy_round_trip_is_exact(tmp_path, shapes_video):
    back = read_video(shapes_video.save(tmp_path / "clip.npy"))
    assert np.array_equal(back.frames, shapes_video.frames)


@pytest.mark.parametrize("fixture", ["shapes_video", "still_video"])
def test_gif_round_trip_is_exact_in_frames_and_fps(tmp_path, fixture, request):
    video = request.getfixturevalue(fixture)
    back = read_video(video.save(tmp_path / "clip.gif"))
    assert np.array_equal(back.frames, video.frames)
    assert back.fps == video.fps


def test_mp4_is_h264_yuv420p_and_close_to_the_original(tmp_path, shapes_video):
    path = shapes_video.save(tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
    decoded = decode_with_pyav(path)
    assert decoded.shape == shapes_video.frames.shape
    assert np.abs(decoded.astype(int) - shapes_video.frames).mean() < 6
    assert read_video(path).fps == 8


def test_png_is_a_contact_sheet_of_all_frames(tmp_path, shapes_video):
    from PIL import Image

    with Image.open(shapes_video.save(tmp_path / "sheet.png")) as sheet:
        assert sheet.size == (8 * 64 + 7 * 2, 2 * 64 + 2)  # 16 frames: 2 rows of 8, 2 px gaps


def test_contact_sheet_fills_a_partial_last_row():
    frames = np.full((5, 4, 6, 3), 7, np.uint8)
    sheet = np.asarray(contact_sheet(frames, columns=3, pad=1))
    assert sheet.shape == (2 * 4 + 1, 3 * 6 + 2, 3)
    assert (sheet[5:, 14:] == 255).all()  # the empty sixth tile is gap colour
    assert (sheet[:4, :6] == 7).all()


def test_odd_sized_mp4_is_padded_to_even(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 33, 35, 3), dtype=np.uint8)
    back = read_video(Video(frames).save(tmp_path / "odd.mp4"))
    assert (back.num_frames, back.height, back.width) == (3, 34, 36)


def test_reading_at_half_the_fps_keeps_every_other_frame(tmp_path, shapes_video):
    back = read_video(shapes_video.save(tmp_path / "clip.npy"), fps=4)
    assert (back.num_frames, back.fps) == (8, 4)
    assert np.array_equal(back.frames, shapes_video.frames[0::2])


def test_reading_at_double_the_fps_repeats_each_frame(tmp_path, shapes_video):
    back = read_video(shapes_video.save(tmp_path / "clip.mp4"), fps=16)
    assert back.num_frames == 32
    assert np.array_equal(back.frames[0::2], back.frames[1::2])


def test_size_centre_crops_to_the_aspect_then_resizes(tmp_path):
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 20:60] = 200  # the centre square; the rest is cropped away
    back = read_video(Video(frames).save(tmp_path / "wide.npy"), size=(20, 20))
    assert back.frames.shape == (2, 20, 20, 3)
    assert (back.frames == 200).all()


def test_num_frames_takes_the_first_frames(tmp_path, shapes_video):
    path = shapes_video.save(tmp_path / "clip.gif")
    assert np.array_equal(read_video(path, num_frames=5).frames, shapes_video.frames[:5])
    assert read_video(path, fps=4, num_frames=3).num_frames == 3


def test_too_short_clip_raises_unless_padded(tmp_path, shapes_video):
    path = shapes_video.save(tmp_path / "clip.npy")
    with pytest.raises(T2VError, match="fewer than the 20"):
        read_video(path, num_frames=20)
    padded = read_video(path, num_frames=20, pad=True)
    assert np.array_equal(padded.frames[16:], np.repeat(shapes_video.frames[-1:], 4, axis=0))


def test_unknown_suffix_raises_listing_the_allowed_ones(tmp_path, shapes_video):
    with pytest.raises(T2VError, match=r"\.mp4, \.gif, \.npy, \.png"):
        shapes_video.save(tmp_path / "clip.avi")


def test_missing_folder_raises_naming_it(tmp_path, shapes_video):
    with pytest.raises(T2VError, match="nope.*does not exist"):
        shapes_video.save(tmp_path / "nope" / "clip.mp4")


def test_read_only_folder_raises_naming_it(tmp_path, shapes_video):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        with pytest.raises(T2VError, match="locked is not writable"):
            shapes_video.save(folder / "clip.gif")
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".npy", ".webm"])
def test_corrupt_or_empty_file_raises_cannot_read(tmp_path, suffix):
    corrupt, empty = tmp_path / f"corrupt{suffix}", tmp_path / f"empty{suffix}"
    corrupt.write_bytes(np.random.default_rng(0).bytes(2000))
    empty.write_bytes(b"")
    for path in (corrupt, empty):
        with pytest.raises(T2VError, match=f"cannot read video .*{path.name}"):
            read_video(path)


def test_missing_file_raises_cannot_read(tmp_path):
    with pytest.raises(T2VError, match="cannot read video .*: no such file"):
        read_video(tmp_path / "absent.mp4")


def test_failed_save_leaves_nothing_behind(tmp_path, shapes_video):
    (tmp_path / "clip.mp4").mkdir()  # the target is a folder, so the final move fails
    with pytest.raises(T2VError, match="cannot write"):
        shapes_video.save(tmp_path / "clip.mp4")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_saving_over_a_file_replaces_it(tmp_path, shapes_video):
    path = tmp_path / "clip.npy"
    path.write_bytes(b"old")
    shapes_video.save(path)
    assert np.array_equal(np.load(path), shapes_video.frames)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.npy"]


def test_video_rejects_frames_that_are_not_uint8_rgb():
    with pytest.raises(T2VError, match="uint8"):
        Video(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(T2VError, match=r"\(T, H, W, 3\)"):
        Video(np.zeros((8, 8, 3), np.uint8))
