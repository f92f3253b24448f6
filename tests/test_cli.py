import json

from click.testing import CliRunner

import next3d
from next3d.cli import main


def test_version():
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0
    assert next3d.__version__ in res.output


def test_help_lists_subcommands():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    assert "info" in res.output and "bench" in res.output


def test_info_json_no_build():
    res = CliRunner().invoke(main, ["info", "--json", "--no-build"])
    assert res.exit_code == 0, res.output
    facts = json.loads(res.output)
    assert facts["next3d"] == next3d.__version__
    assert facts["devices"][0] == "cpu"
    assert facts["ops_mode"] in ("auto", "ref")
    assert facts["head_model"].startswith(("built-in head v", "FLAME folder "))
    import torch

    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # The fast paths named are exactly the levers the default policy sets unlike the published one.
    assert "ops=auto" in facts["compute_policy"] and "inplace=True" in facts["compute_policy"]
    assert "upconv_channels_last=True" in facts["compute_policy"]
    assert facts["keeps_freed_memory"].startswith(("yes", "no ("))


def test_info_names_the_flame_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXT3D_FLAME_DIR", str(tmp_path))
    res = CliRunner().invoke(main, ["info", "--no-build"])
    assert res.exit_code == 0, res.output
    assert f"head model: FLAME folder {tmp_path}" in res.output


def test_unknown_ops_mode_is_a_clear_error(monkeypatch):
    from torch_utils import custom_ops

    monkeypatch.setenv("NEXT3D_OPS", "fast")
    try:
        custom_ops.ops_mode()
    except ValueError as exc:
        assert "NEXT3D_OPS" in str(exc) and "auto" in str(exc)
    else:
        raise AssertionError("an unknown NEXT3D_OPS value must be refused")


def test_click_lives_only_in_the_command_package():
    """Library modules hold no click code: every `import click` is under next3d/cli/."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    offenders = [str(p.relative_to(root)) for top in ("next3d", "torch_utils", "training")
                 for p in (root / top).rglob("*.py")
                 if "next3d/cli/" not in p.as_posix() and ("import click" in p.read_text() or "from click" in p.read_text())]
    assert offenders == []
