"""Keeping freed CPU memory for reuse (glibc): counted in page faults, not in seconds."""

import pytest
import torch

from torch_utils import cpu_memory

pytestmark = pytest.mark.skipif(not cpu_memory.available(), reason="not a glibc process")

BLOCK = 64 * 2 ** 20  # above glibc's largest mmap threshold (32 MiB): mmap'd under the defaults
PAGES = BLOCK // 4096


_SCRIPT = """
import resource, sys, torch
from torch_utils import cpu_memory
if sys.argv[1] == "kept":
    assert cpu_memory.keep_freed_memory() and cpu_memory.is_kept()
def second_fill():
    first = torch.ones({n})
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = torch.ones({n})
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del second
    return faults
# The first kept blocks map their pages once; aligned requests need a little more than the block
# just freed until neighbouring free blocks have merged (a few rounds).
print(min(second_fill() for _ in range(6)))
""".format(n=BLOCK // 4)


def _faults_in_a_fresh_process(mode: str) -> int:
    """Minor page faults of filling a 64 MiB tensor after an equal one was freed, in a new process
    (this one's heap already holds whatever earlier tests kept)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return int(res.stdout.strip().splitlines()[-1])


@pytest.fixture
def restored():
    yield
    cpu_memory.release()


def test_kept_memory_is_reused_without_page_faults():
    fresh = _faults_in_a_fresh_process("default")
    kept = _faults_in_a_fresh_process("kept")
    assert fresh > PAGES // 2   # every page of a fresh mmap faults (fewer with huge pages)
    assert kept < PAGES // 20   # the freed block came back mapped


def test_glibc_defaults_for_a_block_then_kept_again(restored):
    assert cpu_memory.keep_freed_memory() and cpu_memory.is_kept()
    with cpu_memory.glibc_defaults():
        assert not cpu_memory.is_kept()
    assert cpu_memory.is_kept()
    assert cpu_memory.release() and not cpu_memory.is_kept()
    with cpu_memory.glibc_defaults():
        assert not cpu_memory.is_kept()
    assert not cpu_memory.is_kept()


@pytest.mark.parametrize("value,on", [(None, True), ("1", True), ("0", False), ("off", False), ("No", False)])
def test_environment_switch(monkeypatch, value, on):
    if value is None:
        monkeypatch.delenv("NEXT3D_KEEP_FREED_MEMORY", raising=False)
    else:
        monkeypatch.setenv("NEXT3D_KEEP_FREED_MEMORY", value)
    assert cpu_memory.enabled_by_environment() is on


def test_the_command_keeps_freed_memory(monkeypatch, restored):
    from click.testing import CliRunner

    from next3d.cli import main

    cpu_memory.release()
    monkeypatch.setenv("NEXT3D_KEEP_FREED_MEMORY", "0")
    assert CliRunner().invoke(main, ["bench", "--help"]).exit_code == 0
    assert not cpu_memory.is_kept()
    monkeypatch.delenv("NEXT3D_KEEP_FREED_MEMORY")
    assert CliRunner().invoke(main, ["bench", "--help"]).exit_code == 0
    assert cpu_memory.is_kept()
