"""What rank 0 writes while training: log.jsonl, tensorboard events, the progress bar, sample
grids and metrics at every snapshot (metrics.jsonl).

log.jsonl: one JSON object per log interval: kimg, step, sec (since start of this process),
kimg_per_sec, the phase losses (G/loss, G/density_reg, D/loss, D/r1_penalty, scores) and the
schedule values. metrics.jsonl: {"kimg", "snapshot", "random_fd", <requested metrics>}.
Tensorboard (optional: needs the `tensorboard` package) gets the same scalars.
"""

from __future__ import annotations

import importlib
import json
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Sequence

import torch

from . import grids
from .random_fd import random_fd


def _tensorboard_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(path))


class Reporter:
    """Rank-0 output of one run (see the module docstring)."""

    def __init__(self, run_dir: Path, run_config, metrics: Sequence[str] = (), device="cpu",
                 progress: bool = True, tensorboard: bool = True, metric_fn=None):
        self.run_dir = Path(run_dir)
        self.cfg = run_config.training
        self.metrics = list(metrics)
        self.device = device
        self.progress = progress
        self.tb = _tensorboard_writer(self.run_dir) if tensorboard else None
        self.metric_fn = metric_fn if metric_fn is not None else _find_metric_fn(self.metrics)
        self.bar = None
        self.t0 = time.time()
        self.nimg0 = 0
        self.real_stats = None

    # ------------------------------------------------------------------ hooks called by the loop

    def start(self, built, dataset, labels, state) -> None:
        self.dataset, self.labels = dataset, labels
        n = self.cfg.grid_size
        self.inputs = grids.grid_inputs(labels, n * n, built.G.z_dim, seed=self.cfg.seed)
        self.sweep = grids.expression_sweep_inputs(labels, built.G.z_dim, seed=self.cfg.seed)
        self.t0, self.nimg0 = time.time(), state.cur_nimg
        if not (self.run_dir / "reals.png").exists():
            grids.write_reals(dataset, self.inputs, self.run_dir, n)
        if state.cur_nimg == 0:
            grids.write_grids(built.G_ema, self.inputs, self.sweep, self.run_dir, "init", n, self.device)
            self._metrics(built, state, "init")
        if self.progress:
            from tqdm import tqdm

            total = int(self.cfg.kimg * 1000)
            self.bar = tqdm(total=total, initial=state.cur_nimg, unit="img", unit_scale=True, dynamic_ncols=True,
                            desc="train")

    def step(self, logs: Dict[str, Any], state) -> None:
        if self.bar is not None:
            self.bar.update(self.cfg.batch)
            main = {k.split("/")[0] + k.split("/")[1][:1]: f"{logs[k]:.3f}" for k in ("G/loss", "D/loss") if k in logs}
            self.bar.set_postfix(kimg=f"{state.cur_nimg / 1000:.2f}", kimg_s=f"{self._rate(state):.3f}", **main,
                                 refresh=False)

    def log(self, logs: Dict[str, Any], state) -> None:
        row = {"kimg": state.cur_nimg / 1000, "step": state.step, "sec": round(time.time() - self.t0, 2),
               "kimg_per_sec": self._rate(state), "skipped_total": state.skipped}
        row.update({k: v for k, v in logs.items() if k not in row})
        self._append("log.jsonl", row)
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("kimg", "step"):
                    self.tb.add_scalar(k, v, global_step=state.cur_nimg)
            self.tb.flush()

    def snapshot(self, built, state, path: Path) -> None:
        tag = f"{state.cur_nimg:08d}"
        grids.write_grids(built.G_ema, self.inputs, self.sweep, self.run_dir, tag, self.cfg.grid_size, self.device)
        self._metrics(built, state, path.name)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()

    # ------------------------------------------------------------------ helpers

    def _rate(self, state) -> float:
        return (state.cur_nimg - self.nimg0) / 1000 / max(time.time() - self.t0, 1e-6)

    def _append(self, name: str, row: Dict[str, Any]) -> None:
        with open(self.run_dir / name, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    def _metrics(self, built, state, snapshot: str) -> None:
        row: Dict[str, Any] = {"kimg": state.cur_nimg / 1000, "snapshot": snapshot}
        if self.cfg.metric_images > 0:
            row["random_fd"], self.real_stats = self._random_fd(built.G_ema)
        if self.metrics and self.metric_fn is not None:
            for name in self.metrics:
                try:
                    result = self.metric_fn(name, built.G_ema, self.dataset)
                    # compute_metric returns {"metric", "results": {key: value}, settings...}:
                    # log each result under its own key so several metrics never overwrite each other.
                    values = result.get("results", result) if isinstance(result, dict) else {name: result}
                    row.update({(k if k.startswith(name) else f"{name}/{k}"): v for k, v in values.items()})
                except Exception as exc:  # a metric failing must not end the run; it is logged
                    row[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
        if len(row) > 2:
            self._append("metrics.jsonl", row)
            if self.tb is not None:
                for k, v in row.items():
                    if isinstance(v, (int, float)):
                        self.tb.add_scalar(f"metrics/{k}", v, global_step=state.cur_nimg)
                self.tb.flush()

    def _random_fd(self, G):
        n = min(self.cfg.metric_images, len(self.dataset))
        g = torch.Generator().manual_seed(self.cfg.seed + 12345)
        real_idx = torch.randperm(len(self.dataset), generator=g)[:n]
        fake = grids.grid_inputs(self.labels, self.cfg.metric_images, G.z_dim, seed=self.cfg.seed + 777)

        def reals():
            for i in range(0, n, 32):
                yield torch.stack([torch.as_tensor(self.dataset[int(j)]["image"]).float() / 127.5 - 1
                                   for j in real_idx[i:i + 32]])

        def fakes():
            out = grids.generate(G, fake["z"], fake["c"], fake["flame"], device=self.device)
            yield out["image"]

        return random_fd(reals, fakes, seed=0, real_stats=self.real_stats)


def _find_metric_fn(metrics: Sequence[str]):
    """`training.metrics.compute_metric` (or `training.metrics.registry.compute_metric`) when that
    package is importable, else None (with a warning)."""
    if not metrics:
        return None
    try:
        module = importlib.import_module("training.metrics")
        if not hasattr(module, "compute_metric"):
            module = importlib.import_module("training.metrics.registry")
        return getattr(module, "compute_metric")
    except (ImportError, AttributeError) as exc:
        warnings.warn(f"--metrics {','.join(metrics)}: training.metrics is not available ({exc}); "
                      f"only the built-in random-feature Fréchet distance is logged")
        return None
