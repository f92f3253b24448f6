"""Driving sequences: the .npz / .json format and its bad files, the published mesh-folder order,
and the video path (carry-over of faceless frames, temporal smoothing, the missing-fitter error)."""

import json
import sys

import numpy as np
import pytest
import torch

from next3d.animation.drivers import (DriverError, TrackResult, default_tracker, fill_missing, gaussian_smooth,
                                      is_mirrored, load_driver, load_mesh_folder, load_param_sequence,
                                      load_video_driver, natural_key, save_param_sequence, smooth_cameras,
                                      smooth_track)
from next3d.animation.trajectories import TrajectoryConfig, trajectory_labels


def _seq(n=4, e=5):
    g = torch.Generator().manual_seed(0)
    return {"expression": torch.randn(n, e, generator=g), "jaw": torch.rand(n, 3, generator=g) * 0.2,
            "neck": torch.randn(n, 3, generator=g) * 0.1}


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_sequence_round_trip(tmp_path, suffix):
    params = _seq()
    cams = trajectory_labels(TrajectoryConfig(kind="yaw"), 4)
    path = save_param_sequence(tmp_path / f"seq{suffix}", params, cameras=cams, shape=torch.ones(3), fps=25)
    seq = load_param_sequence(path)
    assert seq.kind == "params" and seq.num_frames == 4 and seq.fps == 25
    for key in ("expression", "jaw", "neck"):
        torch.testing.assert_close(seq.params[key], params[key])
    assert torch.equal(seq.params["left_eye"], torch.zeros(4, 3))  # optional keys default to zero
    torch.testing.assert_close(seq.cameras, cams)
    torch.testing.assert_close(seq.shape, torch.ones(3))
    assert not list(tmp_path.glob(".*partial*"))


def test_json_frames_and_eyes(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"expression": [0.1, 0.2], "jaw": [0.3, 0, 0], "eyes": [1, 2, 3, 4, 5, 6]},
                                {"expression": [0.0, 0.0], "jaw": [0, 0, 0], "eyes": [0, 0, 0, 0, 0, 0]}]))
    seq = load_param_sequence(path)
    assert seq.params["left_eye"][0].tolist() == [1, 2, 3] and seq.params["right_eye"][0].tolist() == [4, 5, 6]
    assert seq.params["jaw"][0, 0] == pytest.approx(0.3)


def _npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(jaw=np.zeros((3, 3))), "missing required key(s) expression"),
    (dict(expression=np.zeros((3, 4))), "missing required key(s) jaw"),
    (dict(expression=np.zeros((3, 4)), jaw=np.zeros((3, 2))), "'jaw' has shape (3, 2), expected (N, 3)"),
    (dict(expression=np.zeros((3, 4)), jaw=np.zeros((2, 3))), "frame counts disagree: expression has 3 rows but jaw has 2"),
    (dict(expression=np.zeros((0, 4)), jaw=np.zeros((0, 3))), "the sequence is empty"),
    (dict(expression=np.zeros((3, 4)), jaw=np.zeros((3, 3)), camera=np.zeros((3, 16))), "'camera' has shape (3, 16)"),
    (dict(expression=np.zeros((3, 4)), jaw=np.zeros((3, 3)), expresion=np.zeros((3, 4))), "unknown key(s) expresion"),
    (dict(expression=np.zeros((3, 4, 1)), jaw=np.zeros((3, 3))), "'expression' has shape (3, 4, 1)"),
])
def test_bad_npz_files_are_one_line_errors(tmp_path, arrays, message):
    with pytest.raises(DriverError) as err:
        load_param_sequence(_npz(tmp_path, **arrays))
    assert message in str(err.value) and "\n" not in str(err.value) and "bad.npz" in str(err.value)


def test_nan_names_the_first_bad_frame(tmp_path):
    expr = np.zeros((5, 4))
    expr[3, 1] = np.nan
    with pytest.raises(DriverError, match=r"'expression' holds NaN or infinite values \(first at frame 3\)"):
        load_param_sequence(_npz(tmp_path, expression=expr, jaw=np.zeros((5, 3))))


