"""Package data of the fitting stages, one file per head model and version.

A shipped network embeds the head it was trained on (`next3d/flame/head_record.py`), which
may be an older built-in head version than the one this code builds. So the calibrations
stored with the package (`data/`: dlib offsets, albedo basis, face-mesh correspondence) are
kept per version, and each loader reads the file of the head it is given:

    data/{kind}_{head_model}_{head_version}{suffix}     e.g. albedo_builtin_v3-e5d6cc42bed8.npz

Each file also records the head's topology, which the loaders check.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def stored_file(kind: str, head: dict, suffix: str) -> Path:
    """The package-data path of `kind` for `head` (a `head_identity` dict)."""
    name = f"{kind}_{head['head_model']}_{head['head_version']}{suffix}"
    return DATA_DIR / "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
