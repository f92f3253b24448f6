"""Eyelids of the built-in head: an almond-shaped opening whose lids wrap over the eyeballs.

The skin grid is bent so that two of its rows run exactly along the lid margins: row
`k_u` along the upper margin, `k_l` along the lower one, and the rows between them (around
`k_c`) lie inside the opening (pushed back behind the eyeball, where they are hidden). Around the
opening, the skin is lifted onto a "lid sphere" (the eyeball's sphere grown by the lid
thickness), so the lids cover the top and bottom of the eyeball. The eyeballs themselves
are separate meshes (see `mesh.py`) and only rotate.

Lid margins at height y over the eye centre, for u = (x - eye x) / EYE_HALF_WIDTH in [-1, 1]
(u = -1 at the inner corner, towards the nose, for the left eye):
    upper: EYE_CENTER_y + CORNER_GAP / 2 + UPPER_HEIGHT * (1 - u^2)^0.75 * (1 - 0.12 u)
    lower: EYE_CENTER_y - CORNER_GAP / 2 - LOWER_HEIGHT * (1 - u^2)^0.9
The "eye close" expression components move the margin rows (and, fading out, the lid skin
around them) until the margins meet: `closing_field`.

Lengths in metres, FLAME frame; the left eye is at +x, the right mirrors it.
"""

from __future__ import annotations

import numpy as np

from next3d.flame.builtin.features import EYE_CENTER, EYE_RADIUS

EYE_HALF_WIDTH = 0.0132  # half the corner-to-corner width of the opening (FLAME: about 26 mm wide)
UPPER_HEIGHT = 0.0050  # upper margin above the eye centre, at its highest
LOWER_HEIGHT = 0.0040  # lower margin below the eye centre, at its lowest
CORNER_GAP = 0.0005  # the margins never touch (no degenerate triangles at the corners)
LID_THICKNESS = 0.0015  # lids lie this far outside the eyeball's sphere
CORNER_FADE = 0.004  # beyond the corners, the grid returns to its plain rows over this distance
ROWS_ABOVE, ROWS_BELOW = 4, 3  # rows (beyond the margins) that bend with them


def _u(x: np.ndarray, sign: float) -> np.ndarray:
    return (sign * x - EYE_CENTER[0]) / EYE_HALF_WIDTH


def margins(x: np.ndarray, sign: float):
    """(upper y, lower y) of the lid margins at x (N,) for the eye on side `sign` (+1 left, -1 right)."""
    u = _u(x, sign)
    s = np.clip(1.0 - u * u, 0.0, 1.0)
    ey = EYE_CENTER[1]
    upper = ey + CORNER_GAP / 2 + UPPER_HEIGHT * s ** 0.75 * (1 - 0.12 * np.clip(u, -1, 1))
    lower = ey - CORNER_GAP / 2 - LOWER_HEIGHT * s ** 0.9
    return upper, lower


def opening_weight(x: np.ndarray, sign: float) -> np.ndarray:
    """1 over the opening's width, fading to 0 within CORNER_FADE beyond the corners (N,)."""
    d = np.clip((np.abs(_u(x, sign)) - 1.0) * EYE_HALF_WIDTH / CORNER_FADE, 0.0, 1.0)
    return 1.0 - d * d * (3 - 2 * d)


def eye_rows(rings: np.ndarray, phi: np.ndarray):
    """Row indices (k_u, k_c, k_l) of the grid rings (R, C, 3) that become the lid margins."""
    mid = int(np.argmin(np.abs(rings[:, int(np.argmin(np.abs(phi))), 1] - EYE_CENTER[1])))
    col = int(np.argmin(np.abs(rings[mid, :, 0] - EYE_CENTER[0]) + 10.0 * (np.cos(phi) < 0)))
    k_c = int(np.argmin(np.abs(rings[:, col, 1] - EYE_CENTER[1])))
    return k_c - 2, k_c, k_c + 2


def bend_rows(rings: np.ndarray, phi: np.ndarray, rows) -> np.ndarray:
    """Move grid rings (R, C, 3) in y so rows k_u / k_l follow the lid margins; returns a copy.

    Per column, a piecewise-linear monotone map of y (fixed points ROWS_ABOVE rows above and
    ROWS_BELOW rows below the margins), blended with the identity by `opening_weight`: the rows
    never cross.
    """
    k_u, _, k_l = rows
    out = rings.copy()
    front = np.cos(phi) > 0.3
    for c in np.where(front)[0]:
        x = rings[k_l, c, 0]
        sign = 1.0 if x > 0 else -1.0
        w = float(opening_weight(np.array([x]), sign)[0])
        if w <= 0.0:
            continue
        y = rings[:, c, 1]
        up, lo = (float(m[0]) for m in margins(np.array([x]), sign))
        knots_in = [y[k_l + ROWS_BELOW], y[k_l], y[k_u], y[k_u - ROWS_ABOVE]]
        knots_out = [y[k_l + ROWS_BELOW], lo, up, y[k_u - ROWS_ABOVE]]
        band = slice(k_u - ROWS_ABOVE, k_l + ROWS_BELOW + 1)
        mapped = np.interp(y[band], knots_in, knots_out)  # knots listed bottom-up: increasing y
        out[band, c, 1] = y[band] + w * (mapped - y[band])
    return out


