"""Assemble the built-in head mesh: skin grid with the lip cut, eyeballs and the mouth pocket.

Parts (vertex `part` codes): SKIN (the grid, including the lower-lip duplicates of the
mouth row), EYE_L / EYE_R (closed spheres, pole towards +z), MOUTH (a pocket hung from
the lip cut: its first loop is the cut itself, so skin + pocket is closed except at the
neck). Faces are oriented outwards (for the pocket: into the mouth cavity).
Per-vertex attributes used by the rig, blendshapes, UVs and landmarks:
`phi`, `t` (grid coordinates; the pocket and eyes get the values of the point they hang
from), `lip_side` (+1 upper lip / upper pocket, -1 lower, 0 otherwise), `eval_point`
(where deformation fields are evaluated: the eyeball centre for eyeball vertices, so
they move rigidly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from next3d.flame.builtin import eyelids
from next3d.flame.builtin import features as ft
from next3d.flame.builtin.profile import T_MOUTH, column_angles, pole_point, ring_points, row_parameters

SKIN, EYE_L, EYE_R, MOUTH = 0, 1, 2, 3
NUM_ROWS, NUM_COLS = 80, 88
EYE_LAT, EYE_LON = 10, 16
POCKET_LOOPS = 6


@dataclass
class HeadMesh:
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    part: np.ndarray  # (V,)
    phi: np.ndarray  # (V,)
    t: np.ndarray  # (V,)
    lip_side: np.ndarray  # (V,)
    eval_point: np.ndarray  # (V, 3)
    grid: Dict[str, np.ndarray] = field(default_factory=dict)  # index tables, see build_head_mesh


def _skin(num_rows: int, num_cols: int):
    t = row_parameters(num_rows)
    phi = column_angles(num_cols)
    rings = ring_points(t, phi)  # (R, C, 3)
    lid_rows = eyelids.eye_rows(rings, phi)
    rings = eyelids.bend_rows(rings, phi, lid_rows)  # two rows follow the lid margins
    rows, cols = len(t), len(phi)
    pts = np.concatenate([pole_point()[None], rings.reshape(-1, 3)])
    phis = np.concatenate([[0.0], np.tile(phi, rows)])
    ts = np.concatenate([[0.0], np.repeat(t, cols)])
    pts = pts + ft.face_displacement(pts, phis) + ft.ear_displacement(pts, phis) + ft.jaw_shape_displacement(pts, phis)
    index = 1 + np.arange(rows * cols).reshape(rows, cols)
    pts = eyelids.shape_lids(pts, index, phi, lid_rows)
    return pts, phis, ts, index, t, phi, lid_rows


def _skin_faces(index: np.ndarray, lower_index: np.ndarray) -> np.ndarray:
    """Quads between rings (using `lower_index` for the ring above each quad row's bottom) + pole fan."""
    rows, cols = index.shape
    nxt = np.roll(np.arange(cols), -1)
    faces = [np.stack([np.zeros(cols, np.int64), index[0], index[0, nxt]], 1)[:, [0, 1, 2]]]
    for k in range(rows - 1):
        a, b = lower_index[k], lower_index[k, nxt]  # top ring as seen by the quads below it
        d, c = index[k + 1], index[k + 1, nxt]
        faces.append(np.stack([a, d, c], 1))
        faces.append(np.stack([a, c, b], 1))
    # Pole fan (pole, c, c+1): it runs each first-ring edge opposite to the quad below it.
    return np.concatenate(faces)


def _sphere(center: np.ndarray, radius: float, n_lat: int, n_lon: int):
    """UV sphere with poles on the z axis (front pole first). Returns vertices, faces (local ids), polar angle, azimuth."""
    gam = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    az = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    g, a = np.meshgrid(gam, az, indexing="ij")
    dirs = np.stack([np.sin(g) * np.cos(a), np.sin(g) * np.sin(a), np.cos(g)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1]], dirs, [[0, 0, -1]]]) * radius + center
    ring = 1 + np.arange(len(gam) * n_lon).reshape(len(gam), n_lon)
    nxt = np.roll(np.arange(n_lon), -1)
    back = len(verts) - 1
    faces = [np.stack([np.zeros(n_lon, np.int64), ring[0], ring[0, nxt]], 1)]
    for k in range(len(gam) - 1):
        a0, b0, d0, c0 = ring[k], ring[k, nxt], ring[k + 1], ring[k + 1, nxt]
        faces += [np.stack([a0, d0, c0], 1), np.stack([a0, c0, b0], 1)]
    faces.append(np.stack([np.full(n_lon, back), ring[-1, nxt], ring[-1]], 1))
    faces = np.concatenate(faces)
    # Orient outwards (the azimuth runs counter-clockwise seen from +z; fix generally by the normal test).
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = ((tri.mean(1) - center) * normal).sum(1)
    faces[outward < 0] = faces[outward < 0][:, [0, 2, 1]]
    polar = np.concatenate([[0.0], g.reshape(-1), [np.pi]])
    azim = np.concatenate([[0.0], a.reshape(-1), [0.0]])
    return verts, faces, polar, azim


