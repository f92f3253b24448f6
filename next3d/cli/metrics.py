"""`next3d metrics`: evaluate a generator against a data set; JSON out.

Thin: parse options, load the generator and the data set, call
`training.metrics.registry.compute_metrics`, print one line per metric and the JSON.
Definitions of every metric are in the `training/metrics/` module docstrings.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import click

from next3d.cli.options import load_network, network_option, resolve_device


def _write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _format(results) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items())


@click.command("metrics")
@network_option()
@click.option("--data", "data_path", required=True, type=click.Path(exists=True),
              help="The data set (folder or zip, docs/dataset_format.md): real images for FID/KID, and the "
                   "cameras and FLAME parameters that condition the generated samples.")
@click.option("--metrics", "metric_spec", default="fid10k_vgg,kid10k_vgg", show_default=True, metavar="LIST",
              help="Comma-separated: fid<N>k_vgg, kid<N>k_vgg, fid<N>k_inception, kid<N>k_inception, id, aed, apd, "
                   "lmk, consistency, face_rate, jaw_mouth, depth (needs the set's gt/*.npz), speed.")
@click.option("--num", "num_gen", type=click.IntRange(min=1), default=None,
              help="Generated samples per metric (overrides the N of fid<N>k; identities for id)  "
                   "[default: N k for fid/kid, 100 for id and face_rate, 20 for jaw_mouth, 50 for depth, 16 for "
                   "speed, 500 otherwise]")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="train", show_default=True,
              help="Which items of the data set to use.")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True, help="Generator batch size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z, the conditioning items and noise.")
@click.option("--device", "device_choice", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run: auto = CUDA when present, else CPU.")
@click.option("--inception-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="FID Inception-v3 state_dict file (pt_inception layout) for the *_inception metrics  "
                   "[default: $NEXT3D_INCEPTION_WEIGHTS]")
@click.option("--trunc", "truncation_psi", type=float, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--no-cache", is_flag=True, help="Recompute the data-set feature statistics (and do not store them).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON here (written to a temporary name, then renamed).")
def metrics(network, data_path, metric_spec, num_gen, split, batch, seed, device_choice, inception_weights,
            truncation_psi, no_cache, out_path):
    """Compute metrics of a generator against a data set and print them as JSON.

    Generated samples take the camera and FLAME parameters of random data-set items, as in
    training. FID/KID numbers name their feature network (vgg = the ST-LPIPS VGG shipped
    offline; inception = the standard FID network, from a weights file you give).
    """
    import next3d
    from training.dataset import DatasetError, ImageDataset
    from training.metrics.feature_nets import MetricError
    from training.metrics.registry import check_names, compute_metrics

    started = time.perf_counter()
    try:
        names = check_names(metric_spec.split(","))
    except MetricError as exc:
        raise click.ClickException(str(exc)) from None
    if any(n.endswith("_inception") for n in names) and not (inception_weights or
                                                            os.environ.get("NEXT3D_INCEPTION_WEIGHTS")):
        raise click.ClickException("the *_inception metrics need --inception-weights FILE (or "
                                   "$NEXT3D_INCEPTION_WEIGHTS); nothing is downloaded: use the *_vgg metrics "
                                   "offline")
    device = resolve_device(device_choice)
    G = load_network(network, device)
    try:
        dataset = ImageDataset(data_path, split=None if split == "all" else split, load_ground_truth="depth" in names)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        results = compute_metrics(names, G, dataset, num_gen=num_gen, device=device, batch=batch, seed=seed,
                                  progress=True, inception_weights=inception_weights, cache=not no_cache,
                                  truncation_psi=truncation_psi)
    except (MetricError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, entry in results.items():
        click.echo(f"{name}: {_format(entry['results'])}  ({entry['seconds']:.1f} s)", err=True)
    report = {"network": str(network), "data": str(data_path), "split": split, "num_items": len(dataset),
              "seed": seed, "batch": batch, "device": device, "truncation_psi": truncation_psi,
              "num_gen": num_gen, "next3d_version": next3d.__version__,
              "seconds": time.perf_counter() - started, "metrics": results}
    text = json.dumps(report, indent=2, allow_nan=True)
    if out_path:
        try:
            _write_json_atomic(Path(out_path), report)
        except OSError as exc:
            raise click.ClickException(f"--out {out_path}: cannot write ({exc.strerror or exc})") from None
    click.echo(text)
