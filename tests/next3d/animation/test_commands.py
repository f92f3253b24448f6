"""`next3d video` and `next3d reenact` end to end on random:tiny (few frames)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from next3d.cli import main

pytest.importorskip("imageio_ffmpeg")


def _run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_video_writes_the_expected_mp4(tmp_path):
    from next3d.animation.video_writer import read_video

    out = tmp_path / "v.mp4"
    res = _run(["video", "--network", "random:tiny", "--seeds", "0-1", "--out", str(out), "--frames", "3",
                "--fps", "12", "--depth", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    frames, meta = read_video(out)
    # 2x1 grid of [RGB | depth] cells of 64x64.
    assert frames.shape == (3, 64, 256, 3) and meta["fps"] == pytest.approx(12)
    assert meta["pix_fmt"].startswith("yuv420p")
    assert "3 frames of 256x64 at 12 fps" in res.output and "planes built 2 time(s) for 6 cell renders" in res.output


def test_video_frames_dir_and_errors(tmp_path):
    out = tmp_path / "frames"
    res = _run(["video", "--network", "random:tiny", "--seeds", "4", "--out", str(out), "--frames", "2",
                "--frames-dir", "--animate", "jaw", "--trajectory", "front", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["frame_000000.png", "frame_000001.png"]
    res = _run(["video", "--network", "random:tiny", "--seeds", "0-2", "--grid", "2x2", "--out",
                str(tmp_path / "x.mp4")])
    assert res.exit_code != 0 and "3 seed(s) do not fill a 2x2 grid evenly" in res.output
    res = _run(["video", "--network", "random:tiny", "--seeds", "0-3", "--grid", "2x1", "--out",
                str(tmp_path / "x.mp4")])
    assert res.exit_code != 0 and "add --interp" in res.output
    assert not (tmp_path / "x.mp4").exists()


def test_reenact_side_by_side_from_an_npz(tmp_path):
    from next3d.animation.drivers import save_param_sequence
    from next3d.animation.video_writer import read_video

    jaw = torch.zeros(2, 3)
    jaw[1, 0] = 0.3
    drv = save_param_sequence(tmp_path / "d.npz", {"expression": torch.zeros(2, 4), "jaw": jaw}, fps=20)
    out = tmp_path / "r.mp4"
    res = _run(["reenact", "--network", "random:tiny", "--seed", "1", "--driver", str(drv), "--out", str(out),
                "--side-by-side", "--relative", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    frames, meta = read_video(out)
    assert frames.shape == (2, 64, 128, 3) and meta["fps"] == pytest.approx(20)
    # Left half: the shaded driver mesh on black; its mouth region changes when the jaw opens.
    assert frames[0, :, :64].mean() > 5 and np.abs(frames[1, :, :64].astype(int) - frames[0, :, :64]).mean() > 0.2


def test_reenact_bad_inputs_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"frames": [{"expression": [NaN], "jaw": [0, 0, 0]}]}')
    res = _run(["reenact", "--network", "random:tiny", "--seed", "0", "--driver", str(bad),
                "--out", str(tmp_path / "o.mp4")])
    assert res.exit_code != 0 and "holds NaN or infinite values (first at frame 0)" in res.output
    res = _run(["reenact", "--network", "random:tiny", "--driver", str(bad), "--out", str(tmp_path / "o.mp4")])
    assert "give exactly one of --seed S or --avatar FILE" in res.output
    assert not (tmp_path / "o.mp4").exists()
