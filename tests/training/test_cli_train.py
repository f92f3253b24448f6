"""`next3d train`: bad input gets one clear line before any work; --dry-run; the config keys."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from next3d.cli.train import train
from next3d.config import ConfigError
from training.config import resolve_run_config
from training.dataset import DatasetWriter


def _run(args):
    return CliRunner().invoke(train, args, catch_exceptions=False)


def _one_line_error(result, *needles):
    assert result.exit_code != 0
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for n in needles:
        assert n in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def _sets(micro_sets):
    out = []
    for s in micro_sets:
        out += ["--set", s]
    return out


def test_dry_run_prints_the_resolved_config(tmp_path, micro_sets):
    res = _run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "runs"), "--dry-run",
                "--batch", "8", "--set", "glr=0.001", "--set", "G.render.samples_per_ray=6"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert cfg["preset"] == "tiny" and cfg["training"]["batch"] == 8 and cfg["training"]["glr"] == 0.001
    assert cfg["training"]["ema_kimg"] == pytest.approx(8 * 10 / 32)  # batch-proportional schedules follow --batch
    assert cfg["generator"]["render"]["samples_per_ray"] == 6
    assert cfg["discriminator"]["mesh_channels"] == 3  # deformation-aware D by default
    assert not (tmp_path / "runs").exists()  # nothing written


def test_unknown_set_key(tmp_path):
    line = _one_line_error(_run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "r"),
                                 "--set", "glrr=0.1"]), "glrr")
    assert "valid keys" in line
    _one_line_error(_run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "r"),
                          "--set", "G.render.nope=1"]), "nope")


def test_dataset_without_labels(tmp_path):
    (tmp_path / "images").mkdir()
    _one_line_error(_run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "r")]),
                    "dataset.json")
    assert not (tmp_path / "r").exists()


def test_resolution_mismatch(tmp_path, micro_dataset_dir):
    _one_line_error(_run(["--data", str(micro_dataset_dir), "--preset", "tiny", "--out", str(tmp_path / "r")]),
                    "32x32", "64x64", "tiny")
    assert not (tmp_path / "r").exists()


def test_topology_mismatch(tmp_path, micro_dataset, micro_sets, head_data):
    from training.dataset import head_identity

    ident = dict(head_identity(head_data), head_topology="sha256:0000000000000000")
    out = tmp_path / "other"
    with DatasetWriter(out, resolution=32, source={"tool": "tests"}, **ident) as w:
        it = micro_dataset[0]
        w.add(it["image"].permute(1, 2, 0).numpy(), camera=it["camera"].numpy(),
              flame={k: v.numpy() for k, v in it["flame"].items()}, landmarks_2d=np.zeros((68, 2), np.float32))
    _one_line_error(_run(["--data", str(out), "--preset", "tiny", "--out", str(tmp_path / "r"), *_sets(micro_sets)]),
                    "topology", "sha256:0000000000000000")


def test_no_write_permission(tmp_path, micro_dataset_dir, micro_sets, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = _run(["--data", str(micro_dataset_dir), "--preset", "tiny", "--out", str(blocker), *_sets(micro_sets)])
    assert res.exit_code == 2 and f"Invalid value for '--out': Directory '{blocker}' is a file." in res.output
    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(ro) and mode & os.W_OK else real_access(p, mode))
    _one_line_error(_run(["--data", str(micro_dataset_dir), "--preset", "tiny", "--out", str(ro),
                          *_sets(micro_sets)]), "not writable")
    assert list(ro.iterdir()) == []


def test_resume_of_another_config(tmp_path, micro_dataset, micro_sets):
    from training.loop import train as run

    rc = resolve_run_config("tiny", micro_sets)
    run_dir = tmp_path / "runs" / "00000-tiny-x"
    run(rc, micro_dataset, run_dir, max_steps=1)
    line = _one_line_error(_run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "runs"),
                                 "--resume", "latest", "--dry-run", *_sets(micro_sets), "--set", "dlr=0.01"]),
                           "another configuration", "training.dlr")
    assert "--set" in line
    ok = _run(["--data", str(tmp_path), "--preset", "tiny", "--out", str(tmp_path / "runs"), "--resume", "latest",
               "--dry-run", *_sets(micro_sets)])
    assert ok.exit_code == 0 and "would resume from" in ok.output and "snapshot-00000002.n3d" in ok.output


def test_config_rules():
    with pytest.raises(ConfigError, match="mesh_channels"):
        resolve_run_config("tiny").replace(**{"discriminator.mesh_channels": 0})
    rc = resolve_run_config("tiny", ["mesh_condition=none"])
    assert rc.discriminator.mesh_channels == 0
    assert resolve_run_config("tiny", ["mesh_condition=shaded"]).discriminator.mesh_channels == 1
    with pytest.raises(ConfigError, match="unknown preset"):
        resolve_run_config("huge")
