"""`next3d invert`: one photo (or a data-set item) -> an animatable avatar folder.

Thin: parse options, load the network, build the target (`next3d.inversion.target`), run
`next3d.inversion.pipeline.invert`, write the outputs (`next3d.inversion.writer`), report.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import click

from next3d.cli.options import check_outputs, force_option, network_option, prepare_out_dir, resolve_device


@click.command("invert")
@click.argument("photo", required=False, type=click.Path(dir_okay=False))
@network_option()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder: avatar.n3d, reconstruction.png, view_yaw*.png, expression_*.png, metrics.json.")
@click.option("--target-item", default=None, metavar="DATASET:INDEX",
              help="Invert item INDEX (position in dataset.json) of a next3d data set instead of a photo: "
                   "no detection, the stored crop, its true landmarks. For a `next3d dataset synth` set every "
                   "stage is also scored against true renders of that person at yaw +-30 (metrics.json: truth).")
@click.option("--true-camera", is_flag=True, help="With --target-item: use the item's true camera (not the fit).")
@click.option("--true-flame", is_flag=True, help="With --target-item: use the item's true FLAME (not the fit).")
@click.option("--steps-w", type=click.IntRange(min=1), default=None, help="Latent inversion steps  [default: 100]")
@click.option("--steps-refine", type=click.IntRange(min=1), default=None, help="Refinement steps  [default: 30]")
@click.option("--steps-pti", type=click.IntRange(min=1), default=None, help="Pivotal tuning steps  [default: 40]")
@click.option("--w-plus", is_flag=True, help="Free texture ws (W+) instead of one w.")
@click.option("--no-refine", is_flag=True, help="Skip the refinement of expression, jaw, eyes and camera.")
@click.option("--no-pti", is_flag=True, help="Skip pivotal tuning (the avatar keeps the network's weights).")
@click.option("--face", type=click.IntRange(min=0), default=None,
              help="Which face when the photo has several: 0 = the largest (default), 1 = the next, ...")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder (default: the network's head model).")
@click.option("--neural-res", "neural_resolution", type=click.IntRange(min=4), default=None,
              help="Volume-rendering resolution while optimising  [default: the network's]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seeds the optimisation.")
@click.option("--no-identity", is_flag=True, help="Skip the dlib ID similarity in metrics.json.")
@click.option("--device", "device_choice", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run: auto = CUDA when present, else CPU.")
@force_option("an earlier result in --out")
def invert(photo, network, out_dir, target_item, true_camera, true_flame, steps_w, steps_refine, steps_pti, w_plus,
           no_refine, no_pti, face, flame_dir, neural_resolution, seed, no_identity, device_choice, force):
    """Invert PHOTO into an avatar for --network: fit, latent, refinement, pivotal tuning.

    The avatar drives `next3d reenact --avatar OUT/avatar.n3d` and `next3d video --avatar ...`.
    """
    from next3d.generate import load_generator
    from next3d.inversion import InversionConfig, invert as run_invert
    from next3d.inversion.losses import default_lpips
    from next3d.inversion.target import (InversionInputError, parse_item_spec, target_from_dataset,
                                         target_from_photo)
    from next3d.inversion.writer import output_names, write_outputs

    started = time.perf_counter()
    if (photo is None) == (target_item is None):
        raise click.ClickException("give exactly one of PHOTO or --target-item DATASET:INDEX")
    if (true_camera or true_flame) and target_item is None:
        raise click.ClickException("--true-camera / --true-flame need --target-item (a photo has no truth)")
    if photo is not None and not Path(photo).is_file():
        raise click.ClickException(f"PHOTO {photo}: no such file")
    out = prepare_out_dir(out_dir)
    check_outputs({name: out / fname for name, fname in output_names().items()}, force=force,
                  inputs=[photo] if photo else [])
    config = InversionConfig(refine=not no_refine, pti=not no_pti, neural_resolution=neural_resolution)
    config = dataclasses.replace(
        config,
        latent=dataclasses.replace(config.latent, space="w+" if w_plus else "w", seed=seed,
                                   **({"steps": steps_w} if steps_w else {})),
        refine_config=dataclasses.replace(config.refine_config, **({"steps": steps_refine} if steps_refine else {})),
        pivotal=dataclasses.replace(config.pivotal, seed=seed, **({"steps": steps_pti} if steps_pti else {})))
    device = resolve_device(device_choice)
    try:
        G = load_generator(network, device=device, flame_dir=flame_dir)
        if target_item is not None:
            path, index = parse_item_spec(target_item)
            target = target_from_dataset(path, index, G, true_camera=true_camera, true_flame=true_flame)
        else:
            target = target_from_photo(photo, G, face=face)
    except ValueError as exc:  # InversionInputError, GenerateError, CheckpointError, FlameFilesError, ...
        raise click.ClickException(str(exc)) from None
    for line in target.warnings:
        click.echo(f"warning: {line}", err=True)
    yaw, pitch, roll = target.source.get("yaw_pitch_roll_deg", [0.0, 0.0, 0.0])
    click.echo(f"{target.name}: fitted in {target.fit_seconds:.1f} s, yaw {yaw:+.1f} pitch {pitch:+.1f} "
               f"roll {roll:+.1f} deg")
    lpips = default_lpips(device)
    if lpips is None:
        click.echo("warning: stlpips-pytorch is not installed: optimising the pixel L2 alone "
                   "(pip install --no-deps stlpips-pytorch)", err=True)
    truth, no_truth = None, None
    if target_item is not None:  # a synthetic item: score every stage against the true renders
        truth, no_truth = _synthetic_truth(path, index, G, target, lpips, identity=not no_identity)
    try:
        result = run_invert(G, target, config, lpips=lpips, progress=True,
                            on_stage=truth.score if truth is not None else None)
        extra = {"truth": truth.report()} if truth is not None else None
        if no_truth is not None:
            extra = {"truth": {"available": False, "reason": no_truth}}
        paths = write_outputs(out, result, lpips=lpips, network=network, identity=not no_identity, extra=extra)
    except InversionInputError as exc:
        raise click.ClickException(str(exc)) from None
    if truth is not None:
        last = list(truth.stages)[-1]
        scores = truth.stages[last]
        views = ", ".join(f"{v} {scores[f'psnr_{v}']:.2f}" for v in truth.views)
        click.echo(f"against the truth after {last}: PSNR input {scores['psnr_input']:.2f} dB, {views}; "
                   f"expression error {scores['expression_error_mm']:.2f} mm, camera "
                   f"{scores['camera_error_deg']:.2f} deg (metrics.json: truth)")
    stages = ", ".join(f"{k} {s.seconds:.1f} s" for k, s in result.stages.items())
    click.echo(f"wrote {paths['avatar']} and {len(paths) - 1} more file(s) in {out} on {device} in "
               f"{time.perf_counter() - started:.1f} s ({stages})")


def _synthetic_truth(path, index, G, target, lpips, identity: bool):
    """(SyntheticTruth, None), or (None, why there is no truth to score against)."""
    from next3d.inversion.evaluate import SyntheticTruth
    from next3d.inversion.target import InversionInputError

    face_models = None
    if identity:
        try:
            from training.metrics.face_models import FaceModels

            face_models = FaceModels()
        except (ImportError, ValueError, OSError):  # MetricError is a ValueError: no dlib here
            face_models = None
    try:
        return SyntheticTruth(path, index, G, target.image, lpips=lpips, face_models=face_models), None
    except InversionInputError as exc:
        click.echo(f"note: no scores against the truth: {exc}", err=True)
        return None, str(exc)


__all__ = ["invert"]
