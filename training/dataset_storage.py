"""Where a data set's entries live: a folder or a zip, read the same way.

`Storage` reads entries by their '/'-separated name relative to the data set root. A zip
is opened lazily, once per process: a DataLoader worker forked or spawned from the main
process re-opens it on first use and never shares the parent's file handle.

Images are probed cheaply (`probe_image`): the header gives format and size, the last
bytes show whether the file was cut short (PNG must end with its IEND chunk, JPEG with
the EOI marker), so a truncated file is found at construction, not deep in a worker.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from training.dataset_schema import DatasetError

PathLike = Union[str, Path]
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_END = b"\xff\xd9"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class Storage:
    """Read access to the entries of a folder or a zip (picklable; no handle survives pickling)."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.is_zip = self.path.is_file()
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such folder or zip file")
        if self.is_zip and not zipfile.is_zipfile(self.path):
            raise DatasetError(f"{self.path}: not a folder and not a zip file (a data set is either)")
        self._zip: Optional[zipfile.ZipFile] = None
        self._zip_pid: Optional[int] = None
        self._names: Optional[set] = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def _zipfile(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"{self.path}: cannot open the zip ({exc})") from None
            self._zip_pid = os.getpid()
        return self._zip

    def close(self) -> None:
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None

    def where(self, name: str) -> str:
        """How messages name an entry: 'set.zip:images/x.png' or 'set/images/x.png'."""
        return f"{self.path}:{name}" if self.is_zip else str(self.path / name)

    def names(self) -> set:
        """All file entry names ('/'-separated, relative to the root)."""
        if self._names is None:
            if self.is_zip:
                self._names = {n for n in self._zipfile().namelist() if not n.endswith("/")}
            else:
                root = self.path
                self._names = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        return self._names

    def exists(self, name: str) -> bool:
        if self.is_zip:
            return name in self.names()
        return (self.path / name).is_file()

    def open(self, name: str):
        """A binary, seekable file object for an entry; DatasetError when absent."""
        try:
            if self.is_zip:
                return self._zipfile().open(name)
            return open(self.path / name, "rb")
        except KeyError:
            raise DatasetError(f"{self.where(name)}: missing (the labels list it, the zip does not hold it)") from None
        except FileNotFoundError:
            raise DatasetError(f"{self.where(name)}: missing (the labels list it, the folder does not hold it)") from None
        except OSError as exc:
            raise DatasetError(f"{self.where(name)}: cannot read ({exc.strerror or exc})") from None

    def read(self, name: str) -> bytes:
        with self.open(name) as fh:
            try:
                return fh.read()
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DatasetError(f"{self.where(name)}: cannot read ({exc})") from None


def probe_image(storage: Storage, name: str) -> Tuple[str, int, int]:
    """(format, width, height) of an image entry without decoding it; DatasetError naming the
    file when it is missing, not an image, or truncated."""
    where = storage.where(name)
    with storage.open(name) as fh:
        try:
            with Image.open(fh) as img:
                fmt, (width, height) = img.format, img.size
            fh.seek(0, io.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - len(PNG_END)))
            tail = fh.read()
        except UnidentifiedImageError:
            raise DatasetError(f"{where}: not a readable image (PNG or JPEG expected)") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DatasetError(f"{where}: unreadable image ({exc})") from None
    if fmt == "PNG" and not tail.endswith(PNG_END):
        raise DatasetError(f"{where}: truncated PNG (the file does not end with the IEND chunk)")
    if fmt == "JPEG" and not tail.rstrip(b"\x00").endswith(JPEG_END):
        raise DatasetError(f"{where}: truncated JPEG (the file does not end with the EOI marker)")
    if fmt not in ("PNG", "JPEG"):
        raise DatasetError(f"{where}: {fmt} image; the data set format holds PNG or JPEG")
    return fmt, width, height


def decode_image(storage: Storage, name: str) -> np.ndarray:
    """Decode an image entry to (H, W, 3) uint8 RGB; DatasetError naming the file on failure."""
    data = storage.read(name)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{storage.where(name)}: cannot decode image ({exc})") from None
    return np.asarray(rgb, dtype=np.uint8)


def read_npz(storage: Storage, name: str) -> dict:
    """The arrays of an .npz entry (no pickled objects); DatasetError naming the file on failure."""
    data = storage.read(name)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{storage.where(name)}: cannot read the ground-truth arrays ({exc})") from None


def list_images(storage: Storage, under: str = "") -> List[str]:
    """Sorted image entry names (PNG/JPEG) below a folder prefix."""
    return sorted(n for n in storage.names() if n.startswith(under) and n.lower().endswith(IMAGE_SUFFIXES))
