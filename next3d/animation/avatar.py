"""Avatar files: one person as the generator sees them (what inversion produces, what reenact reads).

An avatar is one `.npz` file (format "next3d-avatar", version 1), read without pickles:

| array | shape, dtype | meaning |
|---|---|---|
| `meta` | () unicode | JSON: `{"format": "next3d-avatar", "version": 1, "generator": PATH or null, "head_model": ..., "head_topology": ..., "source": {...}}` |
| `ws` | (num_ws, w_dim) float32 | the pivot latent (all ws: eg3d ws then texture ws) |
| `shape` | (S,) float32 | the person's FLAME shape (S <= the head model's count) |
| `expression` | (E,) float32 | optional: the neutral expression (default 0) |
| `jaw`, `neck`, `left_eye`, `right_eye` | (3,) float32 | optional: the neutral pose (default 0) |
| `camera` | (25,) float32 | optional: the camera of the source photo |

`generator` names a next3d checkpoint (`.n3d`) of the generator tuned for this person
(pivotal tuning), as a path relative to the avatar file's folder (or absolute); null
means the avatar's ws belong to the network given on the command line. `head_topology`
(`next3d.config.topology_hash`) guards against using the avatar with another head model.
Writing is atomic (a temporary file in the same folder, then a rename).

**Self-contained avatars (`.n3d`)**, as `next3d invert` writes them: a next3d checkpoint
(`next3d/checkpoint.py`, kind "avatar") whose group `G` is the generator tuned for this
person and whose group `avatar` holds the arrays above (`ws`, `shape`, the neutral keys,
`camera`), with the meta JSON (`format`, `version`, `head_model`, `head_topology`, `source`:
the photo's SHA-256, crop transform, network, ...) in config.json's `extra["avatar"]`. Its
`generator` is the file itself, so `next3d reenact --avatar A.n3d` needs no `--network`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import numpy as np
import torch

FORMAT = "next3d-avatar"
FORMAT_VERSION = 1
NEUTRAL_KEYS = ("expression", "jaw", "neck", "left_eye", "right_eye")
PathLike = Union[str, Path]


class AvatarError(ValueError):
    """An avatar file that cannot be read or does not fit the generator."""


@dataclass(frozen=True)
class Avatar:
    """A loaded avatar (CPU float32 tensors; module docstring for the meaning).

    ws (num_ws, w_dim); shape (S,); neutral: key -> (k,) for the keys present;
    camera (25,) or None; generator: the tuned checkpoint's resolved path, or None.
    """

    path: Path
    ws: torch.Tensor
    shape: torch.Tensor
    neutral: Dict[str, torch.Tensor] = field(default_factory=dict)
    camera: Optional[torch.Tensor] = None
    generator: Optional[Path] = None
    head_model: Optional[str] = None
    head_topology: Optional[str] = None
    source: Dict[str, object] = field(default_factory=dict)

    def check(self, G: torch.nn.Module) -> None:
        """Refuse an avatar whose ws, shape or head topology do not fit G (one line)."""
        if tuple(self.ws.shape) != (G.num_ws, G.w_dim):
            raise AvatarError(f"avatar {self.path}: ws has shape {tuple(self.ws.shape)}, the generator expects "
                              f"({G.num_ws}, {G.w_dim})")
        if self.shape.shape[0] > G.flame.num_shape:
            raise AvatarError(f"avatar {self.path}: shape has {self.shape.shape[0]} components, the head model "
                              f"{G.flame.num_shape}")
        expr = self.neutral.get("expression")
        if expr is not None and expr.shape[0] > G.flame.num_expression:
            raise AvatarError(f"avatar {self.path}: expression has {expr.shape[0]} components, the head model "
                              f"{G.flame.num_expression}")
        mine = getattr(G.config, "head_topology", None)
        if mine is not None and self.head_topology is not None and mine != self.head_topology:
            raise AvatarError(f"avatar {self.path}: made for head topology {self.head_topology}, the generator "
                              f"uses {mine}")


def save_avatar(path: PathLike, ws: torch.Tensor, shape: torch.Tensor, *, generator: Optional[PathLike] = None,
                neutral: Optional[Mapping[str, torch.Tensor]] = None, camera: Optional[torch.Tensor] = None,
                head_model: Optional[str] = None, head_topology: Optional[str] = None,
                source: Optional[dict] = None) -> Path:
    """Write an avatar file (module docstring). ws (num_ws, w_dim) or (1, num_ws, w_dim); shape (S,)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise AvatarError(f"avatar {path}: the file name must end in .npz")
    ws_np = np.asarray(ws.detach().cpu().float().numpy())
    if ws_np.ndim == 3 and ws_np.shape[0] == 1:
        ws_np = ws_np[0]
    if ws_np.ndim != 2:
        raise AvatarError(f"avatar {path}: ws must be (num_ws, w_dim), got {ws_np.shape}")
    gen = None
    if generator is not None:
        gpath = Path(generator)
        try:
            gen = os.path.relpath(gpath.resolve(), path.parent.resolve())
        except ValueError:  # another drive on Windows
            gen = str(gpath.resolve())
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "generator": gen, "head_model": head_model,
            "head_topology": head_topology, "source": source or {}}
    arrays = {"meta": np.array(json.dumps(meta)), "ws": ws_np,
              "shape": np.asarray(shape.detach().cpu().float().numpy()).reshape(-1)}
    for key, value in (neutral or {}).items():
        if key not in NEUTRAL_KEYS:
            raise AvatarError(f"avatar {path}: unknown neutral key {key!r} (expected {', '.join(NEUTRAL_KEYS)})")
        arrays[key] = np.asarray(value.detach().cpu().float().numpy()).reshape(-1)
    if camera is not None:
        arrays["camera"] = np.asarray(camera.detach().cpu().float().numpy()).reshape(25)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


