"""68-point landmark embedding of the built-in head, in DECA's layout (incl. the yaw contour).

Landmarks are placed where a 2D detector would put them on a frontal image: at iBUG
positions in (x, y), lifted onto the frontmost surface by an orthographic ray cast
(so each is a face + barycentric weights on the skin or an eyeball). The eye corners
(36, 39, 42, 45) are the upper lid margin's vertices nearest the corners. The inner lip points
sit exactly on the cut: 61-63 on the upper lip's copy of the mouth row, 65-67 on the lower
lip's, 60/64 on the shared corners, so 62-66 opens with the jaw. The jaw contour for a
head turned by yaw a (DECA's 79 bins) follows the silhouette on the side turning away.
"""

from __future__ import annotations

import numpy as np

from next3d.flame.builtin import eyelids
from next3d.flame.builtin import features as ft
from next3d.flame.builtin.mesh import MOUTH, SKIN, HeadMesh
from next3d.flame.landmarks import MAX_YAW_DEG, NUM_CONTOUR, NUM_YAW_BINS

M = ft.MOUTH_Y

# Frontal jaw contour, points 0..8 (the subject's right side mirrored to +x; 8 = chin), metres.
# Where dlib's 68-point predictor puts them on near-frontal photographic renders of this head,
# as iBUG annotators do: on the visible outline of the cheek and jaw, the top points at eye
# level. Measured (2026-12-02): 60 renders at 256² (`next3d dataset synth --seed 2026`), the
# 41 with |yaw| < 10° where dlib found the face; the mean offset of dlib's points from an
# ellipse (0.070 x 0.102 m about (0, 0.017)) added to it, left and right averaged. That
# ellipse sat 4-8 % of the face width inside the outline and 5-9 % low at the sides.
JAW_CONTOUR = np.array([[0.0745, 0.0263], [0.0733, 0.0077], [0.0710, -0.0105], [0.0672, -0.0284],
                        [0.0599, -0.0458], [0.0484, -0.0607], [0.0336, -0.0732], [0.0175, -0.0828],
                        [0.0, -0.0854]])
# |x| of the inner-lip points 61, 63, 65, 67 on the cut (metres), measured the same way: dlib put
# them 3.8-4.6 % of the face width nearer the midline than half the mouth's half-width.
INNER_LIP_X = 0.0063


def _targets() -> np.ndarray:
    """(68, 2) frontal (x, y) positions, iBUG order (x < 0 is the subject's right, image left)."""
    pts = np.zeros((68, 2))
    pts[:17] = np.concatenate([JAW_CONTOUR * [-1, 1], JAW_CONTOUR[-2::-1]])
    brow_x = np.array([0.058, 0.047, 0.035, 0.023, 0.012])
    brow_y = np.array([0.034, 0.041, 0.044, 0.044, 0.042])
    pts[17:22] = np.stack([-brow_x, brow_y], 1)
    pts[22:27] = np.stack([brow_x[::-1], brow_y[::-1]], 1)
    pts[27:31] = [[0, 0.029], [0, 0.019], [0, 0.009], [0, 0.0]]
    pts[31:36] = [[-0.013, -0.013], [-0.007, -0.015], [0, -0.016], [0.007, -0.015], [0.013, -0.013]]
    ex, ey = ft.EYE_CENTER[0], ft.EYE_CENTER[1]
    eye = np.array([[-0.014, 0], [-0.007, 0.005], [0.005, 0.005], [0.012, 0], [0.005, -0.004], [-0.007, -0.004]])
    pts[36:42] = np.stack([-(ex - eye[:, 0]), ey + eye[:, 1]], 1)  # right eye, outer corner first
    pts[42:48] = np.stack([ex - eye[[3, 2, 1, 0, 5, 4], 0], ey + eye[[3, 2, 1, 0, 5, 4], 1]], 1)
    pts[48:60] = [[-0.026, M], [-0.017, M + 0.006], [-0.007, M + 0.009], [0, M + 0.008], [0.007, M + 0.009],
                  [0.017, M + 0.006], [0.026, M], [0.017, M - 0.007], [0.007, M - 0.0095], [0, M - 0.0105],
                  [-0.007, M - 0.0095], [-0.017, M - 0.007]]
    return pts


