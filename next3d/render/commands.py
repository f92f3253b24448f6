"""`next3d flame render`: a shaded (or normal-map) PNG of a FLAME head under an orbit camera.

Thin: parse options, build the mesh with the FLAME layer, call `mesh_shading.render_mesh`,
write the image. The camera is the default orbit of `next3d.render.cameras` (radius 2.7
around (0, 0, 0.2), FFHQ intrinsics); `--yaw` > 0 shows the subject's left cheek,
`--pitch` > 0 looks from above.

The command is built by `make_render_command()`, which the `flame` group
(`next3d/flame/commands.py`) calls at its bottom: building it on demand reuses that
module's shared FLAME options (`flame_options`) with no circular import, whichever of the
two modules is imported first.
"""

from __future__ import annotations

from pathlib import Path

import click
import torch


def _render(out_path, yaw, pitch, size, normals, **opts):
    from next3d.flame.commands import flame_params_from_options, load_flame_from_options
    from next3d.image_io import save_image
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise click.ClickException(f"--out: folder {out_path.parent} does not exist")
    model = load_flame_from_options(opts["flame_dir"])
    params = flame_params_from_options(model, **opts)
    with torch.no_grad():
        vertices = model(**params).vertices
        result = render_mesh(vertices, model.faces, orbit_label(yaw, pitch), size)
    image = result.normals if normals else result.shaded
    save_image(image[0], out_path)
    coverage = float(result.mask.mean())
    click.echo(f"wrote {out_path} ({size}x{size}, {'normal map' if normals else 'shaded'}, head covers "
               f"{100 * coverage:.1f}% of the image, model {model.model_name})")


def make_render_command() -> click.Command:
    """The `render` click command (a new object each call)."""
    from next3d.flame.commands import flame_options

    def render(**kwargs):
        """Render the posed head as a Lambertian-shaded PNG (what the deformation-aware discriminator sees)."""
        _render(**kwargs)

    # click stores options on the function object: decorate a fresh one each call.
    fn = render
    view_options = [
        click.option("--yaw", type=click.FloatRange(-3.1416, 3.1416), default=0.0, show_default=True,
                     help="Camera yaw around the head, radians (+ = towards the subject's left)."),
        click.option("--pitch", type=click.FloatRange(-1.5, 1.5), default=0.0, show_default=True,
                     help="Camera pitch, radians (+ = from above)."),
        click.option("--size", type=click.IntRange(16, 4096), default=512, show_default=True,
                     help="Image width and height in pixels."),
        click.option("--normals", is_flag=True, help="Write the camera-space normal map instead of the shading."),
    ]
    for opt in reversed(view_options):
        fn = opt(fn)
    fn = flame_options(fn)
    fn = click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
                      help="Output PNG path.")(fn)
    return click.command("render")(fn)
