"""Keeping freed CPU memory for reuse (glibc): counted in page faults, not in seconds."""

import resource

import pytest
import torch

from torch_utils import cpu_memory

pytestmark = pytest.mark.skipif(not cpu_memory.available(), reason="not a glibc process")

BLOCK = 64 * 2 ** 20  # above glibc's largest mmap threshold (32 MiB): mmap'd under the defaults
PAGES = BLOCK // 4096


def _faults_of_second_fill() -> int:
    """Minor page faults while filling a fresh 64 MiB tensor after an equal one was freed."""
    first = torch.ones(BLOCK // 4)
    del first
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    second = torch.ones(BLOCK // 4)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    del second
    return faults


@pytest.fixture
def restored():
    yield
    cpu_memory.release()


def test_kept_memory_is_reused_without_page_faults(restored):
    cpu_memory.release()
    assert not cpu_memory.is_kept()
    fresh = _faults_of_second_fill()
    assert cpu_memory.keep_freed_memory() and cpu_memory.is_kept()
    # The first kept blocks map their pages once; aligned requests need a little more than the
    # block just freed until neighbouring free blocks have merged (a few rounds).
    kept = min(_faults_of_second_fill() for _ in range(6))
    assert fresh > PAGES // 2   # every page of a fresh mmap faults (fewer with huge pages)
    assert kept < PAGES // 20   # the freed block came back mapped


def test_glibc_defaults_for_a_block_then_kept_again(restored):
    cpu_memory.keep_freed_memory()
    with cpu_memory.glibc_defaults():
        assert not cpu_memory.is_kept()
        assert _faults_of_second_fill() > PAGES // 2
    assert cpu_memory.is_kept()
    cpu_memory.release()
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
