"""The rasteriser: reference vs compiled kernels (exact face ids), values, culling, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import DEVICES, assert_close
from next3d.render import cameras
from next3d.render.projection import orthographic, orthographic_front_winding, perspective_from_label
from next3d.render.rasterize import Fragments, _load_cpu, _load_cuda, rasterize, rasterize_ref
from torch_utils.misc import ShapeError


def compiled_impl(device: str) -> str:
    loader = _load_cuda if device == "cuda" else _load_cpu
    if loader() is None:
        pytest.skip(f"the compiled rasteriser for {device} did not build (see the printed reason)")
    return device


def impls_on_cpu():
    out = ["ref"]
    if _load_cpu() is not None:
        out.append("cpu")
    return out


def assert_same(a: Fragments, b: Fragments, name: str):
    mismatch = int((a.face_idx != b.face_idx).sum())
    assert mismatch == 0, f"{name}: face_idx differs at {mismatch} pixels"
    assert_close(b.bary.cpu(), a.bary.cpu(), rtol=0, atol=1e-6, name=f"{name} bary")
    assert_close(b.depth.cpu(), a.depth.cpu(), rtol=1e-6, atol=1e-6, name=f"{name} depth")


# ------------------------------------------------------------------------------------------
# Scenes.


def random_soup(batch=2, faces=60, seed=0, spread=1.4, size=0.5):
    """Random triangles overlapping each other, some partly or fully outside the image."""
    gen = torch.Generator().manual_seed(seed)
    centre = (torch.rand(batch, faces, 1, 3, generator=gen) * 2 - 1) * spread
    tri = centre + size * torch.randn(batch, faces, 3, 3, generator=gen)
    return tri.reshape(batch, faces * 3, 3), torch.arange(faces * 3).view(faces, 3)


def fan(batch=1, spokes=12, seed=1):
    """Triangle fans around a vertex at a pixel centre, with spokes through pixel centres:
    many pixels lie exactly on shared edges."""
    gen = torch.Generator().manual_seed(seed)
    angles = torch.linspace(0, 2 * math.pi, spokes + 1)[:-1]
    rim = torch.stack([0.75 * torch.cos(angles), 0.75 * torch.sin(angles)], -1)
    rim = (rim * 8).round() / 8 + 1 / 16  # on the pixel-centre lattice of a 16 x 16 image
    centre = torch.tensor([[1 / 16, 1 / 16]])
    xy = torch.cat([centre, rim])
    verts = torch.cat([xy, torch.zeros(spokes + 1, 1)], -1).repeat(batch, 1, 1)
    verts[..., 2] = torch.rand(batch, spokes + 1, generator=gen).round()  # few distinct depths
    # Alternate the winding so that culling keeps half of them.
    faces = torch.tensor([[0, 1 + k, 1 + (k + 1) % spokes] if k % 2 else [0, 1 + (k + 1) % spokes, 1 + k]
                          for k in range(spokes)])
    return verts, faces


def equal_depth_stack(batch=2):
    """Copies of the same quad at exactly the same depth, in both windings: ties everywhere.

    z = 0 makes the interpolated float64 depth exactly equal for every face (coplanar faces
    at other depths can differ in the last bit, and then depth, not the index, decides)."""
    quad = torch.tensor([[-0.8, -0.7, 0.0], [0.6, -0.8, 0.0], [0.7, 0.9, 0.0], [-0.9, 0.6, 0.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [2, 1, 0], [3, 2, 0], [0, 1, 3], [1, 2, 3]])
    return quad.repeat(batch, 1, 1), faces


def grid_sphere(n_lat=12, n_lon=16, radius=0.8):
    """A UV sphere wound counter-clockwise seen from outside (y up, z towards the viewer)."""
    lat = torch.linspace(0, math.pi, n_lat + 1)
    lon = torch.linspace(0, 2 * math.pi, n_lon + 1)[:-1]
    th, ph = torch.meshgrid(lat, lon, indexing="ij")
    verts = torch.stack([torch.sin(th) * torch.sin(ph), torch.cos(th), torch.sin(th) * torch.cos(ph)], -1)
    verts = radius * verts.reshape(-1, 3)
    faces = []
    for i in range(n_lat):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            faces += [[a, c, b], [b, c, d]]
    faces = torch.tensor(faces)
    # Drop the degenerate pole faces' repeated vertices? No: they are zero-area and must be skipped.
    return verts, faces


def read_obj(path):
    verts, faces = [], []
    with open(path) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                faces.append([int(p.split("/")[0]) - 1 for p in parts[1:4]])
    return torch.tensor(verts), torch.tensor(faces)


# ------------------------------------------------------------------------------------------
# Reference vs compiled.


SCENES = {
    "soup": lambda: random_soup(),
    "soup_outside": lambda: random_soup(spread=3.0, size=0.8, seed=3),
    "fan": lambda: fan(batch=2),
    "equal_depth": lambda: equal_depth_stack(),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("cull", [False, True])
def test_compiled_matches_reference(device, scene, cull):
    impl = compiled_impl(device)
    verts, faces = SCENES[scene]()
    verts, faces = verts.to(device), faces.to(device)
    for size in [(16, 16), (13, 21)]:
        ref = rasterize(verts, faces, size, cull_backfaces=cull, impl="ref")
        out = rasterize(verts, faces, size, cull_backfaces=cull, impl=impl)
        assert ref.mask.any(), "the scene must cover something"
        assert_same(ref, out, f"{scene} {size} cull={cull}")


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_matches_reference_perspective_and_per_batch_faces(device):
    impl = compiled_impl(device)
    verts, faces = random_soup(batch=1, faces=40, seed=5)
    verts = verts.repeat(3, 1, 1)
    gen = torch.Generator().manual_seed(2)
    w = (0.5 + torch.rand(verts.shape[1], generator=gen)).repeat(3, 1)
    faces_b = torch.stack([faces, faces.flip(1), faces.roll(1, 0)])  # (B, F, 3)
    args = dict(clip_w=w.to(device), perspective_correct=True)
    ref = rasterize(verts.to(device), faces_b.to(device), (24, 20), impl="ref", **args)
    out = rasterize(verts.to(device), faces_b.to(device), (24, 20), impl=impl, **args)
    assert_same(ref, out, "perspective")
    # Per-batch faces really are per batch: item 1 is item 0 with reversed winding, same coverage.
    assert torch.equal(ref.face_idx[0].cpu() >= 0, ref.face_idx[1].cpu() >= 0)


@pytest.mark.parametrize("device", DEVICES)
def test_ties_go_to_the_lower_face_index(device):
    impl = compiled_impl(device)
    verts, faces = equal_depth_stack(batch=1)
    for which in ["ref", impl]:
        frags = rasterize(verts.to(device), faces.to(device), 12, impl=which)
        ids = frags.face_idx[frags.mask].cpu()
        # Faces 0 and 1 cover the quad and share its diagonal: nothing above index 1 may win.
        assert ids.max() <= 1 and set(ids.tolist()) == {0, 1}, which
        # Faces 4 and 5 cover the same quad, but lose every tie: drop 0..3 and they appear.
        later = rasterize(verts.to(device), faces[4:].to(device), 12, impl=which)
        assert torch.equal(later.mask.cpu(), frags.mask.cpu()), which


def test_head_mesh_agrees_and_culls_by_convention(flame_deca_dir):
    verts, faces = read_obj(flame_deca_dir / "head_template.obj")
    verts = verts - verts.mean(0)  # the template sits around y = 1.5 m
    world = 2.5 * verts[None]
    front = orthographic(world, axes=(0, 1), depth_axis=2, depth_sign=-1, scale=2.0)
    c = cameras.orbit_label(0.0, 0.0, pivot=(0.0, 0.0, 0.0))
    persp, w = perspective_from_label(world, c)
    impls = impls_on_cpu()
    for name, ndc, kwargs in [("ortho", front, {}), ("persp", persp, dict(clip_w=w, perspective_correct=True))]:
        ref = rasterize(ndc, faces, 64, impl="ref", **kwargs)
        assert ref.mask.float().mean() > 0.1, name
        for impl in impls[1:]:
            assert_same(ref, rasterize(ndc, faces, 64, impl=impl, **kwargs), f"head {name} {impl}")
    # FLAME winds faces counter-clockwise seen from outside: from the front, the visible
    # (nearest) faces must survive back-face culling with the projection's front winding.
    for name, ndc, winding, kwargs in [("persp", persp, "ccw", dict(clip_w=w)),
                                       ("ortho", front, orthographic_front_winding((0, 1), 2, -1), {})]:
        visible = rasterize(ndc, faces, 64, **kwargs)
        culled = rasterize(ndc, faces, 64, cull_backfaces=True, front_winding=winding, **kwargs)
        same = (culled.face_idx == visible.face_idx)[visible.mask].float().mean()
        assert same > 0.97, f"{name}: only {same:.3f} of the visible faces are front-facing"
        wrong = rasterize(ndc, faces, 64, cull_backfaces=True, front_winding="cw" if winding == "ccw" else "ccw",
                          **kwargs)
        kept = (wrong.face_idx == visible.face_idx)[visible.mask].float().mean()
        assert kept < 0.1, f"{name}: the opposite winding should drop the visible faces, kept {kept:.3f}"


# ------------------------------------------------------------------------------------------
# Values.


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_big_triangle_covers_exactly_the_inside_centres(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    size = (20, 30)
    # Right triangle x >= -0.71, y >= -0.61, x + y <= 0.51 (no pixel centre within 1e-3 of an edge).
    verts = torch.tensor([[[-0.71, -0.61, 0.0], [1.12, -0.61, 0.0], [-0.71, 1.22, 0.0]]])
    frags = rasterize(verts, torch.tensor([[0, 1, 2]]), size, impl=impl)
    cols = torch.arange(size[1], dtype=torch.float64)
    rows = torch.arange(size[0], dtype=torch.float64)
    px = ((2 * cols + 1) / size[1] - 1)[None, :]
    py = ((2 * rows + 1) / size[0] - 1)[:, None]
    expected = (px >= -0.71) & (py >= -0.61) & (px + py <= 0.51)
    assert torch.equal(frags.mask[0], expected)
    assert int(expected.sum()) > 50


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_bary_reproduce_pixel_centres_and_depth(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    verts, faces = random_soup(batch=2, faces=30, seed=7)
    # Put every vertex on the plane z = 0.3 x - 0.2 y + 0.5: depth is that plane at the centres.
    verts[..., 2] = 0.3 * verts[..., 0] - 0.2 * verts[..., 1] + 0.5
    h, w = 18, 22
    frags = rasterize(verts, faces, (h, w), impl=impl)
    m = frags.mask
    assert m.float().mean() > 0.3
    assert_close(frags.bary.sum(-1)[m], torch.ones(int(m.sum())), atol=1e-5, name="bary sum")
    corners = verts[torch.arange(2)[:, None, None, None], faces[frags.face_idx.clamp(min=0)]]  # (B,H,W,3,3)
    pos = (frags.bary[..., None] * corners).sum(-2)
    px = ((2 * torch.arange(w) + 1) / w - 1).expand(2, h, w)
    py = ((2 * torch.arange(h) + 1) / h - 1)[:, None].expand(2, h, w)
    assert_close(pos[..., 0][m], px[m], atol=1e-5, name="x")
    assert_close(pos[..., 1][m], py[m], atol=1e-5, name="y")
    assert_close(frags.depth[m], (0.3 * px - 0.2 * py + 0.5)[m], atol=1e-5, name="depth")
    assert torch.isinf(frags.depth[~m]).all() and (frags.bary[~m] == 0).all()
    assert (frags.bary[m] >= -1e-6).all()


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_nearest_face_wins(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    tri = torch.tensor([[-0.9, -0.9], [0.9, -0.9], [0.0, 0.9]])
    verts = torch.cat([torch.cat([tri, torch.full((3, 1), 0.7)], 1), torch.cat([tri * 0.5, torch.full((3, 1), 0.2)], 1)])
    frags = rasterize(verts[None], torch.tensor([[0, 1, 2], [3, 4, 5]]), 16, impl=impl)
    assert (frags.face_idx == 1).sum() > 10 and (frags.face_idx == 0).sum() > 10
    assert_close(frags.depth[frags.face_idx == 1], torch.full(((frags.face_idx == 1).sum(),), 0.2), name="near")


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_backface_culling_drops_reversed_faces(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    # On screen (y down): (-0.8,-0.8) -> (0.8,-0.8) -> (0,0.8) runs clockwise (area > 0).
    verts = torch.tensor([[[-0.8, -0.8, 0.5], [0.8, -0.8, 0.5], [0.0, 0.8, 0.5]]])
    cw, ccw = torch.tensor([[0, 1, 2]]), torch.tensor([[0, 2, 1]])
    assert rasterize(verts, cw, 8, impl=impl).mask.sum() > 10
    assert rasterize(verts, cw, 8, cull_backfaces=True, impl=impl).mask.sum() == 0
    assert rasterize(verts, ccw, 8, cull_backfaces=True, impl=impl).mask.sum() > 10
    assert rasterize(verts, ccw, 8, cull_backfaces=True, front_winding="cw", impl=impl).mask.sum() == 0
    assert rasterize(verts, cw, 8, cull_backfaces=True, front_winding="cw", impl=impl).mask.sum() > 10


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_perspective_correct_barycentrics_on_a_tilted_plane(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    # A tilted square seen by the frontal camera; after perspective correction, the interpolated
    # world point must lie on the pixel's ray, and the depth equal the ray-plane intersection.
    c = cameras.orbit_label(0.0, 0.0, radius=2.7, pivot=(0.0, 0.0, 0.0))
    corners = torch.tensor([[-0.4, -0.4, -0.5], [0.4, -0.4, -0.5], [0.4, 0.4, 0.5], [-0.4, 0.4, 0.5]])[None]
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    ndc, w = perspective_from_label(corners, c)
    h = wd = 24
    frags = rasterize(ndc, faces, (h, wd), clip_w=w, perspective_correct=True, impl=impl)
    plain = rasterize(ndc, faces, (h, wd), impl=impl)
    m = frags.mask
    assert m.sum() > 100 and torch.equal(m, plain.mask)
    world = (frags.bary[..., None] * corners[0][faces[frags.face_idx.clamp(min=0)]]).sum(-2)  # (1,H,W,3)
    uvz = cameras.project(world.reshape(1, -1, 3), c).reshape(1, h, wd, 3)
    px = ((2 * torch.arange(wd) + 1) / wd - 1).expand(1, h, wd)
    py = ((2 * torch.arange(h) + 1) / h - 1)[:, None].expand(1, h, wd)
    assert_close((2 * uvz[..., 0] - 1)[m], px[m], atol=1e-4, name="ray x")
    assert_close((2 * uvz[..., 1] - 1)[m], py[m], atol=1e-4, name="ray y")
    # Analytic depth along the ray of the pixel: camera at z = 2.7 looking down -z, the plane
    # z_world = 1.25 * y_world; with the ray through (x_n, y_n) = (ndc / 2 / focal) per unit depth,
    # a point at depth d is (d x_n, -d y_n, 2.7 - d), so 2.7 - d = -1.25 d y_n.
    yn = py / 2 / cameras.FFHQ_FOCAL
    expected = 2.7 / (1 - 1.25 * yn)
    assert_close(frags.depth[m], expected[m], rtol=1e-5, atol=1e-5, name="depth")
    # Without the correction the barycentrics differ measurably on this tilted plane.
    assert (plain.bary - frags.bary)[m].abs().max() > 1e-3


# ------------------------------------------------------------------------------------------
# Bad input and edge cases, on the CPU for every implementation.


@pytest.mark.parametrize("impl", ["ref", "cpu", "auto"])
def test_empty_meshes(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    for verts, faces in [(torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.long)),
                         (torch.rand(2, 5, 3), torch.zeros(0, 3, dtype=torch.long)),
                         (torch.rand(2, 5, 3), torch.zeros(2, 0, 3, dtype=torch.long))]:
        frags = rasterize(verts, faces, (4, 6), impl=impl)
        assert frags.face_idx.shape == (2, 4, 6) and frags.bary.shape == (2, 4, 6, 3)
        assert (frags.face_idx == -1).all() and torch.isinf(frags.depth).all() and (frags.bary == 0).all()
        assert frags.face_idx.dtype == torch.int64 and frags.bary.dtype == torch.float32


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_degenerate_and_nan_faces_are_skipped(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    verts = torch.tensor([[[-0.9, -0.9, 0.1], [0.9, -0.9, 0.1], [0.0, 0.9, 0.1],    # good, far
                           [-0.9, -0.9, 0.0], [0.9, 0.9, 0.0], [0.0, 0.0, 0.0],      # collinear, near
                           [-0.5, -0.5, 0.0], [-0.5, -0.5, 0.0], [0.5, 0.5, 0.0],    # repeated vertex
                           [float("nan"), 0.0, 0.0], [0.9, 0.9, 0.0], [-0.9, 0.9, 0.0],
                           [-0.9, -0.9, 0.0], [0.9, 0.9, float("inf")], [-0.9, 0.9, 0.0]]])
    faces = torch.arange(15).view(5, 3)
    frags = rasterize(verts, faces, 10, impl=impl)
    good = rasterize(verts[:, :3], faces[:1], 10, impl=impl)
    assert torch.equal(frags.face_idx, good.face_idx) and good.mask.sum() > 20
    assert torch.isfinite(frags.depth[frags.mask]).all() and torch.isfinite(frags.bary).all()
    # With clip_w, faces touching w <= 0 are skipped too.
    w = torch.ones(1, 15)
    w[0, 1] = 0.0
    assert rasterize(verts, faces, 10, clip_w=w, impl=impl).mask.sum() == 0


@pytest.mark.parametrize("impl", ["ref", "cpu"])
def test_bad_input_is_a_clear_error(impl):
    if impl == "cpu":
        compiled_impl("cpu")
    verts = torch.rand(1, 4, 3)
    with pytest.raises(ValueError, match=r"max index 4.*V=4"):
        rasterize(verts, torch.tensor([[0, 1, 4]]), 8, impl=impl)
    with pytest.raises(ValueError, match=r"out of range.*V=4"):
        rasterize(verts, torch.tensor([[0, -1, 2]]), 8, impl=impl)
    with pytest.raises(ValueError, match="image_size"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), 0, impl=impl)
    with pytest.raises(ValueError, match="image_size"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), (8, 0), impl=impl)
    with pytest.raises(ValueError, match="clip_w"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), 8, perspective_correct=True, impl=impl)
    with pytest.raises(ShapeError, match="verts_ndc"):
        rasterize(torch.rand(4, 3), torch.tensor([[0, 1, 2]]), 8, impl=impl)
    with pytest.raises(ShapeError, match="faces"):
        rasterize(verts, torch.tensor([[0.0, 1.0, 2.0]]), 8, impl=impl)
    with pytest.raises(ShapeError, match="clip_w"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), 8, clip_w=torch.ones(1, 3), impl=impl)
    with pytest.raises(ValueError, match="front_winding"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), 8, front_winding="up", impl=impl)
    with pytest.raises(ValueError, match="impl"):
        rasterize(verts, torch.tensor([[0, 1, 2]]), 8, impl="fast")


def test_impl_cuda_on_cpu_tensors_is_refused():
    with pytest.raises(ValueError, match="CPU"):
        rasterize(torch.rand(1, 3, 3), torch.tensor([[0, 1, 2]]), 8, impl="cuda")


def test_reference_is_the_same_function():
    verts, faces = random_soup(batch=1, faces=20, seed=11)
    a = rasterize_ref(verts, faces, 12)
    b = rasterize(verts, faces, 12, impl="ref")
    assert torch.equal(a.face_idx, b.face_idx) and torch.equal(a.bary, b.bary)
    assert a.image_size == (12, 12) and a.mask.dtype == torch.bool


def test_closed_sphere_from_outside_shows_only_front_faces():
    verts, faces = grid_sphere()
    # Perspective from the front: every visible face is front-facing, about half are culled.
    c = cameras.orbit_label(0.0, 0.0, pivot=(0.0, 0.0, 0.0))
    ndc, w = perspective_from_label(verts[None], c)
    full = rasterize(ndc, faces, 32, clip_w=w)
    culled = rasterize(ndc, faces, 32, clip_w=w, cull_backfaces=True)
    assert torch.equal(full.face_idx, culled.face_idx) and full.mask.sum() > 200
    # The far hemisphere alone (near faces dropped by culling with the opposite winding).
    back = rasterize(ndc, faces, 32, clip_w=w, cull_backfaces=True, front_winding="cw")
    assert torch.equal(back.mask, full.mask)
    assert (back.depth[back.mask] > full.depth[full.mask]).all()
