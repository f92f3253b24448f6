"""Tri-planes from the neural texture: the write/read invariant, alphas, mouth cap, bad input."""

import math

import numpy as np
import pytest
import torch

from helpers import assert_close
from next3d.render import texture_planes as tp
from next3d.render.triplane_coords import flame_to_world, sample_planes, world_to_plane_coords
from torch_utils.misc import ShapeError


# ----------------------------------------------------------------------------------------
# Meshes.


def ellipsoid_head(n_lon=40, n_lat=20, radii=(0.08, 0.11, 0.09), centre=(0.0, -0.01, 0.0)):
    """A head-sized ellipsoid in FLAME space, wound counter-clockwise seen from outside,
    with a longitude/latitude UV map (u = longitude, v = latitude, v up; seam at the back)."""
    lon = torch.linspace(-math.pi, math.pi, n_lon + 1, dtype=torch.float64)
    lat = torch.linspace(-math.pi / 2 + 0.15, math.pi / 2 - 0.15, n_lat + 1, dtype=torch.float64)
    la, lo = torch.meshgrid(lat, lon, indexing="ij")  # (n_lat+1, n_lon+1)
    verts = torch.stack([radii[0] * la.cos() * lo.sin() + centre[0], radii[1] * la.sin() + centre[1],
                         radii[2] * la.cos() * lo.cos() + centre[2]], -1).reshape(-1, 3)
    uv = torch.stack([(lo + math.pi) / (2 * math.pi), (la - lat[0]) / (lat[-1] - lat[0])], -1).reshape(-1, 2)
    idx = torch.arange((n_lat + 1) * (n_lon + 1)).reshape(n_lat + 1, n_lon + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3), torch.stack([a, c, d], -1).reshape(-1, 3)])
    return verts.float(), faces, uv.float(), faces.clone()


def closed_mouth_landmarks(batch=1):
    lms = torch.zeros(batch, 68, 3)
    lms[:, :, 2] = -0.5  # far behind: a closed, degenerate mouth covers nothing
    return lms


def uv_ramp(size=256, batch=1):
    """Texture (B, 2, T, T) whose channels are the (u, v) of each texel centre (v up)."""
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    u = c[None, :].expand(size, size)
    v = 1.0 - c[:, None].expand(size, size)
    return torch.stack([u, v])[None].repeat(batch, 1, 1, 1)


def builtin_flame(jaw=0.0):
    """Built-in FLAME head (vertices (1, V, 3), faces, uv, uv_faces, uv_mask, landmarks) or skip."""
    flame = pytest.importorskip("next3d.flame")
    if not hasattr(flame, "load_flame_model"):
        pytest.skip("next3d.flame has no built-in head yet")
    model = flame.FLAME(flame.load_flame_model(None))
    out = model(jaw=torch.tensor([[jaw, 0.0, 0.0]]), batch_size=1)
    return (out.vertices.detach(), model.faces, model.uv_coords, model.uv_faces, model.uv_mask,
            out.landmarks.detach())


# ----------------------------------------------------------------------------------------
# The invariant: texture written into a plane lands where the renderer reads that plane.