def lid_sphere_z(x: np.ndarray, y: np.ndarray, sign: float, extra: float = LID_THICKNESS) -> np.ndarray:
    """z of the front of the eyeball's sphere grown by `extra` (the eye centre's z outside its disc)."""
    r2 = (sign * x - EYE_CENTER[0]) ** 2 + (y - EYE_CENTER[1]) ** 2
    return EYE_CENTER[2] + np.sqrt(np.clip((EYE_RADIUS + extra) ** 2 - r2, 0.0, None))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _soft_max(a, b, k=0.0007):
    return np.maximum(a, b) + k * np.log1p(np.exp(-np.abs(a - b) / k))


def shape_lids(points: np.ndarray, index: np.ndarray, phi_cols: np.ndarray, rows) -> np.ndarray:
    """Lift the skin around each opening onto the lid sphere, push the inner row behind the eyeball.

    points (V, 3) after the feature displacements; index (R, C) grid vertex ids. Returns a copy.
    """
    k_u, k_c, k_l = rows
    out = points.copy()
    front_cols = np.where(np.cos(phi_cols) > 0.3)[0]
    ids = index[k_u - ROWS_ABOVE - 2:k_l + ROWS_BELOW + 3][:, front_cols].reshape(-1)
    x, y, z = out[ids, 0], out[ids, 1], out[ids, 2]
    sign = np.where(x > 0, 1.0, -1.0)
    near = np.hypot(sign * x - EYE_CENTER[0], y - EYE_CENTER[1]) < EYE_RADIUS + 0.008
    lifted = _soft_max(z, lid_sphere_z(x, y, sign))
    out[ids, 2] = np.where(near, lifted, z)
    # The inner rows: behind the visible part of the eyeball (hidden), as deep as the corners allow.
    inner = index[k_u + 1:k_l][:, front_cols].reshape(-1)
    x, y, z = out[inner, 0], out[inner, 1], out[inner, 2]
    sign = np.where(x > 0, 1.0, -1.0)
    w = opening_weight(x, sign)
    behind = EYE_CENTER[2] - 0.001 + 0.5 * (lid_sphere_z(x, y, sign, 0.0) - EYE_CENTER[2])
    out[inner, 2] = z + w * (np.minimum(behind, z) - z)
    return out


def closing_field(vertices: np.ndarray, index: np.ndarray, phi_cols: np.ndarray, rows, sign: float) -> np.ndarray:
    """Displacement (V, 3) that closes the lids of one eye (`sign` +1 left, -1 right).

    The margins meet at 30% of the way from the lower to the upper margin (the upper lid does
    most of the work); rows above/below follow with a smooth fall-off, each point keeping to the
    lid sphere in z, so the closed lids cover the eyeball.
    """
    k_u, k_c, k_l = rows
    out = np.zeros_like(vertices)
    cols = np.where((np.cos(phi_cols) > 0.3) & (np.sign(vertices[index[k_c], 0]) == sign))[0]
    for c in cols:
        col = index[:, c]
        x = vertices[col[k_c], 0]
        w = float(opening_weight(np.array([x]), sign)[0])
        if w <= 0.0:
            continue
        y_u, y_l = vertices[col[k_u], 1], vertices[col[k_l], 1]
        meet = y_l + 0.3 * (y_u - y_l)
        for k in range(len(col)):
            v = vertices[col[k]]
            # Smooth fall-offs whose slope (at most 1.5 / length) keeps the rows in order even at -2.
            if k <= k_u:  # upper lid: the margin moves fully, the skin above less and less
                dy = (meet - y_u) * (1 - _smoothstep((v[1] - y_u) / 0.016))
            elif k >= k_l:
                dy = (meet - y_l) * (1 - _smoothstep((y_l - v[1]) / 0.008))
            else:  # the hidden inner rows go along
                dy = meet + (v[1] - y_l) * 0.1 - v[1]
            if dy == 0.0:
                continue
            dz = 0.0
            if k <= k_u or k >= k_l:
                # Keep to the lid sphere: the lid slides over the eyeball rather than through it.
                z_new = lid_sphere_z(np.array([x]), np.array([v[1] + dy]), sign)[0]
                z_old = lid_sphere_z(np.array([x]), np.array([v[1]]), sign)[0]
                dz = max(z_new - z_old, 0.0) if v[2] <= z_old + 0.001 else 0.0
            out[col[k]] = (0.0, w * dy, w * dz)
    return out
