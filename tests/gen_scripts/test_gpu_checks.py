"""gen_scripts/gpu_checks.sh: it parses, fits one 10-minute device call, and runs a chosen step."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "gen_scripts" / "gpu_checks.sh"
DEVICE_CALL_LIMIT_S = 600


def test_script_parses_and_its_step_limits_fit_one_device_call():
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    limits = [int(x) for x in re.findall(r"^step \w+ (\d+) ", SCRIPT.read_text(), flags=re.M)]
    assert len(limits) == 7, limits
    assert sum(limits) <= DEVICE_CALL_LIMIT_S - 30, f"step limits add up to {sum(limits)} s"


def test_a_chosen_step_runs_and_is_summarised(tmp_path):
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("no bash / timeout")
    bin_dir = tmp_path / "bin"  # the script calls python3: make it this interpreter
    bin_dir.mkdir()
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, OUT=str(tmp_path / "out"), DEVICE="cpu", STEPS="build_ops",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    res = subprocess.run(["bash", str(SCRIPT)], cwd=SCRIPT.parents[1], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    assert len(summary) == 1 and summary[0].startswith("build_ops: rc=0 in "), summary
    assert "ops built on cpu" in (tmp_path / "out" / "build_ops.log").read_text()
