"""`next3d train`: train a generator on a labelled data set (the library is `training/`).

One process: `next3d train --data DATA --preset tiny --out runs/`. Many GPUs on one machine:
`torchrun --nproc-per-node=8 -m next3d train ...` (the global --batch is split over the
processes). Multi-node: the same command under torchrun's rendezvous flags.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from next3d.presets import PRESET_NAMES


@click.command()
@click.option("--data", required=True, type=click.Path(), help="Data set folder or zip (docs/dataset_format.md).")
@click.option("--preset", required=True, type=click.Choice(PRESET_NAMES), help="Network sizes and training recipe.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder that holds the numbered runs.")
@click.option("--kimg", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Length of the run in thousands of images (default: the preset's).")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Global batch (default: the preset's).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training key (glr=0.002), G.<key> or D.<key> of the networks. Repeatable.")
@click.option("--resume", default=None, metavar="RUN_DIR|latest",
              help="Continue a run folder (its newest snapshot) or the newest run in --out.")
@click.option("--init-from", "init_from", default=None, metavar="builtin|PATH",
              help="Start G from this network's weights (the shipped model, or a checkpoint of the same preset) "
                   "instead of a random initialisation; D and the optimisers start fresh. Usually with "
                   "--set warmup_kimg=0. Not with --resume.")
@click.option("--snap-kimg", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Snapshot, grids and metrics every K kimg.")
@click.option("--metrics", default="", metavar="NAME,...",
              help="Metrics of training.metrics.compute_metric at each snapshot (beside the built-in random-feature FD).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Data-loading processes.")
@click.option("--xflip", is_flag=True, help="Add mirrored copies of the items (camera and FLAME mirrored too).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
def train(data, preset, out, kimg, batch, overrides, resume, init_from, snap_kimg, metrics, device, workers, xflip,
          no_progress, dry_run):
    """Train Next3D (dual, mesh-conditioned discriminator) on DATA; runs go to OUT/NNNNN-PRESET-DATA/."""
    from next3d.cli.options import prepare_out_dir, resolve_device
    from next3d.config import ConfigError
    from training.config import resolve_run_config

    try:
        run_config = resolve_run_config(preset, overrides, batch=batch, kimg=kimg, snap_kimg=snap_kimg)
    except ConfigError as exc:
        raise click.ClickException(f"--set: {exc}") from None

    if init_from is not None and resume is not None:
        raise click.ClickException("--init-from and --resume exclude each other (a resumed run has its own weights)")
    resume_from = _resume_point(out, resume, run_config)
    if dry_run:
        click.echo(json.dumps(run_config.to_dict(), indent=2))
        if resume_from is not None:
            click.echo(f"would resume from {resume_from[0]}")
        return

    dataset = _open_dataset(data, run_config, xflip)
    init_G = _init_generator(init_from, run_config)
    out_path = prepare_out_dir(out)
    device = resolve_device(device)

    import torch

    from training.distributed import DistEnv
    from training.loop import TrainingStopped, train as run_training
    from training.reporting import Reporter
    from training.run_dir import next_run_dir, write_run_config
    from training.setup import TrainingSetupError

    env = DistEnv.from_environment(None if device == "auto" else (f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
                                                                  if device == "cuda" else "cpu"))
    if resume_from is not None:
        run_dir = resume_from[0].parent
    else:
        run_dir = next_run_dir(out_path, preset, Path(data).stem)
    if env.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_run_config(run_dir, run_config, {"data": str(data), "xflip": xflip, "argv": sys.argv[1:],
                                                   "world_size": env.world_size, "init_from": init_from})
        except OSError as exc:
            raise click.ClickException(f"--out {out}: cannot write the run folder {run_dir} ({exc})") from None
        click.echo(f"run folder: {run_dir}" + (f" (resuming {resume_from[0].name})" if resume_from else ""))
    reporter = None
    if env.is_main:
        reporter = Reporter(run_dir, run_config, metrics=[m for m in metrics.split(",") if m], device=env.device,
                            progress=not no_progress)
    try:
        state = run_training(run_config, dataset, run_dir, env=env, resume=resume_from[1] if resume_from else None,
                             reporter=reporter, num_workers=workers, init_G=init_G)
    except (TrainingSetupError, TrainingStopped) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if env.is_main:
        click.echo(f"done: {state.cur_nimg / 1000:.3f} kimg, last snapshot {run_dir / state.last_snapshot}")


def _resume_point(out, resume, run_config):
    if resume is None:
        return None
    from next3d.checkpoint import CheckpointError
    from training.run_dir import latest_run_dir, resume_point
    from training.snapshot import SnapshotError

    try:
        run_dir = latest_run_dir(Path(out)) if resume == "latest" else Path(resume)
        return resume_point(run_dir, run_config)
    except (SnapshotError, CheckpointError) as exc:
        raise click.ClickException(str(exc)) from None


def _init_generator(init_from, run_config):
    """The network --init-from names, checked against the run's generator configuration."""
    if init_from is None:
        return None
    from next3d.cli.options import load_network
    from training.setup import TrainingSetupError, check_init_generator

    G = load_network(init_from, "cpu", flame_dir=run_config.generator.flame_dir)
    try:
        check_init_generator(G, run_config)
    except TrainingSetupError as exc:
        raise click.ClickException(str(exc)) from None
    from next3d.flame import load_flame_model
    from next3d.flame.head_record import head_version

    run_head = head_version(load_flame_model(run_config.generator.flame_dir))
    if G.head_record.version != run_head:
        click.echo(f"--init-from {init_from}: weights trained on head {G.head_record.version}; "
                   f"this run continues on head {run_head}")
    return G


def _open_dataset(data, run_config, xflip):
    """Open the data set and check it against the configuration (before any work)."""
    from next3d.flame import FLAME, FlameFilesError, load_flame_model
    from training.dataset import DatasetError, ImageDataset
    from training.setup import TrainingSetupError, check_dataset

    try:
        flame = FLAME(load_flame_model(run_config.generator.flame_dir))
    except FlameFilesError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        dataset = ImageDataset(data, xflip=xflip, flame_dir=run_config.generator.flame_dir)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"--data {data}: cannot read ({exc})") from None
    try:
        check_dataset(dataset, run_config, flame, name=f"--data {data}")
    except TrainingSetupError as exc:
        raise click.ClickException(str(exc)) from None
    return dataset