def check_invariant(vertices, faces, uv_coords, uv_faces, landmarks, view_name, resolution=128,
                    num_points=4000, min_points=100):
    view = tp.VIEW_BY_NAME[view_name]
    ren = tp.render_views(vertices, faces, uv_coords, uv_faces, None, landmarks, uv_ramp(256), resolution,
                          views=(view_name,), rasterize_impl="ref")
    planes = torch.zeros(1, 3, 2, resolution, resolution)
    planes[:, view.slot] = ren.features[:, 0]

    gen = torch.Generator().manual_seed(1)
    fid = torch.randint(0, faces.shape[0], (num_points,), generator=gen)
    bary = torch.distributions.Dirichlet(torch.ones(3)).sample((num_points,))
    world_tri = flame_to_world(vertices[0].double())[faces[fid]]  # (N, 3, 3)
    uv_tri = uv_coords.double()[uv_faces[fid]]  # (N, 3, 2)
    points = (bary.double()[:, :, None] * world_tri).sum(1)
    uv_true = (bary.double()[:, :, None] * uv_tri).sum(1)

    # Facing the viewer (outward normals: counter-clockwise seen from outside).
    normal = torch.cross(world_tri[:, 1] - world_tri[:, 0], world_tri[:, 2] - world_tri[:, 0], dim=-1)
    towards_viewer = -view.depth_sign * normal[:, view.depth_axis] / normal.norm(dim=-1).clamp(min=1e-12)
    # Unoccluded: at the 4 bilinear neighbour pixels, the rasterised depth is that of this
    # face's plane extended there (a nearer surface, even 1 mm nearer, fails this).
    grid = world_to_plane_coords(points[None].float())[0, view.slot].double()  # (N, 2)
    p2 = world_to_plane_coords(world_tri.reshape(1, -1, 3).float())[0, view.slot].double().reshape(-1, 3, 2)
    dp = torch.stack([p2[:, 1] - p2[:, 0], p2[:, 2] - p2[:, 0]], -1)  # (N, 2, 2): columns = edges
    ok = (towards_viewer > 0.3) & (torch.linalg.det(dp).abs() > 1e-12)
    dp_inv = torch.linalg.inv(torch.where(ok[:, None, None], dp, torch.eye(2, dtype=dp.dtype)))
    tri_depth = view.depth_sign * world_tri[:, :, view.depth_axis]  # (N, 3)
    depth_grad = torch.stack([tri_depth[:, 1] - tri_depth[:, 0], tri_depth[:, 2] - tri_depth[:, 0]], -1)
    depth_grad = (depth_grad[:, None, :] @ dp_inv)[:, 0]  # (N, 2): d depth / d grid
    point_depth = view.depth_sign * points[:, view.depth_axis]
    pix = ((grid + 1) * resolution - 1) / 2  # continuous pixel coords (x = col, y = row)
    lo = pix.floor().long()
    depth_img = ren.depth[0, 0].double()
    for dy in (0, 1):
        for dx in (0, 1):
            r = lo[:, 1] + dy
            c = lo[:, 0] + dx
            inside = (r >= 0) & (r < resolution) & (c >= 0) & (c < resolution)
            centre = torch.stack([(2 * c + 1).double() / resolution - 1, (2 * r + 1).double() / resolution - 1], -1)
            expect = point_depth + (depth_grad * (centre - grid)).sum(-1)
            got = depth_img[r.clamp(0, resolution - 1), c.clamp(0, resolution - 1)]
            ok &= inside & ((got - expect).abs() < 1e-3)
    assert int(ok.sum()) >= min_points, f"{view_name}: only {int(ok.sum())} testable points"

    read = sample_planes(planes, points[None].float())[0, view.slot].double()  # (N, 2)
    err = (read - uv_true).norm(dim=-1)[ok]
    # One pixel's worth of UV change for each face in this view: |d uv / d grid| * (2 / R).
    du = torch.stack([uv_tri[:, 1] - uv_tri[:, 0], uv_tri[:, 2] - uv_tri[:, 0]], -1)
    jac = du @ dp_inv
    pixel_uv = torch.linalg.matrix_norm(jac, ord=2)[ok] * (2.0 / resolution)
    ratio = err / (pixel_uv + 1e-6)
    frac_within = float((err <= pixel_uv + 2e-3).double().mean())
    assert frac_within > 0.97, f"{view_name}: only {frac_within:.3f} of points within a pixel"
    assert float(ratio.median()) < 0.1, f"{view_name}: median error {float(ratio.median()):.3f} pixels"
    return ok


@pytest.mark.parametrize("view_name", ["front", "top", "side_pos_x", "side_neg_x"])
def test_invariant_ellipsoid(view_name):
    verts, faces, uv, uv_faces = ellipsoid_head()
    check_invariant(verts[None], faces, uv, uv_faces, closed_mouth_landmarks(), view_name)


@pytest.mark.parametrize("view_name", ["front", "top", "side_pos_x", "side_neg_x"])
def test_invariant_builtin_flame(view_name):
    vertices, faces, uv, uv_faces, _, landmarks = builtin_flame()
    check_invariant(vertices, faces, uv, uv_faces, landmarks, view_name)


def test_invariant_deca_template(flame_deca_dir):
    obj_io = pytest.importorskip("next3d.flame.obj_io")
    mesh = obj_io.read_obj(flame_deca_dir / "demo_next3d.obj")
    template = obj_io.read_obj(flame_deca_dir / "head_template.obj")
    lms = torch.from_numpy(np.loadtxt(flame_deca_dir / "demo_next3d_kpt.txt")).float()[None]
    args = (torch.from_numpy(mesh.vertices).float()[None], torch.from_numpy(template.faces),
            torch.from_numpy(template.uv_coords).float(), torch.from_numpy(template.uv_faces), lms)
    for view_name in ("front", "top", "side_pos_x"):
        check_invariant(*args, view_name, resolution=192)


