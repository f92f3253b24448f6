"""`next3d bench TOPIC`: measure speed and print JSON."""

from __future__ import annotations

import json

import click
import torch

from next3d.bench import TOPICS, compare_topics, default_devices, run_topics


@click.command()
@click.argument("topics", nargs=-1, type=click.Choice(TOPICS + ("all",)))
@click.option("--device", "device_opt", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Devices to measure: auto = CPU and CUDA when present.")
@click.option("--quick", is_flag=True, help="Smaller sizes and fewer repeats (a smoke run).")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON to this file.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option("--preset", type=click.Choice(["tiny", "demo", "small", "ffhq512"]), default=None,
              help="Preset of the train, generator and video topics (defaults: train tiny; generator tiny and "
                   "ffhq512, with --compare ffhq512; video demo).")
@click.option("--compare", type=click.Choice(["published-loop"]), default=None,
              help="Also time a re-creation of the published computation order in the same run, interleaved, "
                   "and report both times and the ratio (topics generator, video, train).")
def bench(topics, device_opt, quick, out, force, preset, compare):
    """Measure speed and print JSON. TOPICS: ops, flame, raster, generator, video, train, or all (default)."""
    from next3d.atomic_io import atomic_write_text
    from next3d.cli.options import check_outputs

    if out:
        check_outputs({"--out": out}, force=force)  # before the benchmark, not after it
    if not topics or "all" in topics:
        topics = TOPICS if compare is None else compare_topics()
    if compare is not None:
        unsupported = [t for t in topics if t not in compare_topics()]
        if unsupported:
            raise click.ClickException(f"--compare is not available for {', '.join(unsupported)} "
                                       f"(topics with it: {', '.join(compare_topics())})")
    if device_opt == "auto":
        devices = default_devices()
    elif device_opt == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was asked for, but torch sees no CUDA device")
    else:
        devices = [device_opt]
    result = run_topics(topics, devices, quick, preset=preset, compare=compare)
    text = json.dumps(result, indent=2)
    click.echo(text)
    if out:
        atomic_write_text(out, text + "\n")
