"""`next3d flame export|render`: the head model as an OBJ, or as a shaded PNG."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
import numpy as np
import torch

from next3d.cli.flame_render import render as render_command
from next3d.cli.options import (check_outputs, flame_options, flame_params_from_options, force_option,
                                load_flame_from_options)


@click.group()
def flame():
    """FLAME head model: export meshes (real FLAME files or the built-in head)."""


@flame.command()
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Output .obj path.")
@flame_options
@click.option("--preview", is_flag=True, help="Also write a shaded preview PNG (front, side, three-quarter) "
                                               "beside the OBJ (<out>.png).")
@force_option("existing OBJ, landmark and preview files")
def export(out_path, preview, force, **opts):
    """Write the posed mesh as OBJ with UVs, and its 68 landmarks beside it (`<out>_landmarks.txt`).

    Files: OUT (.obj), OUT_landmarks.txt and, with --preview, OUT.png; all three are checked
    before any work and written together (temporary files, renamed at the end).
    """
    from next3d.atomic_io import atomic_path
    from next3d.flame.obj_io import write_obj

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".obj":
        raise click.ClickException(f"--out {out_path}: expected a .obj file name")
    lmk_path = out_path.with_name(out_path.stem + "_landmarks.txt")
    png = out_path.with_suffix(".png")
    outputs = {"--out": out_path, "landmarks": lmk_path, **({"preview": png} if preview else {})}
    check_outputs(outputs, force=force)
    model = load_flame_from_options(opts["flame_dir"])
    params = flame_params_from_options(model, **opts)
    with torch.no_grad():
        result = model(**params)
    verts = result.vertices[0].numpy()
    landmarks = result.landmarks[0].numpy()
    if not (np.isfinite(verts).all() and np.isfinite(landmarks).all()):
        raise click.ClickException("the posed mesh has NaN or infinite vertices (check the FLAME files and options)")
    with contextlib.ExitStack() as stack:
        tmp_obj = stack.enter_context(atomic_path(out_path))
        tmp_lmk = stack.enter_context(atomic_path(lmk_path))
        tmp_png = stack.enter_context(atomic_path(png)) if preview else None
        write_obj(tmp_obj, verts, model.faces, model.uv_coords, model.uv_faces)
        np.savetxt(tmp_lmk, landmarks, fmt="%.6f")
        if preview:
            from next3d.flame.builtin.preview import save_preview

            save_preview(tmp_png, verts, model.faces.numpy())
    click.echo(f"wrote {out_path} ({verts.shape[0]} vertices, {model.faces.shape[0]} faces, model "
               f"{model.model_name}) and {lmk_path}")
    if preview:
        click.echo(f"wrote {png}")


flame.add_command(render_command, "render")
