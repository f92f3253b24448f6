"""The deformation-aware D's input: the FLAME mesh rendered under the camera."""

import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from next3d.render.mesh_shading import render_mesh
from training.mesh_condition import MeshConditioner


def test_renders_normals_and_shading_of_the_given_parameters():
    flame = FLAME(load_flame_model(None))
    params = {"expression": torch.zeros(2, 4), "jaw": torch.tensor([[0.0, 0, 0], [0.3, 0, 0]])}
    c = torch.cat([orbit_label(0.0, 0.0), orbit_label(0.4, 0.1)])
    cond = MeshConditioner(flame, "normals", 32)
    out = cond(params, c)
    assert out.shape == (2, 3, 32, 32) and out.min() >= -1 and out.max() <= 1
    ref = render_mesh(flame(**params).vertices, flame.faces, c, 32)
    assert torch.equal(out, ref.normals)
    # Seen surfaces face the camera: +z (display convention) on average over the head.
    cov = ref.mask[0, 0] > 0
    assert float(out[0, 2][cov].mean()) > 0.5
    # Background is -1 in every channel; the head covers a sizeable part of the image.
    bg = ref.mask[:, 0] == 0
    assert bool((out.permute(1, 0, 2, 3)[:, bg] == -1).all()) and 0.1 < float(ref.mask.mean()) < 0.9
    # Open jaw differs from closed jaw: the rendering carries the deformation.
    assert float((out[1] - cond({k: v[:1].repeat(2, 1) for k, v in params.items()}, c)[1]).abs().max()) > 0.1
    shaded = MeshConditioner(flame, "shaded", 32)(params, c)
    assert shaded.shape == (2, 1, 32, 32) and torch.equal(shaded, ref.shaded[:, :1])
    # Published-layout items give vertices instead of parameters.
    assert torch.equal(cond({"vertices": flame(**params).vertices, "landmarks": torch.zeros(2, 68, 3)}, c), out)