AVATAR_GROUP = "avatar"
CHECKPOINT_KIND = "avatar"


def save_avatar_checkpoint(path: PathLike, G: torch.nn.Module, ws: torch.Tensor, shape: torch.Tensor, *,
                           neutral: Optional[Mapping[str, torch.Tensor]] = None,
                           camera: Optional[torch.Tensor] = None, source: Optional[dict] = None) -> Path:
    """Write a self-contained avatar (module docstring): G's weights + the avatar arrays, atomically.

    ws (num_ws, w_dim) or (1, num_ws, w_dim); shape (S,); neutral (k,) per key; camera (25,).
    """
    from next3d.checkpoint import built_head_topology, save_checkpoint

    path = Path(path)
    ws = ws.detach().float().cpu()
    if ws.ndim == 3 and ws.shape[0] == 1:
        ws = ws[0]
    if tuple(ws.shape) != (G.num_ws, G.w_dim):
        raise AvatarError(f"avatar {path}: ws has shape {tuple(ws.shape)}, the generator expects "
                          f"({G.num_ws}, {G.w_dim})")
    arrays = {"ws": ws.contiguous(), "shape": shape.detach().float().cpu().reshape(-1).contiguous()}
    for key, value in (neutral or {}).items():
        if key not in NEUTRAL_KEYS:
            raise AvatarError(f"avatar {path}: unknown neutral key {key!r} (expected {', '.join(NEUTRAL_KEYS)})")
        arrays[key] = value.detach().float().cpu().reshape(-1).contiguous()
    if camera is not None:
        arrays["camera"] = camera.detach().float().cpu().reshape(25).contiguous()
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "head_model": G.config.head_model,
            "head_topology": built_head_topology(G), "source": source or {}}
    return save_checkpoint(path, config=G.config, G=G, groups={AVATAR_GROUP: arrays}, extra={"avatar": meta},
                           kind=CHECKPOINT_KIND)


