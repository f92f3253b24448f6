"""MP4 and PNG-frame output: frame counts, even sizes, yuv420p, fps, and atomic writes."""

import numpy as np
import pytest
import torch

from next3d.animation.video_writer import VideoWriter, VideoWriterError, pad_even, read_video

pytest.importorskip("imageio_ffmpeg")


def _frames(n, h=20, w=30):
    return [np.full((h, w, 3), 30 * i, np.uint8) for i in range(n)]


def test_mp4_frame_count_size_fps_and_pixel_format(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, fps=24) as writer:
        for f in _frames(6):
            writer.append(f)
    frames, meta = read_video(path)
    assert frames.shape == (6, 20, 30, 3)
    assert meta["fps"] == pytest.approx(24) and meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert [int(f.mean()) for f in frames] == pytest.approx([0, 30, 60, 90, 120, 150], abs=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary left


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = tmp_path / "odd.mp4"
    img = torch.linspace(-1, 1, 3 * 21 * 33).reshape(3, 21, 33)
    with VideoWriter(path, fps=5) as writer:
        writer.append(img)
        writer.append(img)
    frames, meta = read_video(path)
    assert frames.shape == (2, 22, 34, 3) and meta["size"] == (34, 22)
    assert pad_even(np.zeros((3, 5, 3), np.uint8)).shape == (4, 6, 3)


def test_interrupted_write_leaves_no_file(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="stop"):
        with VideoWriter(path, fps=10) as writer:
            for i, f in enumerate(_frames(5)):
                writer.append(f)
                if i == 2:
                    raise RuntimeError("stop")  # e.g. Ctrl-C or a failing frame
    assert list(tmp_path.iterdir()) == []
    # An earlier good file under the final name survives an interrupted rewrite.
    with VideoWriter(path, fps=10) as writer:
        writer.append(_frames(1)[0])
    before = path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, fps=10) as writer:
            writer.append(_frames(2)[1])
            raise KeyboardInterrupt
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_frames_dir_writes_numbered_pngs(tmp_path):
    from PIL import Image

    out = tmp_path / "frames"
    with VideoWriter(out, fps=10, frames_dir=True) as writer:
        for f in _frames(4, 9, 7):
            writer.append(f)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(4)]
    with Image.open(out / "frame_000003.png") as im:
        assert im.size == (7, 9) and np.asarray(im)[0, 0, 0] == 90  # PNG keeps the odd size, exact values
    with pytest.raises(VideoWriterError, match="exists and is not an empty folder"):
        VideoWriter(out, frames_dir=True)
    interrupted = tmp_path / "cut"
    with pytest.raises(RuntimeError):
        with VideoWriter(interrupted, frames_dir=True) as writer:
            writer.append(_frames(1)[0])
            raise RuntimeError("stop")
    assert not interrupted.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_writer_errors(tmp_path):
    with pytest.raises(VideoWriterError, match="expected a video file name ending in .mp4"):
        VideoWriter(tmp_path / "out.txt")
    with pytest.raises(VideoWriterError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "out.mp4")
    with pytest.raises(VideoWriterError, match="no frames to write"):
        with VideoWriter(tmp_path / "empty.mp4"):
            pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(VideoWriterError, match="frame 1 is 8x8, earlier frames 30x20"):
        with VideoWriter(tmp_path / "sizes.mp4") as writer:
            writer.append(_frames(1)[0])
            writer.append(np.zeros((8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []
