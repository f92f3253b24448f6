"""Benchmarks that print JSON: `next3d bench TOPIC` or `python -m next3d.bench TOPIC`.

Each topic is a module `next3d.bench.<topic>` with a function
`run(devices: list[str], quick: bool) -> dict`. Speed is always reported beside the
pure-PyTorch reference measured in the same run, as a ratio.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from typing import Callable, Dict, List

import click
import torch

_ALL_TOPICS = ("ops", "flame", "raster", "generator")
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


def run_topics(topics, devices, quick) -> Dict[str, dict]:
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "devices": devices}
    for topic in topics:
        module = importlib.import_module(f"next3d.bench.{topic}")
        out[topic] = module.run(devices=devices, quick=quick)
    return out


@click.command()
@click.argument("topics", nargs=-1, type=click.Choice(TOPICS + ("all",)))
@click.option("--device", "device_opt", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Devices to measure: auto = CPU and CUDA when present.")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer repeats (a smoke run).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON to this file.")
def bench(topics, device_opt, quick, out):
    """Measure speed and print JSON. TOPICS: ops, flame, raster, generator, or all (default)."""
    if not topics or "all" in topics:
        topics = TOPICS
    if device_opt == "auto":
        devices = default_devices()
    elif device_opt == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was asked for, but torch sees no CUDA device")
    else:
        devices = [device_opt]
    result = run_topics(topics, devices, quick)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")


def main(argv=None):
    bench.main(args=argv, prog_name="python -m next3d.bench")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