def _load_avatar_checkpoint(path: Path) -> "Avatar":
    from next3d.checkpoint import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(path, groups=[AVATAR_GROUP])
    except CheckpointError as exc:
        msg = str(exc)
        if f"no tensor group '{AVATAR_GROUP}'" in msg:
            msg = (f"avatar {path}: a next3d checkpoint without an avatar (made by `next3d invert`?); "
                   f"pass it as --network instead")
        raise AvatarError(msg) from None
    meta = (ckpt.meta.get("extra") or {}).get("avatar")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AvatarError(f"avatar {path}: config.json extra['avatar'] is not a next3d avatar description")
    if meta.get("version") != FORMAT_VERSION:
        raise AvatarError(f"avatar {path}: version {meta.get('version')!r}; this next3d reads version {FORMAT_VERSION}")
    arrays = {k: v.numpy() for k, v in ckpt.state_dicts[AVATAR_GROUP].items()}
    return _avatar_from_arrays(path, arrays, meta, generator=path)


def _vector(data, key: str, path: Path, length: Optional[int] = None) -> torch.Tensor:
    arr = np.asarray(data[key])
    if arr.ndim != 1 or (length is not None and arr.shape[0] != length) or arr.dtype.kind not in "fiu":
        want = f"({length},)" if length is not None else "(k,)"
        raise AvatarError(f"avatar {path}: '{key}' has shape {arr.shape} {arr.dtype}, expected {want} numbers")
    if not np.isfinite(arr).all():
        raise AvatarError(f"avatar {path}: '{key}' holds NaN or infinite values")
    return torch.from_numpy(arr.astype(np.float32))


def load_avatar(path: PathLike) -> Avatar:
    """Read an avatar file (.npz, or a self-contained .n3d); AvatarError with one line for anything malformed."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"avatar {path}: no such file")
    if path.suffix.lower() == ".n3d":
        return _load_avatar_checkpoint(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise AvatarError(f"avatar {path}: not a readable avatar .npz ({exc})") from None
    for key in ("meta", "ws", "shape"):
        if key not in arrays:
            raise AvatarError(f"avatar {path}: missing '{key}' (an avatar holds meta, ws and shape)")
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise AvatarError(f"avatar {path}: 'meta' is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AvatarError(f"avatar {path}: not a next3d avatar (meta format should be {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise AvatarError(f"avatar {path}: version {meta.get('version')!r}; this next3d reads version {FORMAT_VERSION}")
    generator = meta.get("generator")
    gen_path = None
    if generator is not None:
        gen_path = Path(generator)
        if not gen_path.is_absolute():
            gen_path = (path.parent / gen_path)
    return _avatar_from_arrays(path, {k: v for k, v in arrays.items() if k != "meta"}, meta, gen_path)


def _avatar_from_arrays(path: Path, arrays: Dict[str, np.ndarray], meta: dict, generator: Optional[Path]) -> "Avatar":
    for key in ("ws", "shape"):
        if key not in arrays:
            raise AvatarError(f"avatar {path}: missing '{key}' (an avatar holds meta, ws and shape)")
    ws = arrays["ws"]
    if ws.ndim != 2 or ws.dtype.kind != "f" or not np.isfinite(ws).all():
        raise AvatarError(f"avatar {path}: 'ws' must be finite (num_ws, w_dim) floats, got {ws.shape} {ws.dtype}")
    unknown = sorted(set(arrays) - {"meta", "ws", "shape", "camera", *NEUTRAL_KEYS})
    if unknown:
        raise AvatarError(f"avatar {path}: unknown array(s) {', '.join(unknown)}")
    neutral = {k: _vector(arrays, k, path, None if k == "expression" else 3) for k in NEUTRAL_KEYS if k in arrays}
    gen_path = generator
    return Avatar(path=path, ws=torch.from_numpy(ws.astype(np.float32)), shape=_vector(arrays, "shape", path),
                  neutral=neutral, camera=_vector(arrays, "camera", path, 25) if "camera" in arrays else None,
                  generator=gen_path, head_model=meta.get("head_model"), head_topology=meta.get("head_topology"),
                  source=dict(meta.get("source") or {}))


__all__ = ["FORMAT", "FORMAT_VERSION", "AVATAR_GROUP", "CHECKPOINT_KIND", "AvatarError", "Avatar", "save_avatar",
           "save_avatar_checkpoint", "load_avatar"]
