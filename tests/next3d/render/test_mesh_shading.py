"""Normal maps and Lambertian shading of meshes under camera labels."""

import math

import pytest
import torch

from helpers import assert_close
from next3d.render import mesh_shading as ms
from next3d.render.cameras import DEFAULT_PIVOT, orbit_label, split_label
from next3d.render.triplane_coords import world_to_flame
from torch_utils.misc import ShapeError


def sphere(centre_world, radius, n_lon=48, n_lat=24):
    """A UV sphere in FLAME space whose world-space centre/radius are given; CCW seen from outside."""
    lon = torch.linspace(-math.pi, math.pi, n_lon + 1)[:-1]
    lat = torch.linspace(-math.pi / 2, math.pi / 2, n_lat + 1)[1:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    pts = torch.stack([la.cos() * lo.sin(), la.sin(), la.cos() * lo.cos()], -1).reshape(-1, 3)
    pts = torch.cat([pts, torch.tensor([[0.0, -1.0, 0.0], [0.0, 1.0, 0.0]])])
    south, north = len(pts) - 2, len(pts) - 1
    idx = torch.arange(len(lat) * n_lon).reshape(len(lat), n_lon)
    nxt = torch.roll(idx, -1, dims=1)
    faces = [torch.stack([idx[:-1], nxt[:-1], nxt[1:]], -1).reshape(-1, 3),
             torch.stack([idx[:-1], nxt[1:], idx[1:]], -1).reshape(-1, 3),
             torch.stack([torch.full((n_lon,), south), nxt[0], idx[0]], -1),
             torch.stack([torch.full((n_lon,), north), idx[-1], nxt[-1]], -1)]
    world = torch.as_tensor(centre_world, dtype=torch.float32) + radius * pts
    return world_to_flame(world)[None], torch.cat(faces).long()


def analytic_normals(c, size, centre, radius):
    """Per-pixel unit normals of a sphere (display convention) and a hit mask, by ray casting."""
    cam2world, intr = split_label(c)
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    k = intr[0].double()
    dirs_cam = torch.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], torch.ones_like(u)], -1)
    rot, origin = cam2world[0, :3, :3].double(), cam2world[0, :3, 3].double()
    dirs = torch.nn.functional.normalize(dirs_cam @ rot.T, dim=-1)
    oc = origin - torch.as_tensor(centre, dtype=torch.float64)
    b = (dirs * oc).sum(-1)
    disc = b ** 2 - (oc.norm() ** 2 - radius ** 2)
    hit = disc > 0
    t = -b - disc.clamp(min=0).sqrt()
    normal_world = (origin + t[..., None] * dirs - torch.as_tensor(centre, dtype=torch.float64)) / radius
    normal_cam = normal_world @ rot  # world -> camera: R^T n, row-vector form
    return normal_cam * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64), hit


def test_sphere_normals_shading_and_mask_match_ray_casting():
    centre, radius, size = DEFAULT_PIVOT, 0.3, 64
    verts, faces = sphere(centre, radius)
    c = orbit_label(0.3, -0.2)
    out = ms.render_mesh(verts, faces, c, size, rasterize_impl="ref")
    assert out.normals.shape == (1, 3, size, size) and out.shaded.shape == (1, 3, size, size)
    assert out.mask.shape == (1, 1, size, size)
    normals, hit = analytic_normals(c, size, centre, radius)
    mask = out.mask[0, 0].bool()
    # silhouettes agree except along the tessellated rim
    assert int((mask ^ hit).sum()) < 0.08 * int(hit.sum())
    both = mask & hit
    got = out.normals[0].permute(1, 2, 0)[both].double()
    cos = (got * normals[both]).sum(-1)
    assert float(cos.median()) > 0.999 and float(cos.min()) > 0.95
    light = torch.nn.functional.normalize(torch.tensor(ms.DEFAULT_LIGHT, dtype=torch.float64), dim=0)
    # display -> OpenCV camera axes for the light
    n_cv = normals[both] * torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    expect = 2 * (ms.DEFAULT_AMBIENT + (1 - ms.DEFAULT_AMBIENT) * (n_cv @ light).clamp(min=0)) - 1
    lambert_err = (out.shaded[0, 0][both].double() - expect).abs()
    assert float(lambert_err.median()) < 0.01 and float(lambert_err.max()) < 0.12
    assert_close(out.shaded[0, 1], out.shaded[0, 0], name="grey")
    # background
    assert float(out.shaded[0][:, ~mask].max()) == -1.0 and float(out.normals[0][:, ~mask].max()) == -1.0
    # the brightest point faces the light: upper left of the sphere in the image
    bright = out.shaded[0, 0].flatten().argmax()
    row, col = divmod(int(bright), size)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert row < rows.float().mean() and col < cols.float().mean()


