"""Data safety of the commands (earlier outputs intact, no partial or temporary files after a
failure, interrupts) and the error boundary of `next3d` (--debug, NEXT3D_DEBUG, internal errors)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardening.test_bad_inputs import check_clean_failure
from next3d.cli import main

GEN = ["generate", "--network", "random:tiny", "--seeds", "0", "--views", "1", "--batch", "1"]


@pytest.fixture(autouse=True)
def _ref_ops(monkeypatch):
    monkeypatch.setenv("NEXT3D_OPS", "ref")


def _tree(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate_refuses_to_overwrite_and_force_replaces_atomically(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "seed0000_depth.png").write_bytes(b"earlier result")
    res = CliRunner().invoke(main, GEN + ["--out", str(out)])
    check_clean_failure(res, ["seed0000_depth.png", "--force"])
    assert _tree(out) == {"seed0000_depth.png": b"earlier result"}

    # --force, but the disk fills up at the first rename: the earlier file stays as it was, no temporaries.
    import next3d.atomic_io as atomic_io

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(atomic_io.os, "replace", full_disk)
    res = CliRunner().invoke(main, GEN + ["--out", str(out), "--force"])
    check_clean_failure(res, ["seed0000.png", "disk is full"])
    assert _tree(out) == {"seed0000_depth.png": b"earlier result"}


def test_interrupt_keeps_finished_seeds_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """Ctrl-C while the second seed's mesh is being written: seed 0 complete, nothing of seed 1's
    PLY under its final name, no temporaries, exit code 130 and one line."""
    import next3d.render.density_grid as dg

    real = dg.write_ply
    calls = []

    def interrupted(path, vertices, faces, binary=True):
        calls.append(path)
        if len(calls) == 2:
            from next3d.atomic_io import atomic_write

            with atomic_write(path, "wb") as fh:
                fh.write(b"ply\npartial")
                raise KeyboardInterrupt
        return real(path, vertices, faces, binary)

    monkeypatch.setattr(dg, "write_ply", interrupted)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["generate", "--network", "random:tiny", "--seeds", "0-1", "--views", "1",
                                    "--batch", "2", "--shapes", "--shape-res", "8", "--shape-level", "0",
                                    "--out", str(out)])
    assert res.exit_code == 130, res.output
    check_clean_failure(res, ["interrupted"])
    names = sorted(_tree(out))
    assert names == ["seed0000.ply", "seed0000.png", "seed0000_depth.png", "seed0001.png", "seed0001_depth.png"]
    assert _tree(out)["seed0000.ply"].startswith(b"ply\nformat binary_little_endian")


def test_flame_export_writes_all_parts_or_none(tmp_path, monkeypatch):
    out = tmp_path / "head.obj"
    (tmp_path / "head_landmarks.txt").write_text("earlier")
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(out), "--preview"])
    check_clean_failure(res, ["head_landmarks.txt", "--force"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head_landmarks.txt"]

    # The preview (third part) fails: neither the OBJ nor the landmarks are replaced or created.
    import next3d.flame.builtin.preview as preview

    def broken(*args, **kwargs):
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(tmp_path / "head.png"))

    monkeypatch.setattr(preview, "save_preview", broken)
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(out), "--preview", "--force"])
    check_clean_failure(res, ["head.png", "file-size limit"])
    assert _tree(tmp_path) == {"head_landmarks.txt": b"earlier"}

    monkeypatch.undo()
    res = CliRunner().invoke(main, ["flame", "export", "--out", str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert sorted(_tree(tmp_path)) == ["head.obj", "head_landmarks.txt"]
    assert len((tmp_path / "head_landmarks.txt").read_text().splitlines()) == 68


def test_render_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "head.png"
    target.write_bytes(b"keep me")
    res = CliRunner().invoke(main, ["flame", "render", "--out", str(target), "--size", "32"])
    check_clean_failure(res, ["head.png", "--force"])
    assert target.read_bytes() == b"keep me"
    res = CliRunner().invoke(main, ["flame", "render", "--out", str(target), "--size", "32", "--force"])
    assert res.exit_code == 0 and target.read_bytes().startswith(b"\x89PNG")


def _boom(*args, **kwargs):
    raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch):
    import next3d.cli.flame_render as flame_render

    monkeypatch.setattr(flame_render, "load_flame_from_options", _boom)
    args = ["flame", "render", "--out", str(tmp_path / "x.png"), "--size", "32"]
    res = CliRunner().invoke(main, args)
    check_clean_failure(res, ["internal error", "TypeError", "--debug"])
    assert res.exit_code == 1

    res = CliRunner().invoke(main, ["--debug"] + args)
    assert isinstance(res.exception, TypeError)  # the original exception, not a one-liner
    monkeypatch.setenv("NEXT3D_DEBUG", "1")
    res = CliRunner().invoke(main, args)
    assert isinstance(res.exception, TypeError)


def test_library_errors_exit_2_and_debug_lets_them_through(tmp_path, monkeypatch):
    from next3d.config import ConfigError

    out = tmp_path / "out"
    out.mkdir()
    (out / "seed0000.png").write_bytes(b"x")
    res = CliRunner().invoke(main, GEN + ["--out", str(out)])
    assert res.exit_code == 2
    res = CliRunner().invoke(main, ["--debug"] + GEN + ["--out", str(out)])
    from next3d.generate import GenerateError

    assert isinstance(res.exception, GenerateError)

    import next3d.cli.flame_render as flame_render

    def config_problem(*a, **k):
        raise ConfigError("GeneratorConfig.z_dim: must be positive (got 0)")

    monkeypatch.setattr(flame_render, "load_flame_from_options", config_problem)
    res = CliRunner().invoke(main, ["flame", "render", "--out", str(tmp_path / "x.png")])
    check_clean_failure(res, ["z_dim: must be positive"])
    assert res.exit_code == 2


@pytest.mark.parametrize("exc,needle", [
    (MemoryError(), "out of memory"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory: you tried to "
                  "allocate 400000000000 bytes"), "out of memory"),
    (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    (PermissionError(errno.EACCES, "Permission denied", "/root/x.png"), "/root/x.png: permission denied"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp/out.png"), "/tmp/out.png: is a folder"),
    (KeyboardInterrupt(), "interrupted"),
])
def test_boundary_maps_each_error_class_to_one_line(exc, needle, tmp_path, monkeypatch):
    import next3d.cli.flame_render as flame_render

    def raiser(*a, **k):
        raise exc

    monkeypatch.setattr(flame_render, "load_flame_from_options", raiser)
    res = CliRunner().invoke(main, ["flame", "render", "--out", str(tmp_path / "x.png")])
    check_clean_failure(res, [needle])
    assert res.exit_code == (130 if isinstance(exc, KeyboardInterrupt) else 2)


def test_no_temporary_file_is_left_by_a_failing_image_write(tmp_path, monkeypatch):
    import torch
    from PIL import Image

    from next3d.image_io import save_image

    target = tmp_path / "a.png"
    target.write_bytes(b"old")

    def half_then_fail(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device", str(fp))

    monkeypatch.setattr(Image.Image, "save", half_then_fail)
    with pytest.raises(OSError):
        save_image(torch.zeros(3, 4, 4), target)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
