"""`next3d flame export|render`: the head model as an OBJ, or as a shaded PNG."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from next3d.cli.flame_render import render as render_command
from next3d.cli.options import flame_options, flame_params_from_options, load_flame_from_options


@click.group()
def flame():
    """FLAME head model: export meshes (real FLAME files or the built-in head)."""


@flame.command()
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Output .obj path.")
@flame_options
@click.option("--preview", is_flag=True, help="Also write a shaded preview PNG (front, side, three-quarter).")
def export(out_path, preview, **opts):
    """Write the posed mesh as OBJ with UVs, and its 68 landmarks beside it (`<out>_landmarks.txt`)."""
    from next3d.flame.obj_io import write_obj

    model = load_flame_from_options(opts["flame_dir"])
    params = flame_params_from_options(model, **opts)
    with torch.no_grad():
        result = model(**params)
    out_path = Path(out_path)
    if not out_path.parent.exists():
        raise click.ClickException(f"--out: folder {out_path.parent} does not exist")
    verts = result.vertices[0].numpy()
    write_obj(out_path, verts, model.faces, model.uv_coords, model.uv_faces)
    lmk_path = out_path.with_name(out_path.stem + "_landmarks.txt")
    np.savetxt(lmk_path, result.landmarks[0].numpy(), fmt="%.6f")
    click.echo(f"wrote {out_path} ({verts.shape[0]} vertices, {model.faces.shape[0]} faces, model "
               f"{model.model_name}) and {lmk_path}")
    if preview:
        from next3d.flame.builtin.preview import save_preview

        png = out_path.with_suffix(".png")
        save_preview(png, verts, model.faces.numpy())
        click.echo(f"wrote {png}")



flame.add_command(render_command, "render")