def cast_front(vertices: np.ndarray, faces: np.ndarray, xy: np.ndarray):
    """Orthographic rays along -z at points xy (Q, 2) -> (face ids (Q,), barycentrics (Q, 3)); frontmost hit."""
    tri = vertices[faces]  # (F, 3, 3)
    a, b, c = tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok = np.abs(den) > 1e-14
    out_f, out_b = np.zeros(len(xy), np.int64), np.zeros((len(xy), 3))
    for q, (px, py) in enumerate(xy):
        with np.errstate(divide="ignore", invalid="ignore"):
            w0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / den
            w1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / den
        w2 = 1 - w0 - w1
        hit = ok & (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        if not hit.any():
            raise AssertionError(f"built-in head: no surface under landmark ray at {(px, py)}")
        z = w0 * tri[:, 0, 2] + w1 * tri[:, 1, 2] + w2 * tri[:, 2, 2]
        z = np.where(hit, z, -np.inf)
        f = int(np.argmax(z))
        out_f[q], out_b[q] = f, np.clip([w0[f], w1[f], w2[f]], 0, 1)
        out_b[q] /= out_b[q].sum()
    return out_f, out_b


def _vertex_landmark(faces: np.ndarray, vid: int):
    f = int(np.where((faces == vid).any(1))[0][0])
    bary = (faces[f] == vid).astype(np.float64)
    return f, bary


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def build_landmark_embedding(mesh: HeadMesh) -> dict:
    """DECA-layout dict: static (51), dynamic (79, 17), full (1, 68) faces and barycentrics."""
    v, faces = mesh.vertices, mesh.faces
    castable = np.where(mesh.part[faces].max(1) != MOUTH)[0]  # skin and eyeballs, not the mouth pocket
    targets = _targets()
    f_idx, bary = cast_front(v, faces[castable], targets)
    f_idx = castable[f_idx]
    # Inner lips on the cut.
    g = mesh.grid
    k_m, (c0, c1) = int(g["mouth_row"]), g["cut_cols"]
    index, lower = g["index"], g["lower_index"]
    xs = v[index[k_m], 0]
    cols = np.arange(c0 + 1, c1)
    center = cols[np.argmin(np.abs(xs[cols]))]
    quarter = lambda x: cols[np.argmin(np.abs(xs[cols] - x))]  # noqa: E731
    q = INNER_LIP_X
    inner = {60: index[k_m, c0], 61: index[k_m, quarter(-q)], 62: index[k_m, center],
             63: index[k_m, quarter(q)], 64: index[k_m, c1], 65: lower[k_m, quarter(q)],
             66: lower[k_m, center], 67: lower[k_m, quarter(-q)]}
    # Eye corners: where the lid margins meet (the upper margin's vertex nearest each corner).
    k_u = int(g["lid_rows"][0])
    for sign, (outer, inner_corner) in ((-1.0, (36, 39)), (1.0, (45, 42))):
        xs = np.where(np.cos(g["phi_cols"]) > 0.3, v[index[k_u], 0], np.inf)
        for lmk, dx in ((outer, eyelids.EYE_HALF_WIDTH), (inner_corner, -eyelids.EYE_HALF_WIDTH)):
            inner[lmk] = index[k_u, int(np.argmin(np.abs(xs - sign * (ft.EYE_CENTER[0] + dx))))]
    for lmk, vid in inner.items():
        f_idx[lmk], bary[lmk] = _vertex_landmark(faces, int(vid))

    # Yaw-dependent contour.
    dyn_f = np.repeat(f_idx[None, :NUM_CONTOUR], NUM_YAW_BINS, 0)
    dyn_b = np.repeat(bary[None, :NUM_CONTOUR], NUM_YAW_BINS, 0)
    skin_faces = np.where((mesh.part[faces] == SKIN).all(1))[0]
    near_ear = np.minimum(np.linalg.norm(v[:, 1:] - ft.EAR_CENTER[1:], axis=1), 1.0) < 0.04
    cand = (mesh.part == SKIN) & (np.abs(mesh.phi) < np.deg2rad(100)) & ~near_ear
    for row in range(NUM_YAW_BINS):
        yaw = row if row <= MAX_YAW_DEG else MAX_YAW_DEG - row
        if yaw == 0:
            continue
        vr = v @ _rot_y(yaw).T
        turning_away = 1.0 if yaw > 0 else -1.0  # +yaw turns the subject's left (+x) side away
        for k in range(NUM_CONTOUR):
            if np.sign(targets[k, 0]) != turning_away:
                continue
            y_k = targets[k, 1]
            band = cand & (np.abs(v[:, 1] - y_k) < 0.004)
            if not band.any():
                continue
            x_sil = turning_away * (turning_away * vr[band, 0]).max()
            static_x = (bary[k] @ vr[faces[f_idx[k]]])[0]
            x_use = x_sil - turning_away * 0.002
            if turning_away * static_x < turning_away * x_use:
                continue  # the static point is still on the visible side
            f_k, b_k = cast_front(vr, faces[skin_faces], np.array([[x_use, y_k]]))
            dyn_f[row, k], dyn_b[row, k] = skin_faces[f_k[0]], b_k[0]
    return {
        "static_lmk_faces_idx": f_idx[NUM_CONTOUR:].astype(np.int64),
        "static_lmk_bary_coords": bary[NUM_CONTOUR:].astype(np.float64),
        "dynamic_lmk_faces_idx": dyn_f.astype(np.int64),
        "dynamic_lmk_bary_coords": dyn_b.astype(np.float32),
        "full_lmk_faces_idx": f_idx[None].astype(np.int64),
        "full_lmk_bary_coords": bary[None].astype(np.float32),
    }
