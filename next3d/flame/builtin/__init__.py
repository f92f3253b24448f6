"""The built-in procedural head model: a human head in FLAME's file layout, made by code.

Used whenever no FLAME folder is given. It is generated once, deterministically, into
`$NEXT3D_BUILTIN_HEAD_DIR` (default `~/.cache/next3d/builtin_head`) under a version
folder (`v1/`), then loaded by the same loader as real FLAME files.

Pieces: `profile` (base skin grid), `features` (nose, brows, eyes, lips, chin, ears),
`mesh` (lip cut, eyeballs, mouth pocket), `rig` (joints, skinning), `blendshapes`
(shape and expression components), `uv` (UV layout, face/eye mask), `landmarks`
(68-point embedding), `writer` (files), `preview` (a PNG to look at it).
"""

from __future__ import annotations

import os
from pathlib import Path

BUILTIN_VERSION = "v1"
ENV_BUILTIN_DIR = "NEXT3D_BUILTIN_HEAD_DIR"


def builtin_cache_root() -> Path:
    root = os.environ.get(ENV_BUILTIN_DIR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "next3d" / "builtin_head"


def builtin_head_dir(regenerate: bool = False) -> Path:
    """The folder of the built-in head (generated on first use); `regenerate` rewrites it."""
    from next3d.flame.builtin.writer import write_builtin_head

    folder = builtin_cache_root() / BUILTIN_VERSION
    if regenerate and folder.exists():
        import shutil

        shutil.rmtree(folder)
    if not (folder / "generic_model.pkl").is_file():
        write_builtin_head(folder)
    return folder
