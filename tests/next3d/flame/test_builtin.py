"""The built-in head: file layout, topology, components, UVs and mask, caching."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

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


def test_cache_folder_is_keyed_by_generator_sources(tmp_path):
    """A change to any generator source gives a new cache folder, so a stale head is never loaded."""
    import shutil

    import next3d.flame.builtin as builtin

    assert BUILTIN_VERSION == f"v{builtin.GENERATOR_VERSION}-{builtin.generator_hash()}"
    copy = tmp_path / "src"
    shutil.copytree(Path(builtin.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert builtin.generator_hash(copy) == builtin.generator_hash()
    path = copy / "features.py"
    path.write_text(path.read_text().replace("EYE_RADIUS = 0.0118", "EYE_RADIUS = 0.0119"))
    assert builtin.generator_hash(copy) != builtin.generator_hash()


def _frontmost_part(vertices, faces, part, xy):
    from next3d.flame.builtin.landmarks import cast_front

    f_idx, _ = cast_front(vertices, faces, np.asarray(xy, np.float64))
    return part[faces[f_idx]].max(1)


def test_eyelids_cover_the_eyeball_and_close(builtin_data):
    """Frontal rays: lid skin above and below the opening, eyeball in it; +2 eye_close covers it with skin."""
    from next3d.flame.builtin.features import EYE_CENTER
    from next3d.flame.builtin.mesh import EYE_L, EYE_R

    part = build_head_mesh().part
    v, f = builtin_data.v_template, builtin_data.faces
    for sign, code in ((1.0, EYE_L), (-1.0, EYE_R)):
        ex, ey = sign * EYE_CENTER[0], EYE_CENTER[1]
        hits = _frontmost_part(v, f, part, [[ex, ey + 0.0085], [ex, ey + 0.001], [ex + 0.004, ey - 0.002],
                                            [ex, ey - 0.0075]])
        assert hits.tolist() == [SKIN, code, code, SKIN]
    flame = FLAME(builtin_data)
    expr = torch.zeros(2, flame.num_expression)
    expr[0, EXPRESSION_NAMES.index("eye_close_left")] = 2.0
    expr[1, EXPRESSION_NAMES.index("eye_close_right")] = 2.0
    with torch.no_grad():
        closed = flame(expression=expr).vertices.numpy()
    eyes = part != SKIN
    for i, (sign, other) in enumerate(((1.0, EYE_R), (-1.0, EYE_L))):
        assert np.abs(closed[i][eyes] - v[eyes]).max() < 1e-7  # the lids move, never the eyeballs
        ex, ey = sign * EYE_CENTER[0], EYE_CENTER[1]
        hits = _frontmost_part(closed[i], f, part, [[ex + dx, ey + dy] for dx in (-0.006, 0, 0.006)
                                                   for dy in (-0.002, 0.0, 0.002)])
        assert (hits == SKIN).all(), hits
        hits = _frontmost_part(closed[i], f, part, [[-ex, ey + 0.001]])
        assert hits.tolist() == [other]  # the other eye stays open


def _max_dihedral_deg(v, f, lo, hi):
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = tri.mean(1)
    sel = np.where(((c > lo) & (c < hi)).all(1))[0]
    by_edge = defaultdict(list)
    for i in sel:
        for k in range(3):
            by_edge[tuple(sorted((int(f[i, k]), int(f[i, (k + 1) % 3]))))].append(i)
    pairs = np.array([p for p in by_edge.values() if len(p) == 2])
    return np.degrees(np.arccos(np.clip((n[pairs[:, 0]] * n[pairs[:, 1]]).sum(1), -1, 1))), len(sel)


def test_nose_base_is_smooth(builtin_data):
    """Under the nose (tip, alae, columella) neighbouring faces bend gently: no pits or wrinkles."""
    angles, count = _max_dihedral_deg(builtin_data.v_template, builtin_data.faces,
                                      np.array([-0.025, -0.024, 0.05]), np.array([0.025, 0.004, 0.1]))
    assert count > 300  # enough faces to shape the nose base
    assert np.percentile(angles, 95) < 35 and angles.max() < 70, (np.percentile(angles, 95), angles.max())


def test_landmark_proportions_match_flame(builtin_data):
    """Template landmarks sit near FLAME's (template with DECA's embedding): within 6 mm."""
    v, f = builtin_data.v_template, builtin_data.faces
    emb = builtin_data.landmarks
    lmk = np.einsum("ij,ijk->ik", emb.full_bary.reshape(-1, 3), v[f[emb.full_faces.reshape(-1)]])
    flame = {8: (0.001, -0.086, 0.057), 27: (0.0, 0.029, 0.065), 30: (0.0, 0.0, 0.0895), 33: (0.0, -0.017, 0.075),
             36: (-0.045, 0.024, 0.041), 39: (-0.019, 0.024, 0.049), 48: (-0.024, -0.039, 0.061),
             51: (0.0, -0.0325, 0.077), 57: (0.0, -0.045, 0.075)}
    err = {k: float(np.linalg.norm(lmk[k] - np.array(p))) for k, p in flame.items()}
    assert max(err.values()) < 0.006, err


def test_landmarks_mirror_and_the_jaw_contour_sits_on_the_outline(builtin_data):
    """The template's 68 points are left/right mirror images (iBUG pairs), the frontal jaw contour
    is where it was measured (landmarks.JAW_CONTOUR: on the cheek and jaw outline, the top at eye
    level), and the inner-lip points lie on the lip cut."""
    from next3d.flame.builtin import features as ft
    from next3d.flame.builtin.landmarks import INNER_LIP_X, JAW_CONTOUR
    from training.dataset_mirror import IBUG_MIRROR

    v, f = builtin_data.v_template, builtin_data.faces
    emb = builtin_data.landmarks
    lmk = np.einsum("ij,ijk->ik", emb.full_bary.reshape(-1, 3), v[f[emb.full_faces.reshape(-1)]])
    np.testing.assert_allclose(lmk[IBUG_MIRROR] * [-1, 1, 1], lmk, atol=2e-4)
    np.testing.assert_allclose(np.abs(lmk[:9, :2]), np.abs(JAW_CONTOUR), atol=3e-4)
    assert abs(lmk[0, 1] - ft.EYE_CENTER[1]) < 0.004  # the contour starts at eye level
    # The contour's top spans the face, well outside the outer eye corners (v2's was 9 mm narrower).
    assert (lmk[:8, 0] < -0.015).all() and (lmk[9:17, 0] > 0.015).all()
    assert (lmk[16, 0] - lmk[0, 0]) - (lmk[45, 0] - lmk[36, 0]) > 0.055
    np.testing.assert_allclose(np.abs(lmk[[61, 63, 65, 67], 0]), INNER_LIP_X, atol=1.5e-3)
    np.testing.assert_allclose(lmk[60:68, 1], ft.MOUTH_Y, atol=1.5e-3)
