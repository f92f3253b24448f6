"""The trained generator shipped inside the package (`--network builtin`, the default of
`next3d generate`, `video`, `reenact`, `demo`).

    path = builtin_network_path()        # next3d/pretrained/builtin.n3d (package data)
    ckpt = load_builtin_checkpoint()     # next3d.checkpoint.Checkpoint, BuiltinNetworkError if missing/corrupt

The file is a next3d checkpoint (next3d/checkpoint.py) holding only `G_ema` of the `demo`
preset (128-px images) and the arrays of the built-in head it was trained on (group
"head"; see next3d/flame/head_record.py), so later changes to the head code never change
what it draws. It is made from a training snapshot by `next3d export-model`
(`next3d.pretrained.export.export_generator`); README "The built-in model" gives the
commands that reproduce it.
"""

from __future__ import annotations

from pathlib import Path

from next3d.errors import Next3DError

BUILTIN = "builtin"
"""The --network value naming the shipped model."""
BUILTIN_FILE = "builtin.n3d"
"""File name of the shipped model inside this package."""
MAX_BYTES = 30 * 2 ** 20
"""Largest size of the shipped file (30 MiB)."""


class BuiltinNetworkError(Next3DError, ValueError):
    """The shipped model file is missing from the installation or cannot be read."""


def builtin_network_path() -> Path:
    """Where the shipped model lives (whether or not the file is there)."""
    return Path(__file__).resolve().parent / BUILTIN_FILE


def load_builtin_checkpoint(device: str = "cpu"):
    """The shipped checkpoint (`next3d.checkpoint.Checkpoint`, groups G_ema and head).

    Raises BuiltinNetworkError (one line) when the file is missing, truncated or corrupt."""
    from next3d.checkpoint import CheckpointError, load_checkpoint

    path = builtin_network_path()
    if not path.is_file():
        raise BuiltinNetworkError(
            f"--network builtin: the built-in model file {path} is missing from this installation (a source "
            f"checkout without it, or a broken install): reinstall next3d, or pass --network PATH / random:PRESET")
    try:
        return load_checkpoint(path, device=device)
    except CheckpointError as exc:
        raise BuiltinNetworkError(f"--network builtin: the built-in model file is damaged ({exc}); reinstall "
                                  f"next3d, or pass --network PATH / random:PRESET") from None


__all__ = ["BUILTIN", "BUILTIN_FILE", "MAX_BYTES", "BuiltinNetworkError", "builtin_network_path",
           "load_builtin_checkpoint"]
