"""`next3d export-model`: a training snapshot's G_ema (and its head model) as a shippable file.

Thin: parse options, call `next3d.pretrained.export.export_generator`, report.
"""

from __future__ import annotations

import click


@click.command("export-model")
@click.argument("snapshot", type=click.Path(exists=True))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output checkpoint, e.g. next3d/pretrained/builtin.n3d to replace the shipped model.")
@click.option("--group", type=click.Choice(["G_ema", "G"]), default="G_ema", show_default=True,
              help="Which generator of the snapshot to export.")
@click.option("--force", is_flag=True, help="Replace --out when it exists (default: refuse).")
def export_model(snapshot, out_path, group, force):
    """Write SNAPSHOT's generator (G_ema by default) with the arrays of the head model it was
    trained on into --out: a generator-only next3d checkpoint of at most 30 MiB that
    `--network PATH` (or, at next3d/pretrained/builtin.n3d, `--network builtin`) loads.
    The file is written under a temporary name, read back and compared, then renamed."""
    from next3d.pretrained.export import ExportError, export_generator

    try:
        result = export_generator(snapshot, out_path, group=group, force=force)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    trained = "" if result.cur_nimg is None else f" at {result.cur_nimg / 1000:.1f} kimg"
    click.echo(f"wrote {result.path}: {result.bytes / 2 ** 20:.1f} MiB, {result.group} of "
               f"{result.preset or 'a generator'}{trained} ({result.parameters} weights) with the "
               f"{result.head.describe()}")


__all__ = ["export_model"]
