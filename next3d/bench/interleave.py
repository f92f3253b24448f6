"""Side-by-side timing of two ways of doing the same work, interleaved in one process.

`--compare published-loop` (`next3d bench generator|video|train`) times the project's path
and a re-creation of the published computation order one after the other, repeat by
repeat (A B A B ...), so a background load that comes and goes hits both alike. The
result holds every repeat's seconds, the medians, and `ratio` = published / project
(> 1: the project is faster), with the per-repeat ratios beside it.
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List

import torch

COMPARE_MODES = ("published-loop",)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(fns: Dict[str, Callable[[], object]], device: str, repeat: int, warmup: int = 1) -> Dict[str, List[float]]:
    """Seconds of each `fns[name]()` per repeat, the functions run in turn within each repeat
    (after `warmup` untimed rounds)."""
    if repeat < 1:
        raise ValueError(f"repeat: expected at least 1, got {repeat}")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
            _sync(device)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def _median(values: List[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def summarize(times: Dict[str, List[float]], project: str = "project", published: str = "published",
              per: int = 1) -> dict:
    """{project_s, published_s (medians per call), ratio = published/project, ratio_per_repeat,
    and per-item seconds when a call does `per` items (frames, images)}."""
    p, q = times[project], times[published]
    out = {
        "project_s": round(_median(p), 4),
        "published_s": round(_median(q), 4),
        "ratio": round(_median(q) / _median(p), 3),
        "ratio_per_repeat": [round(b / a, 3) for a, b in zip(p, q)],
        "repeats": len(p),
        "project_all_s": [round(t, 4) for t in p],
        "published_all_s": [round(t, 4) for t in q],
    }
    if per > 1:
        out["items_per_call"] = per
        out["project_s_per_item"] = round(_median(p) / per, 4)
        out["published_s_per_item"] = round(_median(q) / per, 4)
    return out


def load_note() -> dict:
    """The machine's load when the measurement starts (1-minute load average, cores, torch threads)."""
    import os

    try:
        load1 = os.getloadavg()[0]
    except OSError:  # not on every platform
        load1 = None
    return {"loadavg_1min": None if load1 is None else round(load1, 2), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
