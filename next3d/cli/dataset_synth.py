"""`next3d dataset synth`: render the synthetic-heads set (images + labels + ground truth).

Thin: parse the options, call `next3d.synthetic.writer.write_synthetic_set`, print a summary.
The distributions are `next3d.synthetic.distributions.SynthDistributions`.
"""

from __future__ import annotations

import click


@click.command("synth")
@click.option("--out", "out", type=click.Path(), required=True, metavar="DIR|FILE.zip",
              help="Output folder, or a path ending in .zip.")
@click.option("--count", type=int, required=True, help="Number of images.")
@click.option("--resolution", type=int, default=256, show_default=True,
              help="Image side in pixels (a multiple of 8 in 32..1024; 64-512 recommended).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: item i is drawn from (seed, i) alone.")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head).")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Rendering processes (the output does not depend on it).")
@click.option("--split", "split", default="train=0.9,test=0.1", show_default=True,
              help="Fractions of train and test items.")
def synth(out, count, resolution, seed, flame_dir, workers, split):
    """Render COUNT photographic-looking heads with their camera, FLAME parameters and ground truth."""
    from next3d.flame import FlameFilesError
    from next3d.synthetic.render import SynthError
    from next3d.synthetic.writer import write_synthetic_set
    from training.dataset_schema import DatasetError

    if count < 1:
        raise click.ClickException(f"--count {count}: expected at least 1 image")
    try:
        summary = write_synthetic_set(out, count, resolution, seed=seed, flame_dir=flame_dir, workers=workers,
                                      split=split, progress=True)
    except SynthError as exc:
        msg = str(exc)
        for name in ("resolution", "workers", "count"):
            if msg.startswith(name):
                msg = f"--{msg}"
        raise click.ClickException(msg) from None
    except (FlameFilesError, DatasetError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {summary.count} images ({summary.train} train, {summary.test} test) at "
               f"{resolution}x{resolution} to {summary.out} in {summary.seconds:.1f} s "
               f"({summary.images_per_second:.2f} images/s, {workers} worker{'s' if workers != 1 else ''})")
