"""UV layout and face/eye mask of the built-in head.

Layout of the unit square (v up, OBJ convention):
* skin: u follows the column angle (seam at the back of the head, u = 0 and 1), v the row
  parameter (crown at the top, neck at the bottom); both are piecewise linear so the face
  (|phi| < 75 degrees, brow to chin) fills u in [0.06, 0.94] and v in [0.05, 0.85];
* the strip v in [0.88, 1]: left eyeball (u in [0.88, 1]), right eyeball (u in [0, 0.12])
  as azimuthal projections around the pupil, and the mouth pocket in the middle.
The mask is white over the face region, the eyeballs and the mouth pocket.
"""

from __future__ import annotations

import numpy as np

from next3d.flame.builtin.mesh import EYE_L, EYE_R, HeadMesh

_PHI_KNOTS = np.deg2rad([-180.0, -75.0, 75.0, 180.0])
_U_KNOTS = np.array([0.0, 0.06, 0.94, 1.0])
_T_KNOTS = np.array([0.0, 0.20, 0.70, 1.0])
_V_KNOTS = np.array([0.875, 0.85, 0.05, 0.0])
EYE_BOXES = {EYE_L: (0.88, 0.88, 0.12), EYE_R: (0.0, 0.88, 0.12)}  # (u0, v0, size)
POCKET_BOX = (0.30, 0.885, 0.40, 0.11)  # (u0, v0, width, height)


def _u(phi):
    return np.interp(phi, _PHI_KNOTS, _U_KNOTS)


def _v(t):
    return np.interp(t, _T_KNOTS, _V_KNOTS)


def build_uv(mesh: HeadMesh):
    """Returns uv_coords (T, 2) and uv_faces (F, 3) (same face order as mesh.faces)."""
    g = mesh.grid
    index, lower = g["index"], g["lower_index"]
    t_rows, phi_cols = g["t_rows"], g["phi_cols"]
    rows, cols = index.shape
    uv_list = []
    vert_uv = np.full(len(mesh.vertices), -1, np.int64)  # default UV id per vertex

    def add(points):
        start = sum(len(p) for p in uv_list)
        uv_list.append(np.asarray(points, np.float64).reshape(-1, 2))
        return start + np.arange(len(uv_list[-1]))

    # Skin grid with a duplicated seam column (u = 1).
    uu = np.append(_u(phi_cols), 1.0)
    vv = _v(t_rows)
    grid_ids = add(np.stack(np.meshgrid(uu, vv), -1)).reshape(rows, cols + 1)
    vert_uv[index] = grid_ids[:, :cols]
    vert_uv[lower[lower != index]] = grid_ids[:, :cols][lower != index]
    # Faces of the skin: recompute which UV each corner uses (seam-aware) from the grid structure.
    faces = mesh.faces
    uv_faces = vert_uv[faces].copy()
    num_skin_faces = 2 * cols * (rows - 1) + cols
    # Pole fan faces: (pole, c, c+1); quads: (a, d, c), (a, c, b) with column c+1 wrapping to the seam copy.
    pole_uv = add(np.stack([(uu[:-1] + uu[1:]) / 2, np.full(cols, 1.0 - 0.0)], 1))
    nxt_col = np.arange(1, cols + 1)
    uv_faces[:cols] = np.stack([pole_uv, grid_ids[0, :cols], grid_ids[0, nxt_col]], 1)
    for k in range(rows - 1):
        a, b = grid_ids[k, :cols], grid_ids[k, nxt_col]
        d, c = grid_ids[k + 1, :cols], grid_ids[k + 1, nxt_col]
        base = cols + 2 * k * cols
        uv_faces[base:base + cols] = np.stack([a, d, c], 1)
        uv_faces[base + cols:base + 2 * cols] = np.stack([a, c, b], 1)
    # The quad rows above were built in the same order as mesh._skin_faces (then the pocket, then the eyes).

    # Mouth pocket: a strip, loop index -> u (with a seam copy), depth -> v.
    loops = g["pocket_loops"]
    n_loops, n = loops.shape
    u0, v0, w, h = POCKET_BOX
    pu = u0 + w * np.arange(n + 1) / n
    pv = v0 + h * (1 - np.arange(n_loops + 1) / n_loops)
    strip = add(np.stack(np.meshgrid(pu, pv), -1)).reshape(n_loops + 1, n + 1)
    nxt = np.arange(1, n + 1)
    pf = []
    for i in range(n_loops - 1):
        a, b, c, d = strip[i, :n], strip[i, nxt], strip[i + 1, nxt], strip[i + 1, :n]
        pf += [np.stack([a, d, c], 1), np.stack([a, c, b], 1)]
    center = np.full(n, strip[-1, 0])
    pf.append(np.stack([strip[n_loops - 1, :n], center, strip[n_loops - 1, nxt]], 1))
    pf = np.concatenate(pf)
    pocket_faces = faces[num_skin_faces:num_skin_faces + len(pf)]
    # The pocket faces may have been flipped (winding 0, 2, 1): apply the same permutation to UVs.
    flipped = not _same_first_corner_order(pocket_faces[0], loops, nxt)
    uv_faces[num_skin_faces:num_skin_faces + len(pf)] = pf[:, [0, 2, 1]] if flipped else pf

    # Eyeballs: azimuthal equidistant projection around the front pole, per-face for the back pole.
    for code in (EYE_L, EYE_R):
        ids, polar, azim = g[f"eye{code}_ids"], g[f"eye{code}_polar"], g[f"eye{code}_azim"]
        u0, v0, size = EYE_BOXES[code]
        rho = polar / np.pi * 0.5 * 0.96
        pts = np.stack([u0 + size * (0.5 + rho * np.cos(azim)), v0 + size * (0.5 + rho * np.sin(azim))], 1)
        eye_uv = add(pts)
        local = {int(v): i for i, v in enumerate(ids)}
        eye_faces = np.where(np.isin(faces, ids).all(1))[0]
        for f in eye_faces:
            corners = [local[int(v)] for v in faces[f]]
            uvf = [eye_uv[c] for c in corners]
            back = [i for i, c in enumerate(corners) if polar[c] == np.pi]
            if back:  # the back pole gets a UV at the azimuth of the face
                others = [c for c in corners if polar[c] != np.pi]
                ang = np.arctan2(np.mean(np.sin(azim[others])), np.mean(np.cos(azim[others])))
                uvf[back[0]] = add([[u0 + size * (0.5 + 0.48 * np.cos(ang)), v0 + size * (0.5 + 0.48 * np.sin(ang))]])[0]
            uv_faces[f] = uvf
    uv = np.concatenate(uv_list)
    if (uv_faces < 0).any():
        raise AssertionError("built-in head: a face corner has no UV")
    return uv, uv_faces