def test_build_places_views_in_renderer_slots():
    verts, faces, uv, uv_faces = ellipsoid_head()
    verts = verts[None]
    lms = closed_mouth_landmarks()
    tex = uv_ramp(64)
    out = tp.build_texture_planes(verts, faces, uv, uv_faces, None, lms, tex, 48, rasterize_impl="ref")
    assert out.planes.shape == (1, 3, 2, 48, 48) and out.alphas.shape == (1, 3, 1, 48, 48)
    ren = tp.render_views(verts, faces, uv, uv_faces, None, lms, tex, 48, rasterize_impl="ref")
    assert_close(out.planes[:, 0], ren.features[:, 0], name="slot 0 = front (XY)")
    assert_close(out.planes[:, 1], ren.features[:, 1], name="slot 1 = top (XZ)")
    side, side_alpha = tp.combine_side(ren.features[:, 2:], ren.alphas[:, 2:], ren.coverage[:, 2:])
    assert_close(out.planes[:, 2], side, name="slot 2 = side (ZY)")
    assert_close(out.alphas[:, 2], torch.maximum(ren.alphas[:, 2], ren.alphas[:, 3]), name="side alpha = union")
    # The two side views see opposite cheeks: u (longitude) differs between them.
    both = (ren.coverage[0, 2, 0] > 0) & (ren.coverage[0, 3, 0] > 0)
    assert int(both.sum()) > 100
    assert float((ren.features[0, 2, 0] - ren.features[0, 3, 0])[both].abs().mean()) > 0.1
    # The head's silhouette fills a sensible part of each plane (head about 0.5 of the box).
    cover = out.alphas[0, :, 0].mean((-1, -2))
    assert ((cover > 0.1) & (cover < 0.5)).all(), cover


def test_combine_side_weighted_mean():
    feats = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1, 1).expand(1, 2, 1, 1, 4).clone()
    alphas = torch.tensor([[1.0, 1.0, 0.0, 0.25], [1.0, 0.0, 0.0, 0.75]]).T.reshape(1, 4, 2).permute(0, 2, 1)
    alphas = alphas.reshape(1, 2, 1, 1, 4)
    coverage = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 1.0, 1.0]]).reshape(1, 2, 1, 1, 4)
    f, a = tp.combine_side(feats, alphas, coverage)
    assert_close(f.flatten(), torch.tensor([2.0, 1.0, 2.0, 2.5]), atol=1e-3, name="weighted mean")
    assert_close(a.flatten(), torch.tensor([1.0, 1.0, 0.0, 0.75]), name="union")


