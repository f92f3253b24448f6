"""Restricted unpickling: the only way this project reads pickles.

A pickle can name any importable callable and have it called on load. Every pickle this
project reads (FLAME model files with chumpy objects, published EG3D/Next3D network
pickles) goes through `restricted_load`, which resolves only the globals in an explicit
allow-list and refuses everything else with `UnsafePickleError` before anything runs.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, Optional, Tuple, Union

from next3d.errors import Next3DError

GlobalKey = Tuple[str, str]


class UnsafePickleError(Next3DError, pickle.UnpicklingError, ValueError):
    """The pickle asked for a global that is not on the allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: Mapping[GlobalKey, Any], what: str,
                 persistent_load: Optional[Callable[[Any], Any]] = None, encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._what = what
        if persistent_load is not None:
            self.persistent_load = persistent_load  # type: ignore[assignment]

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        raise UnsafePickleError(
            f"{self._what}: refusing to load global '{module}.{name}' (not on the allow-list of this reader; "
            f"the file may be malicious or not the kind of file expected)"
        )


def restricted_load(
    source: Union[str, Path, bytes, BinaryIO],
    allowed: Mapping[GlobalKey, Any],
    what: str = "pickle",
    persistent_load: Optional[Callable[[Any], Any]] = None,
    encoding: str = "latin1",
) -> Any:
    """Unpickle `source` (path, bytes or binary file) resolving only the globals in `allowed`.

    Args:
        allowed: (module, name) -> object returned for that global. Map a foreign class
            to a harmless stand-in (e.g. chumpy's `Ch` to a plain holder class).
        what: how errors name the file, e.g. "FLAME model /path/generic_model.pkl".
        persistent_load: optional handler for persistent ids (torch storages).

    Raises:
        UnsafePickleError: a global outside the allow-list was named.
        ValueError: the data is not a readable pickle.
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return restricted_load(fh, allowed, what, persistent_load, encoding)
    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        return _RestrictedUnpickler(fh, allowed, what, persistent_load, encoding).load()
    except (UnsafePickleError, Next3DError):
        raise
    except MemoryError:
        raise ValueError(f"{what}: declares data larger than the memory available (malformed or hostile file)") from None
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply to read (malformed or hostile file)") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
            KeyError, ValueError) as exc:
        raise ValueError(f"{what}: not a readable pickle ({type(exc).__name__}: {exc})") from None


# Globals that only rebuild plain containers and numpy arrays; safe to allow anywhere.
def numpy_globals() -> dict:
    """Allow-list entries for numpy arrays and scalars (both numpy 1.x and 2.x module paths)."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar

    def guarded_reconstruct(subtype, shape, dtype):
        # numpy allocates `shape` here (normally (0,); __setstate__ then checks the data
        # length against the real shape): refuse sizes beyond the memory budget first.
        from next3d.limits import check_allocation

        dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        check_allocation("pickled numpy array", dims, np.dtype(dtype).itemsize if dtype is not None else 1)
        return _reconstruct(subtype, shape, dtype)

    entries = {
        ("numpy._core.multiarray", "_reconstruct"): guarded_reconstruct,
        ("numpy.core.multiarray", "_reconstruct"): guarded_reconstruct,
        ("numpy._core.multiarray", "scalar"): scalar,
        ("numpy.core.multiarray", "scalar"): scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("collections", "OrderedDict"): __import__("collections").OrderedDict,
        ("_codecs", "encode"): __import__("_codecs").encode,
    }
    return entries
