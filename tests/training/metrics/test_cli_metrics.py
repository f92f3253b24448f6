"""`next3d metrics`: JSON on stdout and in --out, one line per metric, clear errors."""

import importlib.util

import pytest

if importlib.util.find_spec("stlpips_pytorch") is None:
    pytest.skip("needs the stlpips-pytorch package (its weight files)", allow_module_level=True)

import json

from click.testing import CliRunner

from next3d.cli import main


def test_metrics_command_writes_json(head_dataset, metrics_cache, tmp_path):
    out = tmp_path / "res" / "metrics.json"
    result = CliRunner().invoke(main, ["metrics", "--network", "random:tiny", "--data", str(head_dataset.path),
                                       "--metrics", "kid1k_vgg,fid1k_vgg", "--num", "2", "--batch", "2",
                                       "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert list(report["metrics"]) == ["kid1k_vgg", "fid1k_vgg"]
    assert report["metrics"]["fid1k_vgg"]["results"]["fid1k_vgg"] > 0
    assert report["seed"] == 0 and report["num_items"] == 6 and report["metrics"]["fid1k_vgg"]["num_gen"] == 2
    assert not list(out.parent.glob("*.tmp"))
    assert '"fid1k_vgg"' in result.stdout


def test_metrics_command_errors(head_dataset, tmp_path):
    runner = CliRunner()
    bad = runner.invoke(main, ["metrics", "--network", "random:tiny", "--data", str(head_dataset.path),
                               "--metrics", "fid10k_alex"])
    assert bad.exit_code != 0 and "expected fid<N>k_<net>" in bad.output and "Traceback" not in bad.output
    inc = runner.invoke(main, ["metrics", "--network", "random:tiny", "--data", str(head_dataset.path),
                               "--metrics", "fid1k_inception"], env={"NEXT3D_INCEPTION_WEIGHTS": ""})
    assert inc.exit_code != 0 and "--inception-weights" in inc.output
    net = runner.invoke(main, ["metrics", "--network", str(tmp_path / "none.n3d"), "--data", str(head_dataset.path)])
    assert net.exit_code != 0 and "no such file" in net.output
    empty = tmp_path / "empty"
    empty.mkdir()
    data = runner.invoke(main, ["metrics", "--network", "random:tiny", "--data", str(empty)])
    assert data.exit_code != 0 and "dataset.json" in data.output
