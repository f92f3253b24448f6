"""`next3d fit`: photos -> alignment crop, FLAME parameters and camera label, overlay.

Thin: parse options, load the detector and the head model, call `next3d.fitting`, write
per photo OUT/NAME/{crop.png, fit.json, overlay.png} and print one summary line each.
Bad photos are reported and skipped; the run carries on.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from next3d.cli.options import align_option, load_flame_from_options, prepare_out_dir


def _folder_names(paths):
    """Unique output folder names from the photo file names (stem, stem-2, ...)."""
    seen, out = {}, []
    for p in paths:
        stem = Path(p).stem or "photo"
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        out.append(stem if n == 1 else f"{stem}-{n}")
    return out


@click.command("fit")
@click.argument("photos", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder; one sub-folder per photo.")
@click.option("--resolution", type=click.IntRange(16, 4096), default=512, show_default=True,
              help="Side of the alignment crop in pixels (the published crop is 512).")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head).")
@click.option("--face", type=click.IntRange(min=0), default=None,
              help="Which face when a photo has several: 0 = the largest (default), 1 = the next, ...")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Photos fitted together in one optimisation.")
@click.option("--iters", type=click.IntRange(min=1), default=None,
              help="Adam steps of the full stage (default: the library's).")
@click.option("--photometric", is_flag=True, default=False,
              help="After the landmark stages, refine on the crop's pixels (SH lighting + PCA albedo, "
                   "rendered through the rasteriser; ~5 s CPU per photo).")
@click.option("--landmarks", type=click.Choice(["dlib", "facemesh"]), default="dlib", show_default=True,
              help="Landmarks fitted: dlib's 68, or MediaPipe's 468-point face mesh (optional packages: "
                   "pip install ai-edge-litert==2.3.0 && pip install --no-deps mediapipe==0.10.14).")
@align_option
def fit(photos, out_dir, resolution, flame_dir, face, batch, iters, photometric, landmarks, align):
    """Fit FLAME and an EG3D camera to each PHOTO (dlib or face-mesh landmarks, the published or FFHQ-levelled crop)."""
    from dataclasses import replace

    from next3d.fitting import DetectionError, FitConfig, PhotoFailure, fit_prepared, make_detector, prepare_photo
    from next3d.fitting.pipeline import summary_line, write_fit_folder
    from training.dataset_schema import head_identity

    if photometric and landmarks == "facemesh":
        raise click.UsageError("--photometric works with --landmarks dlib only")
    out = prepare_out_dir(out_dir)
    flame = load_flame_from_options(flame_dir)
    from next3d.flame import load_flame_model

    head = head_identity(load_flame_model(flame_dir))
    try:
        detector = make_detector(landmarks)
    except DetectionError as exc:
        raise click.ClickException(str(exc)) from None
    from next3d.fitting.calibrate import load_offsets

    offsets = load_offsets("dlib", head)
    correspondence = None
    if landmarks == "facemesh":
        from next3d.fitting.mesh_correspondence import load_correspondence

        correspondence = load_correspondence(flame_dir)
    config = replace(FitConfig(), landmarks=landmarks)
    config = config if iters is None else replace(config, full_iters=iters)
    photo_cfg = photo_model = None
    if photometric:
        from next3d.fitting.photometric import PhotometricConfig, load_photometric_model

        photo_cfg, photo_model = PhotometricConfig(), load_photometric_model(flame_dir)
    names = _folder_names(photos)
    failures = 0
    for start in range(0, len(photos), batch):
        chunk = list(range(start, min(start + batch, len(photos))))
        prepared, results = [], {}
        for i in chunk:
            item = prepare_photo(photos[i], detector, resolution, face=face, name=photos[i], align=align)
            if isinstance(item, PhotoFailure):
                results[i] = item
            else:
                prepared.append((i, item))
        fits = fit_prepared([p for _, p in prepared], flame, config, landmark_offsets=offsets,
                            progress=len(prepared) > 1 and sys.stderr.isatty(), photometric=photo_cfg,
                            photometric_model=photo_model, correspondence=correspondence)
        for (i, _), result in zip(prepared, fits):
            results[i] = result
        for i in chunk:
            result = results[i]
            if isinstance(result, PhotoFailure):
                failures += 1
            else:
                write_fit_folder(result, out / names[i], flame, head)
            click.echo(summary_line(result))
    if failures:
        click.echo(f"{failures} of {len(photos)} photo(s) skipped", err=True)
        sys.exit(1)