def build_head_mesh(num_rows: int = NUM_ROWS, num_cols: int = NUM_COLS) -> HeadMesh:
    pts, phis, ts, index, t_rows, phi_cols, lid_rows = _skin(num_rows, num_cols)
    rows, cols = index.shape
    k_m = int(np.argmin(np.abs(t_rows - T_MOUTH)))
    # Cut columns: the front columns whose mouth-row vertex lies within the mouth width.
    mouth_x = pts[index[k_m], 0]
    front = np.abs(phi_cols) < np.pi / 2
    inside = np.where(front & (np.abs(mouth_x) < ft.MOUTH_HALF_WIDTH))[0]
    c0, c1 = int(inside.min()) - 1, int(inside.max()) + 1  # corner columns (shared by both lips)
    inner = np.arange(c0 + 1, c1)
    dup = len(pts) + np.arange(len(inner))
    pts = np.concatenate([pts, pts[index[k_m, inner]]])
    phis = np.concatenate([phis, phis[index[k_m, inner]]])
    ts = np.concatenate([ts, ts[index[k_m, inner]]])
    lower_index = index.copy()
    lower_index[k_m, inner] = dup
    faces = _skin_faces(index, lower_index)
    n_skin = len(pts)
    lip_side = np.zeros(n_skin)
    lip_side[index[k_m, inner]] = 1
    lip_side[dup] = -1
    part = np.full(n_skin, SKIN)

    # Mouth pocket: loops hung from the cut boundary, going back into the head and opening vertically.
    upper = index[k_m, c0:c1 + 1]  # corner, upper inner..., corner
    lower = lower_index[k_m, c1 - 1:c0:-1]  # lower inner, right to left
    loop0 = np.concatenate([upper, lower])
    sides = np.concatenate([[0], np.ones(len(inner)), [0], -np.ones(len(inner))])
    base = pts[loop0]
    mouth_center = np.array([0.0, ft.MOUTH_Y, base[:, 2].max()])
    loops = [loop0]
    new_pts, new_side, new_phi, new_t = [], [], [], []
    next_id = n_skin
    for i in range(1, POCKET_LOOPS + 1):
        f = i / (POCKET_LOOPS + 1)
        depth = 0.032 * f
        shrink = 1.0 - 0.45 * f ** 1.5
        open_h = 0.014 * np.sin(np.pi * min(1.0, f * 1.15)) ** 0.7
        xs = base[:, 0] * shrink
        across = np.sqrt(np.clip(1 - (base[:, 0] / (np.abs(base[:, 0]).max() + 1e-9)) ** 2, 0, 1))
        ys = ft.MOUTH_Y + sides * open_h * across
        zs = base[:, 2] - depth - 0.004 * f
        loop_pts = np.stack([xs, ys, zs], 1)
        ids = next_id + np.arange(len(loop0))
        next_id += len(loop0)
        loops.append(ids)
        new_pts.append(loop_pts)
        new_side.append(sides)
        new_phi.append(phis[loop0])
        new_t.append(ts[loop0])
    back_center = mouth_center + np.array([0, 0, -0.032 - 0.006])
    center_id = next_id
    pocket_faces = []
    n = len(loop0)
    nxt = np.roll(np.arange(n), -1)
    for i in range(POCKET_LOOPS):
        a, b, c, d = loops[i], loops[i][nxt], loops[i + 1][nxt], loops[i + 1]
        pocket_faces += [np.stack([a, d, c], 1), np.stack([a, c, b], 1)]
    pocket_faces.append(np.stack([loops[-1], np.full(n, center_id), loops[-1][nxt]], 1))
    pocket_faces = np.concatenate(pocket_faces)
    # Orientation: the cut edge upper[0] -> upper[1] is used by the lip face above; the pocket must run it backwards.
    e = (loop0[0], loop0[1])
    if any((fc[j], fc[(j + 1) % 3]) == e for fc in pocket_faces[: 2 * n] for j in range(3)):
        pocket_faces = pocket_faces[:, [0, 2, 1]]
    pts = np.concatenate([pts] + new_pts + [back_center[None]])
    lip_side = np.concatenate([lip_side] + new_side + [[0.0]])
    phis = np.concatenate([phis] + new_phi + [[0.0]])
    ts = np.concatenate([ts] + new_t + [[T_MOUTH]])
    part = np.concatenate([part, np.full(len(pts) - n_skin, MOUTH)])
    faces = np.concatenate([faces, pocket_faces])

    # Eyeballs.
    eval_point = pts.copy()
    eye_info = {}
    for code, sign in ((EYE_L, 1.0), (EYE_R, -1.0)):
        center = ft.EYE_CENTER * np.array([sign, 1, 1])
        verts, efaces, polar, azim = _sphere(center, ft.EYE_RADIUS, EYE_LAT, EYE_LON)
        offset = len(pts)
        pts = np.concatenate([pts, verts])
        faces = np.concatenate([faces, efaces + offset])
        part = np.concatenate([part, np.full(len(verts), code)])
        lip_side = np.concatenate([lip_side, np.zeros(len(verts))])
        phis = np.concatenate([phis, np.full(len(verts), np.arctan2(center[0], 0.09))])
        ts = np.concatenate([ts, np.full(len(verts), 0.36)])
        eval_point = np.concatenate([eval_point, np.repeat(center[None], len(verts), 0)])
        eye_info[code] = (offset + np.arange(len(verts)), polar, azim)

    grid = {"index": index, "lower_index": lower_index, "mouth_row": np.array(k_m), "cut_cols": np.array([c0, c1]),
            "t_rows": t_rows, "phi_cols": phi_cols, "lid_rows": np.array(lid_rows), "pocket_loops": np.stack(loops), "pocket_center": np.array(center_id)}
    for code, (ids, polar, azim) in eye_info.items():
        grid[f"eye{code}_ids"], grid[f"eye{code}_polar"], grid[f"eye{code}_azim"] = ids, polar, azim
    return HeadMesh(vertices=pts, faces=faces.astype(np.int64), part=part, phi=phis, t=ts, lip_side=lip_side,
                    eval_point=eval_point, grid=grid)