def _same_first_corner_order(face, loops, nxt) -> bool:
    a, d, c = loops[0][0], loops[1][0], loops[1][nxt[0] % loops.shape[1]]
    return tuple(face) == (a, d, c)


def face_region_weight(mesh: HeadMesh) -> np.ndarray:
    """Per-vertex membership (V,) of the textured face/eye region (1 inside)."""
    phi, t = mesh.phi, mesh.t
    inside = (np.abs(phi) < np.deg2rad(72)) & (t > 0.2) & (t < 0.70)
    w = inside.astype(np.float64)
    w[mesh.part != 0] = 1.0  # eyeballs and mouth pocket
    return w


def rasterize_mask(uv: np.ndarray, uv_faces: np.ndarray, values: np.ndarray, size: int = 256) -> np.ndarray:
    """Rasterise per-face-corner values (F, 3) in UV space -> (size, size) image, row 0 = v = 1."""
    img = np.zeros((size, size))
    pix = np.stack([uv[:, 0] * size, (1 - uv[:, 1]) * size], 1)
    for f in range(len(uv_faces)):
        p = pix[uv_faces[f]]
        x0, y0 = np.maximum(np.floor(p.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(p.max(0)).astype(int), size - 1)
        if x1 < x0 or y1 < y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        (ax, ay), (bx, by), (cx, cy) = p
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(den) < 1e-14:
            continue
        w0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / den
        w1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / den
        w2 = 1 - w0 - w1
        tol = 0.5 / max(abs(den), 1e-9) ** 0.5  # include pixels touching thin triangles
        inside = (w0 >= -tol) & (w1 >= -tol) & (w2 >= -tol)
        val = w0 * values[f, 0] + w1 * values[f, 1] + w2 * values[f, 2]
        sub = img[y0:y1 + 1, x0:x1 + 1]
        sub[inside] = np.maximum(sub[inside], val[inside])
    return img


def build_mask(mesh: HeadMesh, uv: np.ndarray, uv_faces: np.ndarray, size: int = 256) -> np.ndarray:
    """(size, size) uint8 face/eye mask (255 inside)."""
    w = face_region_weight(mesh)
    img = rasterize_mask(uv, uv_faces, w[mesh.faces], size)
    return np.where(img >= 0.5, 255, 0).astype(np.uint8)
