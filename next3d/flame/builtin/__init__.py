"""The built-in procedural head model: a human head in FLAME's file layout, made by code.

Used whenever no FLAME folder is given. It is generated once, deterministically, into
`$NEXT3D_BUILTIN_HEAD_DIR` (default `~/.cache/next3d/builtin_head`) under a version
folder named by `BUILTIN_VERSION` (`v3-<hash>`: a hash of this package's generator sources,
so any change to the generator writes a new folder and a stale cache is never used), then
loaded by the same loader as real FLAME files.

Pieces: `profile` (base skin grid), `features` (nose, brows, eyes, lips, chin, ears),
`mesh` (lip cut, eyeballs, mouth pocket), `rig` (joints, skinning), `blendshapes`
(shape and expression components), `uv` (UV layout, face/eye mask), `landmarks`
(68-point embedding), `writer` (files), `preview` (a PNG to look at it).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

GENERATOR_VERSION = 3  # bump on changes the source hash cannot see (e.g. a dependency's behaviour)
ENV_BUILTIN_DIR = "NEXT3D_BUILTIN_HEAD_DIR"


def generator_hash(source_dir: Union[str, Path, None] = None) -> str:
    """Hash (12 hex digits) of the generator: its version constant and every `.py` file of
    `source_dir` (default: this package)."""
    h = hashlib.sha256(f"next3d builtin head v{GENERATOR_VERSION}".encode())
    for path in sorted(Path(source_dir or Path(__file__).parent).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()[:12]


BUILTIN_VERSION = f"v{GENERATOR_VERSION}-{generator_hash()}"


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