def test_pickled_and_corrupt_files(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, expression=np.array([object()], dtype=object), jaw=np.zeros((1, 3)))
    with pytest.raises(DriverError, match="object arrays"):
        load_param_sequence(path)
    bad = tmp_path / "cut.npz"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(DriverError, match="not a readable .npz"):
        load_param_sequence(bad)
    js = tmp_path / "e.json"
    js.write_text('{"format": "next3d-flame-sequence", "version": 1, "frames": []}')
    with pytest.raises(DriverError, match="the sequence is empty"):
        load_param_sequence(js)
    js.write_text('{"frames": [{"expression": [1], "jaw": [0, 0, 0]}, {"expression": [1]}]}')
    with pytest.raises(DriverError, match="frame 1 has different keys from frame 0 \\(jaw\\)"):
        load_param_sequence(js)
    js.write_text("{not json")
    with pytest.raises(DriverError, match="not valid JSON"):
        load_param_sequence(js)


# --------------------------------------------------------------------------- mesh folders

TRI = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv {x} 1 1\nf 1 2 3\nf 2 3 4\n"


def _write_frame(folder, stem, x, kpt=True):
    (folder / f"{stem}.obj").write_text(TRI.format(x=x))
    np.savetxt(folder / (f"{stem}_kpt.txt" if kpt else f"{stem}.txt"), np.full((68, 3), x))


def test_mesh_folder_natural_order_without_off_by_one(tmp_path):
    for number in (10, 2, 1):
        _write_frame(tmp_path, str(number), float(number), kpt=number != 2)
    seq = load_mesh_folder(tmp_path)
    assert seq.names == ("1", "2", "10")
    # Frame 0 is the first file (the published code started one frame late).
    assert seq.vertices[:, 3, 0].tolist() == [1.0, 2.0, 10.0]
    assert seq.landmarks[:, 0, 0].tolist() == [1.0, 2.0, 10.0]
    assert any("gap" in n for n in seq.notes)
    assert natural_key("frame2") < natural_key("frame10")


def test_mirrored_entries_are_skipped_with_a_note(tmp_path):
    for number in (1, 2, 3):
        _write_frame(tmp_path, f"{number:04d}", float(number))
    _write_frame(tmp_path, "0002_mirror", 99.0)
    _write_frame(tmp_path, "mirror_0003", 98.0)
    seq = load_mesh_folder(tmp_path)
    assert seq.names == ("0001", "0002", "0003")
    assert 99.0 not in seq.vertices[:, 3, 0].tolist()
    assert any("skipped 2 mirrored" in n for n in seq.notes)
    assert is_mirrored("12_flip") and not is_mirrored("12")


def test_mesh_folder_errors(tmp_path):
    _write_frame(tmp_path, "1", 1.0)
    _write_frame(tmp_path, "01", 1.0)
    with pytest.raises(DriverError, match="same frame number"):
        load_mesh_folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "5.obj").write_text(TRI.format(x=1))
    with pytest.raises(DriverError, match="frame 5.obj has no landmark file"):
        load_mesh_folder(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DriverError, match="no numbered .obj meshes"):
        load_driver(empty)


def test_mesh_folder_cameras_from_dataset_mead(tmp_path):
    for number in (0, 1):
        _write_frame(tmp_path, str(number), float(number))
    cams = trajectory_labels(TrajectoryConfig(kind="yaw"), 2)
    (tmp_path / "dataset_mead.json").write_text(json.dumps({"labels": [["1.png", cams[1].tolist()],
                                                                       ["0.png", cams[0].tolist()]]}))
    seq = load_mesh_folder(tmp_path)
    torch.testing.assert_close(seq.cameras, cams)


# --------------------------------------------------------------------------- video tracking


def test_fill_missing_carries_the_last_good_frame():
    params = {"expression": torch.arange(6.0)[:, None], "jaw": torch.zeros(6, 3)}
    found = torch.tensor([False, True, True, False, False, True])
    fixed, filled = fill_missing(TrackResult(params, torch.arange(6.0)[:, None].expand(6, 25), found))
    assert filled == [0, 3, 4]
    assert fixed.params["expression"][:, 0].tolist() == [1, 1, 2, 2, 2, 5]
    assert fixed.cameras[:, 0].tolist() == [1, 1, 2, 2, 2, 5]
    with pytest.raises(DriverError, match="no face found in any frame"):
        fill_missing(TrackResult(params, torch.zeros(6, 25), torch.zeros(6, dtype=torch.bool)))


