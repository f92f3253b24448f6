"""Benchmarks that print JSON (`next3d bench TOPIC`, `python -m next3d.bench TOPIC`; the command is
in `next3d/cli/bench.py`).

Each topic is a module `next3d.bench.<topic>` with a function
`run(devices: list[str], quick: bool) -> dict`. Speed is always reported beside the
pure-PyTorch reference measured in the same run, as a ratio.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
from typing import Callable, Dict, List

import torch

_ALL_TOPICS = ("ops", "flame", "raster", "generator", "video", "train")
TOPICS = tuple(t for t in _ALL_TOPICS if importlib.util.find_spec(f"next3d.bench.{t}") is not None)


def time_fn(fn: Callable[[], object], device: str, repeat: int = 5, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall seconds of `fn()` over `repeat` runs after `warmup` runs (synchronising CUDA)."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(warmup):
        fn()
    sync()
    times: List[float] = []
    start_all = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start_all) < min_time:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 100:
            break
    times.sort()
    return times[len(times) // 2]


def default_devices() -> List[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def compare_topics() -> tuple:
    """Topics whose run() takes `compare` (`--compare published-loop`)."""
    import inspect

    out = []
    for topic in TOPICS:
        module = importlib.import_module(f"next3d.bench.{topic}")
        if "compare" in inspect.signature(module.run).parameters:
            out.append(topic)
    return tuple(out)


def run_topics(topics, devices, quick, preset=None, compare=None) -> Dict[str, dict]:
    """Run each topic; `preset` goes to the topics whose run() takes one (train: `preset`;
    generator, video: `presets`), `compare` to those that take it (the others are an error)."""
    import inspect

    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "devices": devices}
    for topic in topics:
        module = importlib.import_module(f"next3d.bench.{topic}")
        params = inspect.signature(module.run).parameters
        kwargs = {}
        if preset is not None and "preset" in params:
            kwargs["preset"] = preset
        elif preset is not None and "presets" in params:
            kwargs["presets"] = [preset]
        if compare is not None:
            if "compare" not in params:
                raise ValueError(f"bench {topic}: --compare is not available (topics with it: "
                                 f"{', '.join(compare_topics())})")
            kwargs["compare"] = compare
        out[topic] = module.run(devices=devices, quick=quick, **kwargs)
    return out
