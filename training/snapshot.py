"""Training snapshots: `.n3d` checkpoints (next3d/checkpoint.py) with the whole training state.

A snapshot `snapshot-NNNNNNNN.n3d` (NNNNNNNN = images shown) holds the tensor groups

    G, G_ema, D                    the networks
    opt_G, opt_D                   Adam state per parameter: "<index>.exp_avg", "<index>.exp_avg_sq", "<index>.step"
    rng                            "torch" (CPU generator state), "cuda<k>" (each CUDA device),
                                   "numpy" (MT19937 keys), "python" (Mersenne state words)

and in config.json's `extra`: {"run_config": RunConfig.to_dict(), "state": counters and data
position, "opt_groups": the optimisers' param_groups, "rng": the scalar parts of the numpy and
python states}.

Writing is atomic: `save_checkpoint` writes a temporary file in the same folder and renames
it; `latest.json` (which snapshot is newest) is replaced the same way after the snapshot is
complete. A crash, `kill -9` or a full disk while writing leaves every earlier snapshot and
the previous `latest.json` untouched.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from next3d.checkpoint import CheckpointError, load_checkpoint, load_weights, save_checkpoint

SNAPSHOT_RE = re.compile(r"^snapshot-(\d{8,})\.n3d$")
LATEST = "latest.json"


class SnapshotError(ValueError):
    """A snapshot or run folder cannot be resumed from."""


def snapshot_name(cur_nimg: int) -> str:
    return f"snapshot-{cur_nimg:08d}.n3d"


# --------------------------------------------------------------------------- optimiser state


def optimizer_tensors(opt: torch.optim.Optimizer) -> Tuple[Dict[str, torch.Tensor], List[dict]]:
    """Adam (or any per-parameter tensor state) -> flat {"<i>.<name>": tensor}, JSON param_groups."""
    sd = opt.state_dict()
    tensors: Dict[str, torch.Tensor] = {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            tensors[f"{idx}.{name}"] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: Dict[str, torch.Tensor], groups: List[dict],
                           what: str) -> None:
    """Inverse of `optimizer_tensors` into an optimiser built over the same parameters."""
    own = opt.state_dict()["param_groups"]
    if len(own) != len(groups) or any(len(a["params"]) != len(b["params"]) for a, b in zip(own, groups)):
        raise SnapshotError(f"{what}: optimiser state is for another set of parameters")
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = value.clone()
    restored = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in groups]
    opt.load_state_dict({"state": state, "param_groups": restored})


# --------------------------------------------------------------------------- RNG state


def rng_state() -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Tensors and JSON scalars of the torch (CPU, CUDA), numpy and python generators."""
    tensors = {"torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available():
        for k, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{k}"] = s.clone()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    version, words, gauss_next = random.getstate()
    tensors["python"] = torch.tensor(words, dtype=torch.int64)
    scalars = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, scalars


def set_rng_state(tensors: Dict[str, torch.Tensor], scalars: Dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"].to(torch.uint8))
    if torch.cuda.is_available():
        states = [tensors[f"cuda{k}"] for k in range(torch.cuda.device_count()) if f"cuda{k}" in tensors]
        if states:
            torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, cached = scalars["numpy"]
    np.random.set_state((kind, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss_next = scalars["python"]
    random.setstate((version, tuple(int(x) for x in tensors["python"].tolist()), gauss_next))


# --------------------------------------------------------------------------- save / load


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_snapshot(run_dir: Path, *, run_config, G, G_ema, D, opt_G, opt_D, state: Dict[str, Any],
                  codes=None, opt_codes=None) -> Path:
    """Write `run_dir/snapshot-<cur_nimg>.n3d` atomically, then point latest.json at it.

    codes, opt_codes: the warm start's per-item latent codes and their Adam (groups "codes",
    "opt_codes"), when the run has them."""
    run_dir = Path(run_dir)
    og, og_groups = optimizer_tensors(opt_G)
    od, od_groups = optimizer_tensors(opt_D)
    rng_t, rng_s = rng_state()
    name = snapshot_name(int(state["cur_nimg"]))
    opt_groups = {"G": og_groups, "D": od_groups}
    groups = {"opt_G": og, "opt_D": od, "rng": rng_t}
    if codes is not None:
        oc, oc_groups = optimizer_tensors(opt_codes)
        groups.update(codes={k: v.detach() for k, v in codes.state_dict().items()}, opt_codes=oc)
        opt_groups["codes"] = oc_groups
    extra = {"run_config": run_config.to_dict(), "state": state, "opt_groups": opt_groups, "rng": rng_s}
    path = save_checkpoint(run_dir / name, config=run_config.generator, G=G, G_ema=G_ema, D=D,
                           d_config=run_config.discriminator, extra=extra, kind="training", groups=groups)
    _fsync(path)
    _atomic_write_text(run_dir / LATEST, json.dumps({"snapshot": name, "cur_nimg": int(state["cur_nimg"])}) + "\n")
    return path


def list_snapshots(run_dir: Path) -> List[Path]:
    """Snapshots of a run folder, oldest first (temporary files are never listed)."""
    run_dir = Path(run_dir)
    found = [p for p in run_dir.iterdir() if SNAPSHOT_RE.match(p.name)] if run_dir.is_dir() else []
    return sorted(found, key=lambda p: int(SNAPSHOT_RE.match(p.name).group(1)))


def latest_snapshot(run_dir: Path) -> Path:
    """The newest snapshot: the one latest.json names, else the newest file; SnapshotError if none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SnapshotError(f"--resume {run_dir}: no such run folder")
    pointer = run_dir / LATEST
    if pointer.is_file():
        try:
            named = run_dir / json.loads(pointer.read_text())["snapshot"]
            if named.is_file():
                return named
        except (ValueError, KeyError, TypeError):
            pass
    snaps = list_snapshots(run_dir)
    if not snaps:
        raise SnapshotError(f"--resume {run_dir}: the run folder holds no snapshot-*.n3d")
    return snaps[-1]


def read_snapshot(path: Path):
    """load_checkpoint with a training-snapshot check; CheckpointError/SnapshotError on problems."""
    ckpt = load_checkpoint(path)
    extra = ckpt.meta.get("extra", {})
    missing = [g for g in ("G", "G_ema", "D", "opt_G", "opt_D", "rng") if g not in ckpt.state_dicts]
    if missing or "state" not in extra or "run_config" not in extra:
        raise SnapshotError(f"{path}: not a training snapshot (missing {', '.join(missing) or 'training state'})")
    return ckpt


def restore_snapshot(ckpt, *, G, G_ema, D, opt_G, opt_D, codes=None, opt_codes=None) -> Dict[str, Any]:
    """Load every network, optimiser and RNG state of a snapshot; returns the saved counters.

    codes, opt_codes: the warm start's latent codes, loaded when the snapshot has them (a run
    that adds a warm start on resume keeps its fresh codes)."""
    where = f"snapshot {ckpt.path}"
    load_weights(G, ckpt.state_dicts["G"], f"{where} [G]")
    load_weights(G_ema, ckpt.state_dicts["G_ema"], f"{where} [G_ema]")
    load_weights(D, ckpt.state_dicts["D"], f"{where} [D]")
    extra = ckpt.meta["extra"]
    load_optimizer_tensors(opt_G, ckpt.state_dicts["opt_G"], extra["opt_groups"]["G"], f"{where} [opt_G]")
    load_optimizer_tensors(opt_D, ckpt.state_dicts["opt_D"], extra["opt_groups"]["D"], f"{where} [opt_D]")
    if codes is not None and "codes" in ckpt.state_dicts:
        sd = ckpt.state_dicts["codes"]
        if tuple(sd["weight"].shape) != tuple(codes.weight.shape):
            raise SnapshotError(f"{where}: it holds {sd['weight'].shape[0]} latent codes of the warm start, "
                                f"the data set has {codes.weight.shape[0]} items (resume with the same data set)")
        load_weights(codes, sd, f"{where} [codes]")
        load_optimizer_tensors(opt_codes, ckpt.state_dicts["opt_codes"], extra["opt_groups"]["codes"],
                               f"{where} [opt_codes]")
    set_rng_state(ckpt.state_dicts["rng"], extra["rng"])
    return dict(extra["state"])


__all__ = ["SnapshotError", "CheckpointError", "save_snapshot", "read_snapshot", "restore_snapshot",
           "latest_snapshot", "list_snapshots", "snapshot_name", "optimizer_tensors", "load_optimizer_tensors",
           "rng_state", "set_rng_state"]