def test_smoothing_lowers_jitter_without_lag():
    g = torch.Generator().manual_seed(0)
    t = torch.arange(200.0)
    truth = torch.sin(2 * torch.pi * t / 50)[:, None]
    noisy = truth + 0.05 * torch.randn(200, 1, generator=g)
    smooth = gaussian_smooth(noisy, 2.0)
    jitter = lambda x: float(((x - truth)[1:] - (x - truth)[:-1]).abs().mean())  # noqa: E731 - frame-to-frame noise
    assert jitter(smooth) < 0.35 * jitter(noisy)
    assert float((smooth - truth).abs().mean()) < float((noisy - truth).abs().mean())
    # Zero phase: the cross-correlation with the truth peaks at lag 0.
    lags = {lag: float((smooth[10 + lag:190 + lag] * truth[10:190]).sum()) for lag in range(-3, 4)}
    assert max(lags, key=lags.get) == 0
    assert torch.allclose(gaussian_smooth(torch.full((7, 2), 3.0), 1.5), torch.full((7, 2), 3.0))


def test_smoothed_cameras_stay_rotations():
    cams = trajectory_labels(TrajectoryConfig(kind="orbit"), 20)
    noisy = cams + 0.01 * torch.randn(cams.shape, generator=torch.Generator().manual_seed(1))
    out = smooth_cameras(noisy, 1.0)
    rot = out[:, :16].reshape(-1, 4, 4)[:, :3, :3]
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(20, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(20), atol=1e-5)
    assert float((out - cams).abs().mean()) < float((noisy - cams).abs().mean())


def test_missing_fitter_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "next3d.fitting", None)  # as if the fitter were not installed
    with pytest.raises(DriverError, match="tracking a driving video needs the FLAME fitter") as err:
        default_tracker()
    assert "\n" not in str(err.value)
    video = tmp_path / "drive.mp4"
    video.write_bytes(b"\x00" * 64)
    with pytest.raises(DriverError, match="needs the FLAME fitter"):
        load_driver(video)


class _BrightnessTracker:
    """A stand-in tracker with known answers: jaw = the frame's mean brightness; dark frames have no face."""

    def track(self, frames):
        level = (frames.mean(dim=(1, 2, 3)) + 1) / 2  # [0, 1]
        n = frames.shape[0]
        jaw = torch.zeros(n, 3)
        jaw[:, 0] = level
        return TrackResult({"expression": torch.zeros(n, 4), "jaw": jaw},
                           trajectory_labels(TrajectoryConfig(kind="front"), n), found=level > 0.05)


def test_video_driver_tracks_frame_by_frame(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from next3d.animation.video_writer import VideoWriter

    levels = [60, 120, 0, 180, 240]
    with VideoWriter(tmp_path / "d.mp4", fps=10) as writer:
        for v in levels:
            writer.append(np.full((16, 16, 3), v, np.uint8))
    seq = load_video_driver(tmp_path / "d.mp4", tracker=_BrightnessTracker(), smoothing=0.0)
    assert seq.kind == "video" and seq.num_frames == 5 and seq.fps == 10 and seq.images.shape == (5, 16, 16, 3)
    jaw = seq.params["jaw"][:, 0]
    assert jaw[[0, 1, 3, 4]].tolist() == pytest.approx([v / 255 for v in (60, 120, 180, 240)], abs=0.02)
    assert float(jaw[2]) == pytest.approx(float(jaw[1]))  # the faceless frame is carried over
    assert any("no face in 1 of 5 frame(s) (2)" in n for n in seq.notes)
    smooth = smooth_track(TrackResult(seq.params, seq.cameras, torch.ones(5, dtype=torch.bool)), 1.0)
    assert float(smooth.params["jaw"][:, 0].diff().abs().max()) < float(jaw.diff().abs().max())


def test_unreadable_video_is_a_one_line_error(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DriverError) as err:
        load_video_driver(bad, tracker=_BrightnessTracker())
    assert "broken.mp4" in str(err.value) and "\n" not in str(err.value)
