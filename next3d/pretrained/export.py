"""Export the generator of a training snapshot as a shippable file: G_ema only, plus the
arrays of the head model it was trained on (next3d/flame/head_record.py).

    result = export_generator("runs/train/00003-demo/snapshot-00120000.n3d", "next3d/pretrained/builtin.n3d")

The output is a `kind: "generator"` next3d checkpoint. Its `extra` records where it came
from: {"exported_from": snapshot file name, "group": "G_ema", "preset", "cur_nimg", "kimg",
"source_next3d_version"}. The file is written under a temporary name in the output folder,
read back and compared tensor by tensor, checked against `max_bytes`, and only then
renamed into place; an existing output is replaced only with `force`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from next3d.errors import Next3DError
from next3d.pretrained import MAX_BYTES

PathLike = Union[str, Path]


class ExportError(Next3DError, ValueError):
    """A snapshot cannot be exported, or the output cannot be written."""


@dataclass(frozen=True)
class ExportResult:
    """path: the written file; bytes: its size; group: the exported tensor group; preset: the
    run's preset (None when the snapshot has no run configuration); cur_nimg: images shown at
    the snapshot (None when unknown); head: the embedded head's HeadRecord; parameters: count."""

    path: Path
    bytes: int
    group: str
    preset: Optional[str]
    cur_nimg: Optional[int]
    head: object
    parameters: int


def _provenance(ckpt, snapshot: Path, group: str) -> dict:
    extra = ckpt.meta.get("extra") or {}
    run = extra.get("run_config") if isinstance(extra.get("run_config"), dict) else {}
    state = extra.get("state") if isinstance(extra.get("state"), dict) else {}
    cur = state.get("cur_nimg")
    cur = int(cur) if isinstance(cur, int) and not isinstance(cur, bool) else None
    preset = run.get("preset") if isinstance(run.get("preset"), str) else None
    return {"exported_from": snapshot.name, "group": group, "preset": preset, "cur_nimg": cur,
            "kimg": None if cur is None else cur / 1000.0,
            "source_next3d_version": ckpt.meta.get("next3d_version")}


def export_generator(snapshot: PathLike, out: PathLike, *, group: str = "G_ema", force: bool = False,
                     max_bytes: int = MAX_BYTES) -> ExportResult:
    """Write `group` (default G_ema) of checkpoint `snapshot` and its head model to `out`.

    The head is the one `next3d.checkpoint.build_generator` builds for the snapshot: its
    embedded arrays, else the configured head (a warning when the snapshot recorded another
    built-in head). Raises ExportError (one line) for an unreadable snapshot, a missing group,
    an existing output without `force`, or a file larger than `max_bytes`.
    """
    from next3d.checkpoint import CheckpointError, build_generator, load_checkpoint, save_checkpoint
    from next3d.flame.head_record import HeadRecordError

    snapshot, out = Path(snapshot), Path(out)
    if out.exists() and not force:
        raise ExportError(f"--out {out}: exists; pass --force to replace it")
    if out.exists() and out.is_dir():
        raise ExportError(f"--out {out}: is a folder; give a file name such as builtin.n3d")
    if out.resolve() == snapshot.resolve():
        raise ExportError(f"--out {out}: is the snapshot itself; write the export to another file")
    try:
        ckpt = load_checkpoint(snapshot, groups=(group,))
        G = build_generator(ckpt, which=group)
    except (CheckpointError, HeadRecordError) as exc:
        raise ExportError(str(exc)) from None
    if getattr(G, "head_data", None) is None:
        raise ExportError(f"checkpoint {snapshot}: the generator built from it carries no head model to embed")
    extra = _provenance(ckpt, snapshot, group)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.export-{os.getpid()}")
    try:
        save_checkpoint(tmp, config=ckpt.config, G_ema=ckpt.state_dicts[group], head=G.head_data,
                        embed_head=True, kind="generator", extra=extra)
        size = tmp.stat().st_size
        if size > max_bytes:
            raise ExportError(f"export of {snapshot}: {size / 2 ** 20:.1f} MiB is more than the "
                              f"{max_bytes / 2 ** 20:.0f} MiB a shipped model may have")
        back = load_checkpoint(tmp)
        for key, value in ckpt.state_dicts[group].items():
            if not torch.equal(back.state_dicts["G_ema"][key].cpu(), value.cpu()):
                raise ExportError(f"export of {snapshot}: tensor {key} reads back differently from {tmp}")
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    except CheckpointError as exc:
        raise ExportError(f"export of {snapshot}: the written file does not read back ({exc})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return ExportResult(path=out, bytes=out.stat().st_size, group=group, preset=extra["preset"],
                        cur_nimg=extra["cur_nimg"], head=G.head_record,
                        parameters=sum(int(t.numel()) for t in ckpt.state_dicts[group].values()))


__all__ = ["ExportError", "ExportResult", "export_generator"]
