"""Restricted readers for the pickled files of a FLAME folder (no chumpy, scipy or torch code runs).

* FLAME model pickles (`generic_model.pkl`, FLAME 2020, written by Python 2 with chumpy
  arrays and a scipy.sparse `J_regressor`; `flame2023_Open.pkl`): chumpy objects become
  `ChumpyStandIn` (their state is kept; the value is the state's `x`), scipy sparse
  matrices become `SparseStandIn` (their `data/indices/indptr/shape` are kept). Nothing of
  chumpy or scipy is imported or called.
* `.npy` files holding pickled dicts (DECA's `landmark_embedding.npy`): read through the
  same restricted unpickler, never `np.load(allow_pickle=True)`. DECA stores the dynamic
  contour entries as torch tensors serialised as `torch._utils._rebuild_tensor_v2(
  torch.storage._load_from_bytes(<legacy torch.save bytes>), offset, size, stride, ...)`;
  both globals map to numpy reconstructions here (the inner legacy stream is parsed by a
  second restricted unpickler that only accepts typed storages), so the result holds
  numpy arrays.

Every other global is refused with `next3d.safe_pickle.UnsafePickleError`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np

from next3d.limits import check_allocation, check_npy_file
from next3d.safe_pickle import UnsafePickleError, numpy_globals, restricted_load


class ChumpyStandIn:
    """Holds the pickled state of a chumpy object; `.value()` returns its array (`x`)."""

    chumpy_class = "Ch"

    def __setstate__(self, state):
        # chumpy pickles its __dict__; a (dict, slots) pair is also accepted.
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["_state"] = state if isinstance(state, dict) else {"x": state}

    def value(self) -> np.ndarray:
        state = self.__dict__.get("_state", {})
        if "x" not in state:
            raise ValueError(f"chumpy object of class {self.chumpy_class} has no stored value 'x' "
                             f"(only plain chumpy arrays are supported, not chumpy expressions)")
        return to_numpy(state["x"])


class SparseStandIn:
    """Holds the pickled state of a scipy.sparse matrix; `.toarray()` densifies it (CSC/CSR/COO)."""

    sparse_format = "csc"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["_state"] = dict(state)

    def toarray(self) -> np.ndarray:
        st = self.__dict__.get("_state", {})
        try:
            shape = tuple(int(s) for s in st.get("_shape", st.get("shape", ())))
        except (TypeError, ValueError):
            raise ValueError(f"sparse matrix shape {st.get('_shape', st.get('shape'))!r} is not a pair of "
                             f"integers") from None
        if len(shape) != 2:
            raise ValueError(f"sparse matrix without a 2-D shape (state keys: {sorted(st)})")
        check_allocation("sparse matrix densified", shape, 8)
        out = np.zeros(shape, dtype=np.float64)
        data = np.asarray(st["data"], dtype=np.float64)
        if self.sparse_format == "coo":
            rows, cols = np.asarray(st["row"]), np.asarray(st["col"])
            np.add.at(out, (rows, cols), data)
            return out
        indices, indptr = np.asarray(st["indices"]), np.asarray(st["indptr"])
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if self.sparse_format == "csc":
            np.add.at(out, (indices, major), data)
        else:
            np.add.at(out, (major, indices), data)
        return out


def _sparse_class(fmt: str):
    return type(f"{fmt}_matrix", (SparseStandIn,), {"sparse_format": fmt})


def _chumpy_class(name: str):
    return type(name, (ChumpyStandIn,), {"chumpy_class": name})


_STAND_IN_BASES = (ChumpyStandIn, SparseStandIn)


def _safe_reconstructor(cls, base, state):
    """copyreg._reconstructor limited to the stand-in classes (protocol 0/1 pickles)."""
    if not (isinstance(cls, type) and issubclass(cls, _STAND_IN_BASES)) or base is not object:
        raise UnsafePickleError(f"refusing copyreg._reconstructor for {cls!r} (only chumpy/scipy stand-ins)")
    obj = cls.__new__(cls)
    if state is not None:
        raise UnsafePickleError("refusing copyreg._reconstructor with a base-class state")
    return obj


class _FlameGlobals(Mapping):
    """Allow-list: numpy, chumpy.* -> ChumpyStandIn, scipy.sparse matrices -> SparseStandIn."""

    def __init__(self):
        self._fixed = dict(numpy_globals())
        for mod in ("copyreg", "copy_reg"):
            self._fixed[(mod, "_reconstructor")] = _safe_reconstructor
        for mod in ("builtins", "__builtin__"):  # __builtin__: Python 2 names (and protocol < 3 writers)
            for name, obj in (("object", object), ("set", set), ("frozenset", frozenset), ("slice", slice)):
                self._fixed[(mod, name)] = obj
        try:
            from numpy._core.numeric import _frombuffer
        except ImportError:  # numpy < 2
            from numpy.core.numeric import _frombuffer
        self._fixed[("numpy._core.numeric", "_frombuffer")] = _frombuffer
        self._fixed[("numpy.core.numeric", "_frombuffer")] = _frombuffer
        self._chumpy = {}
        self._sparse = {fmt: _sparse_class(fmt) for fmt in ("csc", "csr", "coo")}

    def _lookup(self, key):
        if key in self._fixed:
            return self._fixed[key]
        module, name = key
        if module == "chumpy" or module.startswith("chumpy."):
            return self._chumpy.setdefault(name, _chumpy_class(name))
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            return self._sparse[name[:3]]
        raise KeyError(key)

    def __getitem__(self, key):
        return self._lookup(key)

    def __contains__(self, key):
        try:
            self._lookup(key)
            return True
        except KeyError:
            return False

    def __iter__(self) -> Iterator:
        return iter(self._fixed)

    def __len__(self) -> int:
        return len(self._fixed)


def to_numpy(value: Any) -> Any:
    """Stand-ins -> numpy arrays (sparse matrices densified); other values unchanged."""
    if isinstance(value, ChumpyStandIn):
        return value.value()
    if isinstance(value, SparseStandIn):
        return value.toarray()
    return value


def load_model_pickle(path: Union[str, Path]) -> dict:
    """Read a FLAME model pickle into a dict of numpy arrays (and plain values)."""
    data = restricted_load(path, _FlameGlobals(), what=f"FLAME model {path}", encoding="latin1")
    if not isinstance(data, dict):
        raise ValueError(f"FLAME model {path}: expected a pickled dict, got {type(data).__name__}")
    out = {}
    for key, value in data.items():
        key = key.decode("latin1") if isinstance(key, bytes) else key
        out[key] = to_numpy(value)
    return out


# ---------------------------------------------------------------- torch tensors inside pickles

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


def _load_legacy_torch_bytes(data: bytes) -> np.ndarray:
    """Parse a legacy (pre-zip) torch.save stream holding one storage -> 1-D numpy array.

    Layout: pickled magic number, protocol version, sys info, the object (a storage as a
    persistent id ('storage', type, key, location, numel)), the list of storage keys, then
    per key an 8-byte element count and the raw little-endian elements.
    """
    if data[:2] == b"PK":
        raise ValueError("zip-format torch tensors inside a pickle are not supported; "
                         "re-save the file with numpy arrays")
    fh = io.BytesIO(bytes(data))
    storage_types = {("torch", name): _StorageType(dt) for name, dt in _STORAGE_DTYPES.items()}
    records = {}

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ValueError(f"unexpected persistent id {pid!r} in a torch tensor")
        records[str(pid[2])] = pid[1].dtype
        return str(pid[2])

    what = "torch tensor bytes"
    for _ in range(3):  # magic number, protocol version, sys info
        restricted_load(fh, {}, what)
    key = restricted_load(fh, storage_types, what, persistent_load=persistent_load)
    keys = restricted_load(fh, {}, what)
    arrays = {}
    for k in keys:
        (count,) = struct.unpack("<q", fh.read(8))
        dtype = records[str(k)].newbyteorder("<")
        raw = fh.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ValueError("truncated torch storage data")
        arrays[str(k)] = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    return arrays[key]


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    storage = np.asarray(storage)
    itemsize = storage.dtype.itemsize
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, *size, *stride)):
        raise ValueError("torch tensor offset, size and stride must be integers")
    if len(size) != len(stride) or min((*size, *stride), default=0) < 0:
        raise ValueError(f"torch tensor size {tuple(size)} / stride {tuple(stride)} are invalid")
    check_allocation("torch tensor in a pickle", tuple(size), itemsize)
    if all(s > 0 for s in size):
        last = offset + sum((s - 1) * st for s, st in zip(size, stride))
        if offset < 0 or min(stride, default=0) < 0 or last >= len(storage):
            raise ValueError("torch tensor view exceeds its storage")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(st * itemsize for st in stride))
    return np.array(view)


def _torch_globals() -> dict:
    return {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch.storage", "_load_from_bytes"): _load_legacy_torch_bytes,
    }


def load_pickled_npy(path: Union[str, Path], what: str) -> Any:
    """Read an `.npy` file that stores a pickled object (np.save(..., allow_pickle=True)).

    Plain numeric `.npy` files are returned as arrays. Torch tensors inside become numpy arrays.
    """
    path = Path(path)
    check_npy_file(path, what)  # a declared array must fit in the bytes present
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        except ValueError as exc:
            raise ValueError(f"{what}: not a .npy file ({exc})") from None
        if dtype != np.dtype(object):
            return np.load(path, allow_pickle=False)
        allowed = {**numpy_globals(), **_torch_globals()}
        obj = restricted_load(fh, allowed, what=what, encoding="latin1")
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    return obj
