"""next3d.atomic_io: atomic writes leave the old file or the new one, never a part; output checks."""

import errno
import os

import pytest

from next3d.atomic_io import (OutputPathError, atomic_path, atomic_write, atomic_write_text, check_output_path,
                              check_output_paths, os_error_message)


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "w") as fh:
            fh.write("new, partial")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_atomic_path_refuses_a_folder_at_the_final_name(tmp_path):
    (tmp_path / "out.png").mkdir()
    with pytest.raises(IsADirectoryError):
        with atomic_path(tmp_path / "out.png") as tmp:
            tmp.write_bytes(b"x")
    assert sorted(os.listdir(tmp_path)) == ["out.png"] and (tmp_path / "out.png").is_dir()


def test_check_output_path_cases(tmp_path):
    existing = tmp_path / "x.obj"
    existing.write_text("x")
    assert check_output_path(tmp_path / "new.obj") == tmp_path / "new.obj"
    with pytest.raises(OutputPathError, match="exists; pass --force"):
        check_output_path(existing)
    assert check_output_path(existing, force=True) == existing
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_path(tmp_path, force=True)
    with pytest.raises(OutputPathError, match="does not exist"):
        check_output_path(tmp_path / "no" / "x.obj")
    assert check_output_path(tmp_path / "made" / "x.obj", create_parent=True).parent.is_dir()
    with pytest.raises(OutputPathError, match="also an input"):
        check_output_path(existing, force=True, inputs=[tmp_path / "." / "x.obj"])
    fifo = tmp_path / "f.obj"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="not a regular file"):
        check_output_path(fifo, force=True)
    with pytest.raises(OutputPathError, match="not a regular file"):
        check_output_path("/dev/null", force=True)


def test_outputs_of_one_run_must_differ(tmp_path):
    with pytest.raises(OutputPathError, match="same file as --out"):
        check_output_paths({"--out": tmp_path / "a.png", "preview": tmp_path / "a.png"})
    got = check_output_paths({"--out": tmp_path / "a.obj", "preview": tmp_path / "a.png"})
    assert list(got) == ["--out", "preview"]


def test_os_error_messages():
    assert os_error_message(OSError(errno.ENOSPC, "No space left on device", "/x/y.ply")) == "/x/y.ply: the disk is full"
    assert "file-size limit" in os_error_message(OSError(errno.EFBIG, "File too large", "f"))
    assert os_error_message(OSError(errno.EACCES, "Permission denied")) == "permission denied"


def test_commit_on_success_closes_or_aborts():
    from next3d.atomic_io import CommitOnSuccess

    class Recorder(CommitOnSuccess):
        def __init__(self):
            self.calls = []

        def close(self):
            self.calls.append("close")

        def abort(self):
            self.calls.append("abort")

    ok = Recorder()
    with ok as same:
        assert same is ok
    assert ok.calls == ["close"]
    failed = Recorder()
    with pytest.raises(KeyboardInterrupt):
        with failed:
            raise KeyboardInterrupt
    assert failed.calls == ["abort"]