def test_orientation_and_any_resolution():
    # Frontal camera: world +x (the subject's left) is on the image's right; +y is up.
    verts_r, faces = sphere((0.25, 0.0, 0.2), 0.1)
    verts_u, _ = sphere((0.0, 0.25, 0.2), 0.1)
    c = orbit_label(0.0, 0.0).repeat(2, 1)
    out = ms.render_mesh(torch.cat([verts_r, verts_u]), faces, c, (40, 56), rasterize_impl="ref")
    assert out.mask.shape == (2, 1, 40, 56)
    rows, cols = torch.nonzero(out.mask[0, 0], as_tuple=True)
    assert cols.float().mean() > 56 / 2 + 5 and abs(rows.float().mean() - 20) < 2
    rows, cols = torch.nonzero(out.mask[1, 0], as_tuple=True)
    assert rows.float().mean() < 40 / 2 - 5 and abs(cols.float().mean() - 28) < 2
    # normal map: x channel positive on the right half of a sphere, y positive on its top half
    m = out.mask[0, 0].bool()
    rows, cols = torch.nonzero(m, as_tuple=True)
    x_normal = out.normals[0, 0][m]
    cx = cols.float().mean()
    assert float(x_normal[cols > cx + 1].mean()) > 0.2 and float(x_normal[cols < cx - 1].mean()) < -0.2
    m = out.mask[1, 0].bool()
    rows, cols = torch.nonzero(m, as_tuple=True)
    y_normal = out.normals[1, 1][m]
    cy = rows.float().mean()
    assert float(y_normal[rows < cy - 1].mean()) > 0.2 and float(y_normal[rows > cy + 1].mean()) < -0.2


def test_vertex_normals_unit_and_outward():
    verts, faces = sphere((0.0, 0.0, 0.0), 1.0, 12, 6)
    n = ms.vertex_normals(verts, faces)
    assert_close(n.norm(dim=-1), torch.ones(1, verts.shape[1]), name="unit")
    centred = verts - verts.mean(1, keepdim=True)
    assert float((n * torch.nn.functional.normalize(centred, dim=-1)).sum(-1).min()) > 0.9


def test_builtin_head_front_view():
    flame = pytest.importorskip("next3d.flame")
    model = flame.FLAME(flame.load_flame_model(None))
    out_flame = model(batch_size=1)
    out = ms.render_mesh(out_flame.vertices.detach(), model.faces, orbit_label(0.0, 0.0), 64)
    mask = out.mask[0, 0]
    assert 0.2 < float(mask.mean()) < 0.7
    # a neutral head is left-right symmetric in a frontal view
    inter = (mask * mask.flip(-1)).sum()
    union = ((mask + mask.flip(-1)) > 0).sum()
    assert float(inter / union) > 0.95
    assert float(out.shaded.min()) >= -1 and float(out.shaded.max()) <= 1
    # the face looks at the camera: normals around the image centre point towards it
    centre_z = out.normals[0, 2, 24:40, 24:40]
    assert float(centre_z.median()) > 0.6


def test_gradients_reach_vertices():
    verts, faces = sphere(DEFAULT_PIVOT, 0.3, 12, 6)
    verts = verts.clone().requires_grad_(True)
    out = ms.render_mesh(verts, faces, orbit_label(0.0, 0.0), 16, rasterize_impl="ref")
    out.shaded.sum().backward()
    assert verts.grad is not None and float(verts.grad.abs().sum()) > 0


def test_bad_input():
    verts, faces = sphere(DEFAULT_PIVOT, 0.3, 8, 4)
    with pytest.raises(ShapeError, match=r"camera label c: expected shape \(1, 25\)"):
        ms.render_mesh(verts, faces, torch.zeros(1, 24), 8)
    with pytest.raises(ShapeError, match="vertices"):
        ms.render_mesh(verts[0], faces, orbit_label(0.0, 0.0), 8)
    with pytest.raises(ShapeError, match="faces: expected an integer tensor"):
        ms.render_mesh(verts, faces.float(), orbit_label(0.0, 0.0), 8)
    with pytest.raises(ValueError, match="ambient"):
        ms.render_mesh(verts, faces, orbit_label(0.0, 0.0), 8, ambient=2.0)
