"""`next3d flame render`: a shaded (or normal-map) PNG of a FLAME head under an orbit camera.

Thin: parse options, build the mesh with the FLAME layer, call `mesh_shading.render_mesh`,
write the image. The camera is the default orbit of `next3d.render.cameras` (radius 2.7
around (0, 0, 0.2), FFHQ intrinsics); `--yaw` > 0 shows the subject's left cheek,
`--pitch` > 0 looks from above.
"""

from __future__ import annotations

from pathlib import Path

import click
import torch

from next3d.cli.options import (FiniteFloat, check_outputs, flame_options, flame_params_from_options, force_option,
                                load_flame_from_options)


@click.command("render")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Output PNG path.")
@flame_options
@click.option("--yaw", type=FiniteFloat(-3.1416, 3.1416), default=0.0, show_default=True,
              help="Camera yaw around the head, radians (+ = towards the subject's left).")
@click.option("--pitch", type=FiniteFloat(-1.5, 1.5), default=0.0, show_default=True,
              help="Camera pitch, radians (+ = from above).")
@click.option("--size", type=click.IntRange(16, 4096), default=512, show_default=True,
              help="Image width and height in pixels.")
@click.option("--normals", is_flag=True, help="Write the camera-space normal map instead of the shading.")
@force_option("an existing image at --out")
def render(out_path, yaw, pitch, size, normals, force, **opts):
    """Render the posed head as a Lambertian-shaded PNG (what the deformation-aware discriminator sees)."""
    from next3d.image_io import image_format, save_image
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    out_path = Path(out_path)
    image_format(out_path)  # an unsupported extension is refused before any work
    check_outputs({"--out": out_path}, force=force)
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
