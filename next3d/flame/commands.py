"""`next3d flame ...` commands. The shared FLAME options live in `flame_options` /
`flame_params_from_options`, for reuse by other subcommands of this group (e.g. `render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import click
import numpy as np
import torch


def _float_list(ctx, param, value: Optional[str]) -> Optional[List[float]]:
    if value is None or value == "":
        return None
    try:
        return [float(x) for x in value.split(",") if x.strip() != ""]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers like 0.5,-1,0.2, got {value!r}") from None


def flame_options(fn):
    """Add --flame-dir, --shape, --expression, --jaw-open, --neck-yaw, --gaze-yaw to a click command."""
    opts = [
        click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
                     help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head)."),
        click.option("--shape", callback=_float_list, default=None, metavar="B0,B1,...",
                     help="Shape coefficients (leading components; the rest are zero)."),
        click.option("--expression", callback=_float_list, default=None, metavar="E0,E1,...",
                     help="Expression coefficients (leading components; the rest are zero)."),
        click.option("--jaw-open", type=float, default=0.0, show_default=True, help="Jaw opening angle, radians."),
        click.option("--neck-yaw", type=float, default=0.0, show_default=True,
                     help="Head turn about the vertical axis at the neck, radians (+ = towards the subject's left)."),
        click.option("--gaze-yaw", type=float, default=0.0, show_default=True, help="Eyeball yaw, radians."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


FLAME_OPTION_NAMES = ("flame_dir", "shape", "expression", "jaw_open", "neck_yaw", "gaze_yaw")


def flame_params_from_options(flame, shape=None, expression=None, jaw_open=0.0, neck_yaw=0.0, gaze_yaw=0.0,
                              **_ignored) -> Dict[str, torch.Tensor]:
    """Options -> keyword arguments for `FLAME.forward` (batch 1). Raises click.ClickException on bad counts."""
    out = {}
    for name, values, limit in (("shape", shape, flame.num_shape), ("expression", expression, flame.num_expression)):
        if values:
            if len(values) > limit:
                raise click.ClickException(f"--{name} has {len(values)} values but this head model has {limit} "
                                           f"{name} components")
            out[name] = torch.tensor([values], dtype=torch.float32)
    out["jaw"] = torch.tensor([[jaw_open, 0.0, 0.0]])
    out["neck"] = torch.tensor([[0.0, neck_yaw, 0.0]])
    out["left_eye"] = torch.tensor([[0.0, gaze_yaw, 0.0]])
    out["right_eye"] = torch.tensor([[0.0, gaze_yaw, 0.0]])
    return out


def load_flame_from_options(flame_dir):
    """Load the FLAME layer for --flame-dir, turning file errors into click errors."""
    from next3d.flame import FLAME, FlameFilesError, load_flame_model

    try:
        return FLAME(load_flame_model(flame_dir))
    except FlameFilesError as exc:
        raise click.ClickException(str(exc)) from None


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


__all__ = ["flame", "flame_options", "flame_params_from_options", "load_flame_from_options", "FLAME_OPTION_NAMES"]

from next3d.render.commands import make_render_command  # noqa: E402  (the render subcommand)
flame.add_command(make_render_command(), "render")
