"""`next3d dataset from-photos DIR|ZIP --out DATASET`: a training set from one's own photos.

Thin: parse options, load the head model, call `next3d.fitting.photo_dataset`, report every
skipped photo and why. The `dataset` command group imports `from_photos` from here.
"""

from __future__ import annotations

import click

from next3d.cli.options import align_option


@click.command("from-photos")
@click.argument("source", type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(),
              help="The data set to write: a folder, or a path ending in .zip.")
@click.option("--resolution", type=click.IntRange(16, 4096), default=512, show_default=True,
              help="Image side of the set (the published crop is 512).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes reading, detecting and cropping photos.")
@click.option("--batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Photos fitted together in one optimisation.")
@click.option("--face", type=click.IntRange(min=0), default=None,
              help="Which face when a photo has several: 0 = the largest (default).")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head).")
@click.option("--photometric", is_flag=True, default=False,
              help="Refine each fit on the crop's pixels (SH lighting + PCA albedo through the rasteriser).")
@align_option
def from_photos(source, out, resolution, workers, batch, face, flame_dir, photometric, align):
    """Detect, crop and fit every photo of SOURCE (a folder or zip) into a next3d data set.

    Skipped photos (unreadable, no face, face too small, fit failed) are listed with the
    reason and never stop the run. The set appears under OUT only when complete; an
    interrupted run resumes from OUT.work/ when started again with the same options.
    """
    from next3d.cli.options import load_flame_from_options
    from next3d.fitting.detect import DetectionError
    from next3d.fitting.photo_dataset import PhotoDatasetError, build_photo_dataset
    from next3d.flame import FlameFilesError, load_flame_model
    from training.dataset import DatasetError
    from training.dataset_schema import head_identity

    flame = load_flame_from_options(flame_dir)
    try:
        head = head_identity(load_flame_model(flame_dir))
    except FlameFilesError as exc:
        raise click.ClickException(str(exc)) from None
    photo_cfg = photo_model = None
    if photometric:
        from next3d.fitting.photometric import PhotometricConfig, load_photometric_model

        photo_cfg, photo_model = PhotometricConfig(), load_photometric_model(flame_dir)
    try:
        report = build_photo_dataset(source, out, flame=flame, head=head, resolution=resolution, workers=workers,
                                     batch=batch, face=face, align=align, log=lambda line: click.echo(line, err=True),
                                     progress=True, photometric=photo_cfg, photometric_model=photo_model)
    except (PhotoDatasetError, DetectionError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {report.out}: {report.written} image(s); {len(report.skipped)} skipped")
    for name, stage, reason in report.skipped:
        click.echo(f"  skipped {name} ({stage}): {reason}")