def centre_sample(texture):
    """What grid_sample(align_corners=False) reads at grid (0, 0) of an even-sized texture:
    the mean of its four centre texels (B, C)."""
    h, w = texture.shape[-2:]
    return texture[..., h // 2 - 1:h // 2 + 1, w // 2 - 1:w // 2 + 1].mean((-1, -2))


def test_alpha_is_coverage_times_uv_mask():
    verts, faces, uv, uv_faces = ellipsoid_head()
    uv_mask = torch.zeros(1, 1, 32, 32)
    uv_mask[..., :16] = 1.0  # u < 0.5: the subject's right half (x < 0)
    ren = tp.render_views(verts[None], faces, uv, uv_faces, uv_mask, closed_mouth_landmarks(), uv_ramp(32), 64,
                          views=("front",), rasterize_impl="ref")
    front_alpha, front_u = ren.alphas[0, 0, 0], ren.features[0, 0, 0]
    covered = ren.coverage[0, 0, 0] > 0
    left = covered & (front_u < 0.45)
    assert int(left.sum()) > 50
    assert_close(front_alpha[left], torch.ones(int(left.sum())), name="mask 1")
    assert float(front_alpha[covered & (front_u > 0.55)].abs().max()) == 0.0
    assert float(front_alpha[~covered].abs().max()) == 0.0
    # grid x < 0 is the subject's right (x < 0): u < 0.5 there
    assert float(front_alpha[:, :28].mean()) > 0.05 and float(front_alpha[:, 36:].max()) == 0.0


def test_uncovered_pixels_read_the_texture_at_grid_origin():
    """As published: the rasteriser leaves UV 0 (grid (0, 0), the texture's centre) off the mesh."""
    verts, faces, uv, uv_faces = ellipsoid_head()
    tex = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    verts2 = torch.stack([verts, verts * 1.1])
    ren = tp.render_views(verts2, faces, uv, uv_faces, None, closed_mouth_landmarks(2), tex, 40,
                          rasterize_impl="ref")
    expect = centre_sample(tex)  # (2, 3)
    uncovered = ren.coverage[:, :, 0] == 0  # (B, N, R, R)
    assert int(uncovered.sum()) > 1000 and bool((ren.alphas[:, :, 0][uncovered] == 0).all())
    for b in range(2):
        for v in range(4):
            got = ren.features[b, v][:, uncovered[b, v]]  # (C, K)
            assert_close(got, expect[b, :, None].expand_as(got), atol=1e-6, name=f"item {b} view {v}")
    out = tp.build_texture_planes(verts2, faces, uv, uv_faces, None, closed_mouth_landmarks(2), tex, 40,
                                  rasterize_impl="ref")
    off = out.alphas[:, :, 0] == 0
    for b in range(2):
        for slot in range(3):  # the combined side plane too
            got = out.planes[b, slot][:, off[b, slot]]
            assert_close(got, expect[b, :, None].expand_as(got), atol=1e-5, name=f"item {b} slot {slot}")


def _holed_ellipsoid_and_lips():
    """The ellipsoid with a mouth-sized hole in its front, and inner-lip landmarks around it."""
    verts, faces, uv, uv_faces = ellipsoid_head(60, 40)
    centroid = verts[faces].mean(1)
    hole = (centroid[:, 0].abs() < 0.03) & ((centroid[:, 1] + 0.05).abs() < 0.015) & (centroid[:, 2] > 0)
    keep = ~hole
    lms = closed_mouth_landmarks()
    ang = torch.linspace(0, 2 * math.pi, 9)[:-1]
    lms[0, 60:68, 0] = 0.03 * torch.cos(ang)
    lms[0, 60:68, 1] = -0.05 + 0.015 * torch.sin(ang)
    lms[0, 60:68, 2] = 0.07
    return verts, faces[keep], uv, uv_faces[keep], lms, int(hole.sum())


def _octagon_pixels(lms, res):
    """Pixels strictly inside / outside the inner-lip octagon (with a margin) in the front plane."""
    grid = world_to_plane_coords(flame_to_world(lms[:, 60:68]))[0, 0]  # (8, 2)
    centres = (torch.arange(res) + 0.5) / res * 2 - 1
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    inside = torch.ones(res, res, dtype=torch.bool)
    outside = torch.zeros(res, res, dtype=torch.bool)
    for k in range(8):
        a, b = grid[k], grid[(k + 1) % 8]
        e = (b[0] - a[0]) * (gy - a[1]) - (b[1] - a[1]) * (gx - a[0])
        length = (b - a).norm()
        inside &= e / length > 0.02
        outside |= e / length < -0.02
    return inside, outside


def test_mouth_hole_alpha_one_and_features_from_the_mesh_behind():
    """Published: alpha from the filled mask, features from the mesh rasterisation, which
    culls back faces, so the hole shows nothing of the head's inside: the grid-origin fill."""
    verts, faces, uv, uv_faces, lms, holed = _holed_ellipsoid_and_lips()
    assert holed > 10
    res = 64
    tex = uv_ramp(32)
    out = tp.build_texture_planes(verts[None], faces, uv, uv_faces, None, lms, tex, res, rasterize_impl="ref")
    ren = tp.render_views(verts[None], faces, uv, uv_faces, None, lms, tex, res, views=("front",),
                          rasterize_impl="ref")
    inside, outside = _octagon_pixels(lms, res)
    hole = inside & (ren.depth[0, 0] == float("inf"))  # no front face there: back faces are culled
    assert int(hole.sum()) >= 12
    assert bool((out.alphas[0, 0, 0][inside] == 1).all()), "the mouth interior counts as covered"
    got = out.planes[0, 0][:, hole]
    assert_close(got, centre_sample(tex)[0, :, None].expand_as(got), atol=1e-6, name="hole shows the fill")
    assert_close(out.planes[0, 0][:, hole], torch.full_like(got, 0.5), atol=1e-6, name="uv ramp centre")
    assert float(out.alphas[0, 0, 0][outside & (ren.coverage[0, 0, 0] == 0)].abs().max()) == 0.0
    no_cap = tp.build_texture_planes(verts[None], faces, uv, uv_faces, None, closed_mouth_landmarks(), tex, res,
                                     rasterize_impl="ref")
    assert_close(out.alphas[0, 1:], no_cap.alphas[0, 1:], name="the cap is not in the top or side views")
    assert_close(out.planes, no_cap.planes, name="the cap never changes features")


def test_mouth_cap_does_not_occlude_the_mesh():
    """A cap in front of an intact surface: alpha 1 inside it, features of the surface behind."""
    verts, faces, uv, uv_faces = ellipsoid_head()
    lms = closed_mouth_landmarks()
    ang = torch.linspace(0, 2 * math.pi, 9)[:-1]
    lms[0, 60:68, 0] = 0.03 * torch.cos(ang)
    lms[0, 60:68, 1] = -0.05 + 0.015 * torch.sin(ang)
    lms[0, 60:68, 2] = 0.1  # in front of the ellipsoid surface (z <= 0.09)
    uv_mask = torch.zeros(1, 1, 8, 8)  # mesh alpha 0: only the cap can make alpha 1
    res = 64
    out = tp.build_texture_planes(verts[None], faces, uv, uv_faces, uv_mask, lms, uv_ramp(32), res,
                                  rasterize_impl="ref")
    ref = tp.build_texture_planes(verts[None], faces, uv, uv_faces, uv_mask, closed_mouth_landmarks(),
                                  uv_ramp(32), res, rasterize_impl="ref")
    inside, outside = _octagon_pixels(lms, res)
    assert int(inside.sum()) >= 12
    assert bool((out.alphas[0, 0, 0][inside] == 1).all()), "mouth interior covered in the front alpha"
    assert float(out.alphas[0, 0, 0][outside].abs().max()) == 0.0
    assert_close(out.planes, ref.planes, name="features are the mesh's, cap or not")
    # Those are the surface's UVs (u near 0.5 on the front of the ellipsoid), not a fill.
    assert float((out.planes[0, 0, 0][inside] - 0.5).abs().max()) < 0.1
    assert float(out.planes[0, 0, 1][inside].std()) > 1e-3
    assert float(out.alphas[0, 1:].abs().max()) == 0.0, "the cap is not in the top or side views"


def test_mouth_interior_builtin_flame_open_jaw():
    vertices, faces, uv, uv_faces, uv_mask, landmarks = builtin_flame(jaw=0.35)
    res = 128
    out = tp.build_texture_planes(vertices, faces, uv, uv_faces, uv_mask, landmarks, uv_ramp(64), res,
                                  front_only=True)
    inner = world_to_plane_coords(flame_to_world(landmarks[:, 60:68]))[0, 0]
    centre = inner.mean(0)
    col, row = ((centre + 1) * res / 2).long().tolist()
    assert float(out.alphas[0, 0, 0, row, col]) == 1.0, "centre of the open mouth counts as covered"


def test_front_only_and_gradients():
    verts, faces, uv, uv_faces = ellipsoid_head(20, 10)
    tex = torch.randn(2, 5, 16, 16, requires_grad=True)
    verts2 = torch.stack([verts, verts * 1.1])
    lms = closed_mouth_landmarks(2)
    full = tp.build_texture_planes(verts2, faces, uv, uv_faces, None, lms, tex, 32, rasterize_impl="ref")
    front = tp.build_texture_planes(verts2, faces, uv, uv_faces, None, lms, tex, 32, front_only=True,
                                    rasterize_impl="ref")
    assert_close(front.planes[:, 0], full.planes[:, 0], name="front plane unchanged")
    assert_close(front.alphas[:, 0], full.alphas[:, 0], name="front alpha unchanged")
    assert float(front.alphas[:, 1:].abs().max()) == 0.0 and float(full.alphas[:, 1:].min()) == 0.0
    assert float(full.alphas[:, 1:].max()) == 1.0
    # batch entries are independent: sample 1 alone gives the same planes
    single = tp.build_texture_planes(verts2[1:], faces, uv, uv_faces, None, lms[1:], tex[1:], 32,
                                     rasterize_impl="ref")
    assert_close(single.planes, full.planes[1:], name="batch independence")
    assert not torch.equal(full.alphas[0], full.alphas[1])
    weights = torch.randn_like(full.planes)
    (full.planes * weights).sum().backward()
    assert tex.grad is not None and float(tex.grad[0].abs().sum()) > 0 and float(tex.grad[1].abs().sum()) > 0
    # planes are linear in the texture: <grad, d> equals the change of the loss along d
    d = torch.randn_like(tex)
    with torch.no_grad():
        moved = tp.build_texture_planes(verts2, faces, uv, uv_faces, None, lms, tex + d, 32, rasterize_impl="ref")
        change = ((moved.planes - full.planes) * weights).sum()
    assert_close((tex.grad * d).sum(), change, rtol=1e-3, atol=1e-3, name="directional derivative")


def test_builder_module_matches_function():
    verts, faces, uv, uv_faces = ellipsoid_head(20, 10)
    builder = tp.TexturePlaneBuilder(faces, uv, uv_faces, None, resolution=24, rasterize_impl="ref")
    assert "resolution=24" in repr(builder)
    tex = torch.rand(1, 3, 16, 16)
    a = builder(verts[None], closed_mouth_landmarks(), tex)
    b = tp.build_texture_planes(verts[None], faces, uv, uv_faces, None, closed_mouth_landmarks(), tex, 24,
                                rasterize_impl="ref")
    assert_close(a.planes, b.planes, name="planes")
    assert_close(a.alphas, b.alphas, name="alphas")


def test_bad_input():
    verts, faces, uv, uv_faces = ellipsoid_head(8, 4)
    v, lms, tex = verts[None], closed_mouth_landmarks(), torch.rand(1, 3, 8, 8)
    with pytest.raises(ShapeError, match=r"texture: expected 4 dimensions \(B, C, H, W\), got 3"):
        tp.build_texture_planes(v, faces, uv, uv_faces, None, lms, tex[0], 8)
    with pytest.raises(ShapeError, match=r"landmarks: expected .*\(\*, 68, 3\), got \(1, 67, 3\)"):
        tp.build_texture_planes(v, faces, uv, uv_faces, None, lms[:, :67], tex, 8)
    with pytest.raises(ShapeError, match=r"landmarks: expected shape \(1, 68, 3\), got \(2, 68, 3\)"):
        tp.build_texture_planes(v, faces, uv, uv_faces, None, closed_mouth_landmarks(2), tex, 8)
    with pytest.raises(ValueError, match=r"uv_coords: expected values in \[0, 1\], got range"):
        tp.build_texture_planes(v, faces, uv * 2 - 0.5, uv_faces, None, lms, tex, 8)
    with pytest.raises(ShapeError, match="uv_faces"):
        tp.build_texture_planes(v, faces, uv, uv_faces[:-1], None, lms, tex, 8)
    with pytest.raises(ShapeError, match="uv_mask"):
        tp.build_texture_planes(v, faces, uv, uv_faces, torch.ones(8, 8), lms, tex, 8)
    with pytest.raises(ValueError, match="resolution"):
        tp.build_texture_planes(v, faces, uv, uv_faces, None, lms, tex, 0)
    with pytest.raises(ValueError, match=r"uv_coords: expected values in \[0, 1\]"):
        tp.TexturePlaneBuilder(faces, uv + 1, uv_faces, None)


def test_time_planes_quick_reports_timings():
    pytest.importorskip("next3d.flame")
    from next3d.bench.planes_timing import time_planes

    out = time_planes(["cpu"], quick=True)
    res = out["results"]["cpu"]
    assert out["resolution"] == 64 and out["batch"] == 2 and out["views"] == 4
    assert res["forward_ms"] > 0 and res["forward_ref_raster_ms"] > 0 and res["forward_backward_ms"] > 0
    assert res["speedup_vs_ref"] == pytest.approx(res["forward_ref_raster_ms"] / res["forward_ms"], rel=0.05)


def test_builder_checks_indices_once_and_refuses_a_smaller_mesh():
    from next3d.render.texture_planes import TexturePlaneBuilder

    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    uv = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="uv_faces"):
        TexturePlaneBuilder(faces, uv, torch.tensor([[0, 1, 2], [1, 3, 4]]), None, resolution=8)
    builder = TexturePlaneBuilder(faces, uv, faces.clone(), None, resolution=8)
    assert builder.max_vertex_index == 3
    verts = torch.zeros(1, 3, 3)  # one vertex short of what the faces index
    with pytest.raises(ShapeError, match="V=3"):
        builder(verts, torch.zeros(1, 68, 3), torch.zeros(1, 2, 8, 8))
