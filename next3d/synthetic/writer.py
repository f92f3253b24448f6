"""Write a synthetic-heads set through `training.dataset.DatasetWriter` (format: docs/dataset_format.md).

`write_synthetic_set(out, count, resolution, seed, ...)` renders items 0..count-1 (each from
`item_rng(seed, index)` alone) in `workers` processes, in order, and writes images, labels and
ground truth. The split of each item is drawn from its own generator too, so the bytes written
do not depend on `workers`. Rendering runs with one torch thread per process.
"""

from __future__ import annotations

import multiprocessing
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

import numpy as np
import torch

from next3d.synthetic.distributions import SynthDistributions
from next3d.synthetic.head import load_head_assets
from next3d.synthetic.render import SynthError, SyntheticItem, check_resolution, render_item

MAX_WORKERS = 64


def parse_split(text: str) -> Dict[str, float]:
    """"train=0.9,test=0.1" -> {"train": 0.9, "test": 0.1}; fractions of train/test summing to 1."""
    out: Dict[str, float] = {}
    for piece in str(text).split(","):
        piece = piece.strip()
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        name = name.strip()
        if not eq or name not in ("train", "test") or name in out:
            raise SynthError(f"--split {text!r}: expected train=F,test=F (each at most once), e.g. train=0.9,test=0.1")
        try:
            frac = float(value)
        except ValueError:
            raise SynthError(f"--split {text!r}: {value.strip()!r} is not a number") from None
        if not 0.0 <= frac <= 1.0:
            raise SynthError(f"--split {text!r}: fraction {frac} is outside [0, 1]")
        out[name] = frac
    if not out or abs(sum(out.values()) - 1.0) > 1e-6:
        raise SynthError(f"--split {text!r}: the fractions must add up to 1")
    return {"train": out.get("train", 0.0), "test": out.get("test", 0.0)}


def item_split(seed: int, index: int, split: Dict[str, float]) -> str:
    u = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), 1]))).random()
    return "train" if u < split["train"] else "test"


@contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Worker state (set once per worker process by the pool initializer).
_WORKER: Dict[str, object] = {}


def _init_worker(config: SynthDistributions, resolution: int, seed: int, flame_dir: Optional[str]) -> None:
    torch.set_num_threads(1)
    _WORKER.update(config=config, resolution=resolution, seed=seed, assets=load_head_assets(flame_dir))


def _render_in_worker(index: int) -> SyntheticItem:
    return render_item(_WORKER["config"], index, _WORKER["seed"], _WORKER["resolution"], assets=_WORKER["assets"])


def iter_items(count: int, resolution: int, seed: int = 0, flame_dir: Optional[str] = None, workers: int = 1,
               config: Optional[SynthDistributions] = None) -> Iterator[SyntheticItem]:
    """Items 0..count-1 in order, rendered in `workers` processes (1: in this process)."""
    config = config or SynthDistributions()
    config.validate()
    check_resolution(resolution)
    if workers <= 1:
        assets = load_head_assets(flame_dir)
        with _one_thread():
            for i in range(count):
                yield render_item(config, i, seed, resolution, assets=assets)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with _one_thread():  # no intra-op thread pool in the parent before forking
        with ctx.Pool(workers, initializer=_init_worker, initargs=(config, resolution, seed, flame_dir)) as pool:
            yield from pool.imap(_render_in_worker, range(count), chunksize=1)


@dataclass(frozen=True)
class SynthSummary:
    out: Path
    count: int
    train: int
    test: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.count / max(self.seconds, 1e-9)


def write_synthetic_set(out: Union[str, Path], count: int, resolution: int, seed: int = 0,
                        flame_dir: Optional[str] = None, workers: int = 1, split: str = "train=0.9,test=0.1",
                        config: Optional[SynthDistributions] = None, progress: bool = True) -> SynthSummary:
    """Render and write `count` items to the folder or .zip `out`; returns a summary.

    Raises SynthError for bad arguments (before anything is written); a failure midway leaves
    no half-written set under `out` (the writer works under a temporary name).
    """
    from training.dataset import DatasetWriter

    if not isinstance(count, (int, np.integer)) or count < 1:
        raise SynthError(f"count {count!r}: expected at least 1 image")
    if not isinstance(workers, (int, np.integer)) or not 1 <= workers <= MAX_WORKERS:
        raise SynthError(f"workers {workers!r}: expected 1..{MAX_WORKERS}")
    check_resolution(resolution)
    fractions = parse_split(split)
    config = config or SynthDistributions()
    config.validate()
    assets = load_head_assets(flame_dir)
    builtin = assets.head_model == "builtin"
    num_shape = assets.flame.num_shape if builtin else min(config.flame_num_shape, assets.flame.num_shape)
    num_expr = assets.flame.num_expression if builtin else min(config.flame_num_expression,
                                                              assets.flame.num_expression)
    source = {"tool": "next3d dataset synth", "seed": int(seed), "count": int(count),
              "flame_dir": None if flame_dir is None else str(flame_dir), "split": fractions,
              "distributions": asdict(config)}
    start = time.perf_counter()
    counts = {"train": 0, "test": 0}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, unit="img", desc="synth", dynamic_ncols=True)
    try:
        with DatasetWriter(out, resolution=resolution, head_model=assets.head_model, head_version=assets.head_version,
                           head_topology=assets.head_topology, num_shape=num_shape, num_expression=num_expr,
                           source=source) as writer:
            for item in iter_items(count, resolution, seed, flame_dir, workers, config):
                name = item_split(seed, item.index, fractions)
                counts[name] += 1
                writer.add(item.image, camera=item.camera, flame=item.flame, landmarks_2d=item.landmarks_2d,
                           split=name, ground_truth=item.ground_truth(), appearance=item.appearance)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return SynthSummary(out=Path(out), count=count, train=counts["train"], test=counts["test"],
                        seconds=time.perf_counter() - start)
