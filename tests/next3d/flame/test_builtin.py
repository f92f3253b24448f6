"""The built-in head: file layout, topology, components, UVs and mask, caching."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from next3d.flame import FLAME, load_flame_model
from next3d.flame.builtin import BUILTIN_VERSION, builtin_head_dir
from next3d.flame.builtin.blendshapes import EXPRESSION_NAMES, SHAPE_NAMES
from next3d.flame.builtin.mesh import SKIN, build_head_mesh
from next3d.flame.obj_io import read_obj


def _boundary_loops(faces: np.ndarray):
    directed = Counter()
    for f in faces:
        for i in range(3):
            directed[(int(f[i]), int(f[(i + 1) % 3]))] += 1
    boundary = [e for e in directed if (e[1], e[0]) not in directed]
    nxt = defaultdict(list)
    for a, b in boundary:
        nxt[a].append(b)
    loops, seen = [], set()
    for start, _ in boundary:
        if start in seen:
            continue
        loop, cur = [start], nxt[start][0]
        seen.add(start)
        while cur != start and cur not in seen:
            seen.add(cur)
            loop.append(cur)
            cur = nxt[cur][0]
        loops.append(loop)
    return directed, loops


def test_files_and_size(builtin_root, builtin_data):
    folder = builtin_root / BUILTIN_VERSION
    for name in ("generic_model.pkl", "head_template.obj", "landmark_embedding.npy", "uv_face_eye_mask.png"):
        assert (folder / name).is_file(), name
    assert 3000 <= builtin_data.num_vertices <= 8000
    assert builtin_data.num_shape >= 50 and builtin_data.num_expression >= 20
    assert builtin_data.num_shape == len(SHAPE_NAMES) and builtin_data.num_expression == len(EXPRESSION_NAMES)
    assert builtin_data.name == "builtin"
    obj = read_obj(folder / "head_template.obj")
    np.testing.assert_allclose(obj.vertices, builtin_data.v_template, atol=2e-6)
    # Deterministic: a fresh build gives the same template.
    np.testing.assert_allclose(build_head_mesh().vertices, builtin_data.v_template, atol=1e-6)


def test_head_proportions_match_flame(builtin_data):
    v = builtin_data.v_template
    lo, hi = v.min(0), v.max(0)
    # FLAME's template (DECA obj shifted by -1.5 in y): x +-0.104, y -0.187..0.127, z -0.132..0.090.
    assert abs(hi[1] - 0.127) < 0.01 and abs(lo[1] + 0.187) < 0.01
    assert 0.08 < hi[0] < 0.115 and abs(lo[0] + hi[0]) < 1e-6
    assert 0.08 < hi[2] < 0.1 and -0.14 < lo[2] < -0.11
    tip = v[np.argmax(v[:, 2])]
    assert abs(tip[0]) < 1e-6 and abs(tip[1]) < 0.01  # the nose tip is the most forward point


def test_closed_except_neck_and_consistently_oriented(builtin_data):
    directed, loops = _boundary_loops(builtin_data.faces)
    assert max(directed.values()) == 1  # every directed edge once: consistent orientation, manifold
    v = builtin_data.v_template
    # Only the neck is open (the mouth opening is closed by the mouth pocket).
    assert len(loops) == 1
    assert np.allclose(v[loops[0], 1], v[:, 1].min())
    # Outward orientation of the skin: signed volume of the closed-up mesh is positive.
    tri = v[builtin_data.faces]
    vol = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert vol > 0.001  # about 2 litres of head (the neck opening adds a small error)


def test_mouth_cut_separates_lips(builtin_data):
    """The lower lip row duplicates the upper one: same positions, different vertices."""
    v = builtin_data.v_template
    _, counts = np.unique(np.round(v, 9), axis=0, return_counts=True)
    assert (counts == 2).sum() >= 8  # the cut's inner columns


def _face_region(flame):
    v = flame.v_template.numpy()
    f = flame.faces.numpy()
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = tri.mean(1)
    region = (n[:, 2] > 0.35) & (np.abs(c[:, 0]) < 0.06) & (c[:, 1] > -0.09) & (c[:, 1] < 0.06) & (c[:, 2] > 0.02)
    skin = (build_head_mesh().part[f] == SKIN).all(1)  # not the eyeballs or the mouth pocket
    return region & skin


@pytest.mark.parametrize("kind", ["shape", "expression"])
def test_components_change_mesh_and_keep_face_forward(builtin_data, kind):
    flame = FLAME(builtin_data)
    count = flame.num_shape if kind == "shape" else flame.num_expression
    region = _face_region(flame)
    faces = flame.faces
    assert region.sum() > 1000
    params = torch.zeros(2 * count, count)
    params[torch.arange(count), torch.arange(count)] = 2.0
    params[count + torch.arange(count), torch.arange(count)] = -2.0
    with torch.no_grad():
        verts = flame(**{kind: params}).vertices
    moved = (verts[:count] - flame.v_template).norm(dim=2).amax(dim=1)
    assert bool((moved > 1e-3).all()), f"{kind} components not moving: {torch.where(moved <= 1e-3)[0].tolist()}"
    assert float(moved.max()) < 0.012  # +-2 stays within about a centimetre
    tri = verts[:, faces[torch.from_numpy(region)]]
    n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    nz = n[..., 2] / n.norm(dim=-1)
    worst = nz.amin(dim=1)
    assert bool((worst > 0.0).all()), f"{kind}: face normals flip for components {torch.where(worst <= 0)[0].tolist()}"


def test_uv_layout_and_mask(builtin_data):
    uv, uvf, mask = builtin_data.uv_coords, builtin_data.uv_faces, builtin_data.uv_mask
    assert uv.min() >= 0 and uv.max() <= 1 and uvf.shape == builtin_data.faces.shape
    assert 0.5 < (mask > 0.5).mean() < 0.95  # the face fills most of the square
    size = mask.shape[0]

    def mask_at(vertex):
        face = np.where(builtin_data.faces == vertex)
        u, v = uv[uvf[face][0]]
        return mask[min(int((1 - v) * size), size - 1), min(int(u * size), size - 1)]

    verts = builtin_data.v_template
    assert mask_at(int(np.argmax(verts[:, 2]))) > 0.5  # nose tip
    assert mask_at(int(np.argmin(verts[:, 2]))) < 0.5  # back of the head
    assert mask_at(int(np.argmax(verts[:, 1]))) < 0.5  # crown
    # UV triangles of the face do not fold over: positive signed area for front-facing skin.
    region = _face_region(FLAME(builtin_data))
    t = uv[uvf[region]]
    area = (t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 2, 0] - t[:, 0, 0]) * (t[:, 1, 1] - t[:, 0, 1])
    assert (area > 0).mean() > 0.99


def test_builtin_dir_env_and_loader(builtin_root, monkeypatch):
    monkeypatch.setenv("NEXT3D_BUILTIN_HEAD_DIR", str(builtin_root))
    monkeypatch.delenv("NEXT3D_FLAME_DIR", raising=False)
    assert builtin_head_dir() == builtin_root / BUILTIN_VERSION
    data = load_flame_model()
    assert data.name == "builtin" and data.source == str(builtin_root / BUILTIN_VERSION)
    assert not list(builtin_root.glob("*.tmp-*"))  # no leftover temporary folders
