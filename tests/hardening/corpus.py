"""Builders of hostile and malformed input files for the bad-input corpus (tests/hardening).

Each builder writes into a folder and returns the path. Pickles that would run a payload
if executed carry `payload(marker)`: the payload creates `marker`, so a test can assert
that the file was never created.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np


class _Payload:
    """Unpickling this calls builtins.exec: creates the marker file if ever executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('payload ran')",))


def evil_pickle_bytes(marker: Path, wrap: Optional[Dict[str, Any]] = None) -> bytes:
    """A pickle whose loading runs exec (inside a dict when `wrap` is given)."""
    obj = dict(wrap or {}, payload=_Payload(marker)) if wrap is not None else _Payload(marker)
    return pickle.dumps(obj, protocol=2)


def tiny_config() -> dict:
    from next3d.presets import get_preset

    return get_preset("tiny").to_dict()


def safetensors_bytes(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def write_n3d(path: Path, config: Any = None, members: Optional[Dict[str, bytes]] = None,
              groups: Any = None, raw_config: Optional[bytes] = None, compress_config: bool = False,
              **header_extra) -> Path:
    """A checkpoint zip with a chosen config.json (dict, or raw bytes) and members."""
    if raw_config is None:
        header = {"format": "next3d-checkpoint", "format_version": 1, "kind": "generator",
                  "generator": tiny_config() if config is None else config, "discriminator": None,
                  "groups": {"G": {"file": "G.safetensors", "tensors": {"w": ["float32", [2]]}}}
                  if groups is None else groups, "fresh_modules": {}, "extra": {}}
        header.update(header_extra)
        raw_config = json.dumps(header).encode()
    if members is None:
        members = {"G.safetensors": safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, np.zeros(2, "<f4").tobytes())}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("config.json"), raw_config,
                    compress_type=zipfile.ZIP_DEFLATED if compress_config else zipfile.ZIP_STORED)
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def npy_declaring(path: Path, shape, dtype="<f8", data: bytes = b"\0" * 16) -> Path:
    """A .npy file whose header declares `shape` but holds only `data`."""
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
        fh.write(data)
    return path


def flame_folder_with(tmp: Path, name: str, **model_changes) -> Path:
    """A copy of the built-in head folder whose model pickle has `model_changes` applied
    (value None deletes a key)."""
    import shutil

    from next3d.flame.builtin import builtin_head_dir
    from next3d.flame.pickles import load_model_pickle

    src = builtin_head_dir()
    dst = tmp / name
    shutil.copytree(src, dst)
    model = load_model_pickle(src / "generic_model.pkl")
    for key, value in model_changes.items():
        model[key] = value
    (dst / "generic_model.pkl").write_bytes(pickle.dumps(model, protocol=2))
    return dst


class csc_matrix:  # noqa: N801 - pickled under scipy's name by the corpus
    """Pickles like a scipy.sparse CSC matrix state with a declared `shape` and one stored value."""

    def __init__(self, shape):
        self._shape = tuple(shape)

    def __getstate__(self):
        return {"_shape": self._shape, "data": np.zeros(1), "indices": np.zeros(1, np.int64),
                "indptr": np.zeros(2, np.int64)}
