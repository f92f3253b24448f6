"""Run folders: `RUNS/NNNNN-<preset>-<dataset>/` with config.json, and finding them for --resume."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

from .config import RunConfig
from .snapshot import SnapshotError, latest_snapshot, read_snapshot

RUN_RE = re.compile(r"^(\d{5,})-")


def next_run_dir(out: Path, preset: str, data_name: str) -> Path:
    """The next numbered folder name in `out` (not created)."""
    out = Path(out)
    numbers = [int(m.group(1)) for p in out.iterdir() if p.is_dir() and (m := RUN_RE.match(p.name))] if out.is_dir() else []
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_name)[:40] or "data"
    return out / f"{max(numbers, default=-1) + 1:05d}-{preset}-{safe}"


def latest_run_dir(out: Path) -> Path:
    """The highest-numbered run folder in `out` (for --resume latest)."""
    out = Path(out)
    runs = sorted((p for p in out.iterdir() if p.is_dir() and RUN_RE.match(p.name)),
                  key=lambda p: int(RUN_RE.match(p.name).group(1))) if out.is_dir() else []
    if not runs:
        raise SnapshotError(f"--resume latest: no run folders (NNNNN-...) in {out}")
    return runs[-1]


def write_run_config(run_dir: Path, run_config: RunConfig, extra: Optional[dict] = None) -> Path:
    """config.json of the run (resolved configuration + command-line facts), written atomically."""
    data = {"run_config": run_config.to_dict(), **(extra or {})}
    path = Path(run_dir) / "config.json"
    tmp = path.with_name(f".config.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def resume_point(run_dir: Path, run_config: RunConfig):
    """(snapshot path, checkpoint) to resume `run_config` from; SnapshotError when the snapshot
    belongs to another configuration (naming the first differing key)."""
    path = latest_snapshot(run_dir)
    ckpt = read_snapshot(path)
    saved = RunConfig.from_dict(ckpt.meta["extra"]["run_config"])
    a, b = saved.comparable(), run_config.comparable()
    if a != b:
        raise SnapshotError(f"--resume {run_dir}: the run was made with another configuration "
                            f"({_first_difference(a, b)}); repeat its --preset and --set options")
    return path, ckpt


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: snapshot {a!r}, now {b!r}"
