"""Writing outputs safely: atomic writes and output-path checks done before the work starts.

* `atomic_write(path)` / `atomic_path(path)`: write to a temporary name in the same folder
  (`.NAME.tmp-XXXX`), then `os.replace` it onto the final name; on any failure (a full disk,
  a file-size limit, Ctrl-C, an exception in the writer) the temporary file is removed and
  an earlier file under the final name is left untouched. The final name never holds a
  partial file.
* `check_output_path(path, force=..., inputs=...)` / `check_output_paths({...})`: refuse,
  before any work is done, outputs that are folders, non-regular files (FIFOs, devices:
  never replaced), existing files without `force`, outputs that are also inputs, outputs
  that collide with each other, and outputs in missing or unwritable folders.

* `CommitOnSuccess`: a mixin for writers that build an output under a temporary name: used
  as a context manager, it calls `close()` (finish, move to the final name) when the block
  ends normally and `abort()` (drop everything) when it raises.

Errors are `OutputPathError` (one line naming the path and the problem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Dict, Iterable, Iterator, Mapping, Optional, Union

from next3d.errors import Next3DError

PathLike = Union[str, Path]


class OutputPathError(Next3DError, ValueError):
    """An output path cannot (or must not) be written."""


_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file is larger than the file-size limit allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EDQUOT: "the disk quota is exceeded",
}


def os_error_message(exc: OSError) -> str:
    """One line for an OSError: '<path>: <what went wrong>'."""
    reason = _HINTS.get(exc.errno or -1) or exc.strerror or str(exc)
    name = exc.filename if exc.filename is not None else None
    if exc.filename2 is not None:
        name = f"{exc.filename} -> {exc.filename2}"
    return f"{name}: {reason}" if name else reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix); on success it is renamed to `path`,
    on any failure it is removed. For writers that take a file name (PIL, numpy)."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give what a plain open() would
        yield tmp
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", encoding: Optional[str] = None) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for writing; flushed, fsynced and renamed to `path`
    when the block ends without error, removed otherwise."""
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write: mode must be 'w', 'wt' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    with atomic_write(path, "w", encoding=encoding) as fh:
        fh.write(text)
    return Path(path)


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.abspath(a) == os.path.abspath(b)


def check_output_path(path: PathLike, *, force: bool = False, inputs: Iterable[PathLike] = (),
                      what: str = "output", create_parent: bool = False) -> Path:
    """Check that `path` may be written (see the module docstring); returns it as a Path.

    force: an existing regular file may be replaced. inputs: paths read by the same run;
    writing over one of them is refused. create_parent: create a missing parent folder
    instead of refusing.
    """
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise OutputPathError(f"{what} {str(path)!r}: not a file name")
    for inp in inputs:
        if inp is not None and _same(path, Path(inp)):
            raise OutputPathError(f"{what} {path}: is also an input of this command; choose another name")
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputPathError(f"{what} {path}: cannot be inspected ({os_error_message(exc)})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputPathError(f"{what} {path}: is a folder; give a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"{what} {path}: exists and is not a regular file (a device, FIFO or socket); "
                                  f"refusing to replace it")
        if not force:
            raise OutputPathError(f"{what} {path}: exists; pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        if not create_parent:
            raise OutputPathError(f"{what} {path}: folder {parent} does not exist")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"{what} {path}: cannot create folder {parent} ({os_error_message(exc)})") from None
    if not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path}: folder {parent} is not writable")
    return path


def check_output_paths(paths: Mapping[str, PathLike], *, force: bool = False, inputs: Iterable[PathLike] = (),
                       create_parent: bool = False) -> Dict[str, Path]:
    """`check_output_path` for several outputs of one run, which must also differ from each other.

    paths: a name for messages (e.g. "--out", "landmarks") -> path."""
    inputs = [p for p in inputs if p is not None]
    checked: Dict[str, Path] = {}
    for name, p in paths.items():
        for other_name, other in checked.items():
            if _same(Path(p), other):
                raise OutputPathError(f"{name} {p}: is the same file as {other_name}; the outputs would "
                                      f"overwrite each other")
        checked[name] = check_output_path(p, force=force, inputs=inputs, what=name, create_parent=create_parent)
    return checked


__all__ = ["OutputPathError", "os_error_message", "atomic_path", "atomic_write", "atomic_write_bytes",
           "atomic_write_text", "check_output_path", "check_output_paths"]


class CommitOnSuccess:
    """`with writer:` closes (commits) on success and aborts on any exception, Ctrl-C included.
    Subclasses define `close()` and `abort()`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
