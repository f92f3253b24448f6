"""`next3d flame export` and the flame bench topic (built-in head from the session cache)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from next3d.cli import main
from next3d.flame.obj_io import read_obj


@pytest.fixture
def builtin_env(builtin_root, monkeypatch):
    monkeypatch.setenv("NEXT3D_BUILTIN_HEAD_DIR", str(builtin_root))
    monkeypatch.delenv("NEXT3D_FLAME_DIR", raising=False)


def test_export_writes_obj_and_landmarks(builtin_env, builtin_data, tmp_path):
    out = tmp_path / "mesh.obj"
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(out), "--jaw-open", "0.25",
                                    "--shape", "1,-1", "--expression", "0.5", "--neck-yaw", "0.1"])
    assert res.exit_code == 0, res.output
    mesh = read_obj(out)
    assert mesh.vertices.shape == builtin_data.v_template.shape
    assert mesh.uv_coords is not None and mesh.uv_faces.shape == mesh.faces.shape
    lmk = np.loadtxt(tmp_path / "mesh_landmarks.txt")
    assert lmk.shape == (68, 3)
    assert np.linalg.norm(lmk[62] - lmk[66]) > 0.005  # the mouth is open
    rest = tmp_path / "rest.obj"
    assert CliRunner().invoke(main, ["flame", "export", "--out", str(rest)]).exit_code == 0
    np.testing.assert_allclose(read_obj(rest).vertices, builtin_data.v_template, atol=2e-6)


def test_export_errors(builtin_env, tmp_path):
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(tmp_path / "m.obj"), "--shape", "1,x"])
    assert res.exit_code != 0 and "comma-separated numbers" in res.output
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(tmp_path / "m.obj"), "--expression",
                                    ",".join(["1"] * 500)])
    assert res.exit_code != 0 and "expression components" in res.output
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(tmp_path / "m.obj"), "--flame-dir",
                                    str(tmp_path / "none")])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_bench_flame_quick(builtin_env):
    from next3d.bench import flame as bench_flame

    result = bench_flame.run(devices=["cpu"], quick=True)
    assert result["model"] == "builtin" and result["batch"] == 8
    cpu = result["results"]["cpu"]
    assert cpu["forward_ms"] > 0 and cpu["forward_backward_ms"] >= cpu["forward_ms"] * 0.5
