"""`next3d convert PUBLISHED.pkl OUT.n3d`: a published network pickle -> next3d checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import click

from next3d.safe_pickle import UnsafePickleError


@click.command()
@click.argument("published", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--eg3d", is_flag=True,
              help="Convert as EG3D: take only backbone, superresolution and decoder; the texture, mouth and "
                   "blending networks start fresh. Detected automatically when the pickle has no texture network.")
@click.option("--training-nets", is_flag=True, help="Also convert G and D (to fine-tune); default: G_ema only.")
@click.option("--all-planes-blending", is_flag=True,
              help="Blend the texture into all three planes (default for Next3D pickles: front plane only).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a configuration field, e.g. --set render.neural_resolution=128 (repeatable).")
@click.option("--no-verify", is_flag=True, help="Do not build the project's networks to check names and shapes.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and the mapping; write nothing.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def convert(published: Path, out: Path, eg3d: bool, training_nets: bool, all_planes_blending: bool, overrides,
            no_verify: bool, dry_run: bool, force: bool):
    """Convert a published EG3D/Next3D network pickle into a next3d checkpoint.

    The pickle is read without executing any of the code it carries; a pickle that asks
    for anything beyond network data is refused. Topology buffers (faces, UVs) are dropped:
    the head model provides them.
    """
    from next3d.convert.published import convert_published
    from next3d.convert.name_map import ConvertError

    if not dry_run:
        from next3d.cli.options import check_outputs

        check_outputs({"OUT": out}, force=force, inputs=[published])
    try:
        report = convert_published(
            published, None if dry_run else out, flavour="eg3d" if eg3d else None, training_nets=training_nets,
            overrides=overrides, front_only_blending=not all_planes_blending, verify=not no_verify)
    except UnsafePickleError as exc:
        raise click.ClickException(f"refused: {exc}") from None
    except (ConvertError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    for note in report.notes:
        click.echo(note)
    click.echo(f"tensors: {', '.join(f'{k} {v}' for k, v in report.groups.items())}")
    if report.dropped:
        click.echo(f"dropped {len(report.dropped)} published tensors: "
                   f"{', '.join(sorted(report.dropped)[:8])}{' ...' if len(report.dropped) > 8 else ''}")
    if dry_run:
        click.echo(json.dumps(report.config.to_dict(), indent=2))
        return
    click.echo(f"wrote {report.out}")
