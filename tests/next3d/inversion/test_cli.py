"""`next3d invert` end to end on random:tiny and a two-item synthetic set (--target-item), its bad-input
messages, an interrupted run, and the result driving `next3d reenact --avatar` and `next3d video --avatar`."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from next3d.cli import main

FAST = ["--network", "random:tiny", "--steps-w", "1", "--steps-refine", "1", "--steps-pti", "1", "--neural-res", "16",
        "--no-identity", "--device", "cpu"]


def _run(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    from next3d.synthetic.writer import write_synthetic_set

    out = tmp_path_factory.mktemp("inv") / "synth"
    write_synthetic_set(out, 2, 64, seed=5, progress=False)
    return out


@pytest.fixture(scope="module")
def inverted(synth_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("inv") / "avatar"
    res = _run(["invert", "--target-item", f"{synth_set}:1", "--out", str(out), *FAST])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_invert_writes_every_output(inverted, tiny_G):
    from next3d.animation.avatar import load_avatar
    from next3d.inversion.writer import output_names

    out, output = inverted
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names().values())
    assert "wrote" in output and "avatar.n3d" in output and "fit" in output and "pti" in output
    recon = np.asarray(Image.open(out / "reconstruction.png"))
    assert recon.shape == (64, 192, 3)
    left = np.asarray(Image.open(out / "view_yaw-30.png")).astype(int)
    right = np.asarray(Image.open(out / "view_yaw+30.png")).astype(int)
    assert left.shape == (64, 64, 3) and np.abs(left - right).mean() > 1  # other views, other pixels
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["stages"]) == ["fit", "w", "refine", "pti"]
    for stage in metrics["stages"].values():
        assert np.isfinite(stage["psnr_input"]) and 0 < stage["psnr_input"] < 60
    assert metrics["target"]["source"]["kind"] == "dataset_item" and metrics["target"]["source"]["index"] == 1
    assert metrics["settings"]["latent"]["steps"] == 1 and metrics["settings"]["pivotal"]["steps"] == 1
    avatar = load_avatar(out / "avatar.n3d")
    avatar.check(tiny_G)
    assert avatar.generator == out / "avatar.n3d" and avatar.camera is not None
    assert avatar.source["index"] == 1 and avatar.source["stages"] == ["fit", "w", "refine", "pti"]


def test_reenact_and_video_accept_the_avatar(inverted, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from next3d.animation.drivers import save_param_sequence

    out, _ = inverted
    jaw = torch.zeros(2, 3)
    jaw[1, 0] = 0.35
    drv = save_param_sequence(tmp_path / "d.npz", {"expression": torch.zeros(2, 4), "jaw": jaw}, fps=10)
    frames = tmp_path / "frames"
    res = _run(["reenact", "--avatar", str(out / "avatar.n3d"), "--driver", str(drv), "--out", str(frames),
                "--frames-dir", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    a, b = (np.asarray(Image.open(frames / f"frame_00000{i}.png")).astype(int) for i in (0, 1))
    assert a.shape == (64, 64, 3) and np.abs(a - b).mean() > 0.05  # the jaw opens
    vid = tmp_path / "vid"
    res = _run(["video", "--avatar", str(out / "avatar.n3d"), "--out", str(vid), "--frames", "2", "--frames-dir",
                "--trajectory", "yaw", "--animate", "smile", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "avatar" in res.output and sorted(p.name for p in vid.iterdir()) == ["frame_000000.png",
                                                                                  "frame_000001.png"]
    res = _run(["video", "--avatar", str(out / "avatar.n3d"), "--seeds", "0", "--out", str(vid)])
    assert res.exit_code != 0 and "give exactly one of --seeds SPEC or --avatar FILE" in res.output


def test_bad_inputs_are_one_line_errors(synth_set, tiny_G, tmp_path):
    from next3d.checkpoint import save_checkpoint

    out = str(tmp_path / "o")
    res = _run(["invert", "--out", out, *FAST])
    assert res.exit_code != 0 and "give exactly one of PHOTO or --target-item DATASET:INDEX" in res.output
    res = _run(["invert", str(tmp_path / "none.jpg"), "--out", out, *FAST])
    assert res.exit_code != 0 and "none.jpg: no such file" in res.output
    res = _run(["invert", "--target-item", f"{synth_set}:7", "--out", out, *FAST])
    assert res.exit_code != 0 and "item 7 does not exist (it has 2 items)" in res.output
    res = _run(["invert", "--target-item", "nowhere", "--out", out, *FAST])
    assert res.exit_code != 0 and "expected DATASET:INDEX" in res.output
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(photo)
    res = _run(["invert", str(photo), "--true-flame", "--out", out, *FAST])
    assert res.exit_code != 0 and "--true-camera / --true-flame need --target-item" in res.output
    # A network made for another head topology.
    other = save_checkpoint(tmp_path / "other.n3d", config=tiny_G.config.replace(head_topology="deadbeefdeadbeef"),
                            G=tiny_G)
    args = [a if a != "random:tiny" else str(other) for a in FAST]
    res = _run(["invert", "--target-item", f"{synth_set}:0", "--out", out, *args])
    assert res.exit_code != 0 and "head model mismatch" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o" / "avatar.n3d").exists()


def test_existing_results_need_force(inverted):
    out, _ = inverted
    res = _run(["invert", "--target-item", "x:0", "--out", str(out), *FAST])
    assert res.exit_code != 0 and "exists; pass --force to overwrite it" in res.output


def test_an_interrupted_run_leaves_no_avatar(synth_set, tmp_path, monkeypatch):
    import next3d.inversion

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(next3d.inversion, "invert", interrupted)
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["invert", "--target-item", f"{synth_set}:0", "--out", str(out), *FAST])
    assert res.exit_code == 130
    assert not (out / "avatar.n3d").exists() and not list(out.glob(".*"))


def test_interrupt_while_writing_the_avatar_leaves_nothing_half_written(tiny_G, truth, tmp_path, monkeypatch):
    import safetensors.torch

    from next3d.inversion.pipeline import InversionConfig, InversionResult, StageState
    from next3d.inversion.writer import write_outputs

    state = StageState(G=tiny_G, ws=truth.ws, camera=truth.camera, flame=truth.flame)
    result = InversionResult(target=truth.target, stages={"fit": state}, config=InversionConfig())

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path, result, identity=False)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "reconstruction.png").exists()
    assert not (tmp_path / "avatar.n3d").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
