"""Base surface of the built-in head: a closed-top grid deformed from head profiles.

The skin is a grid of rings: row parameter t in [0, 1] runs from the crown (t = 0, a
single pole vertex) over the face to the bottom of the neck (t = 1, left open), and the
column angle phi runs around the vertical axis (phi = 0 faces +z, the viewer; +pi/2 is the
subject's left, +x; the seam is at the back, phi = +-pi). Each ring is a superellipse
whose front and back halves follow separate mid-line profiles (so the jaw underside can
run backwards while the back of the head goes down), and whose half-width follows a side
profile. Local features (nose, lips, eyes, ...) are added later in `features.py`.

All lengths are metres in FLAME's frame (y up, z towards the viewer); the profiles are
rough measurements of FLAME's template (nose tip near (0, 0, 0.09), eyes at y ~ 0.024,
chin near y = -0.09, crown y ~ 0.127, neck bottom y ~ -0.187).
"""

from __future__ import annotations

import numpy as np

# Row parameter t of the mouth line: the grid always has a row there (the lips are cut along it).
T_MOUTH = 0.50

# Mid-line profiles: t -> (y, z) at the front (phi = 0) and back (phi = pi); half-width at the sides.
_T = np.array([0.00, 0.05, 0.13, 0.22, 0.30, 0.36, 0.44, 0.50, 0.56, 0.62, 0.66, 0.72, 0.80, 0.90, 1.00])
_FRONT_Y = np.array([0.127, 0.123, 0.103, 0.072, 0.042, 0.022, -0.010, -0.038, -0.060, -0.080, -0.094,
                     -0.106, -0.122, -0.150, -0.187])
_FRONT_Z = np.array([-0.030, 0.004, 0.040, 0.058, 0.063, 0.060, 0.063, 0.063, 0.062, 0.059, 0.036,
                     0.018, 0.009, 0.001, -0.002])
_BACK_Y = np.array([0.127, 0.120, 0.097, 0.062, 0.030, 0.006, -0.024, -0.044, -0.060, -0.074, -0.084,
                    -0.098, -0.115, -0.150, -0.187])
_BACK_Z = np.array([-0.030, -0.074, -0.108, -0.127, -0.130, -0.126, -0.111, -0.100, -0.094, -0.093, -0.093,
                    -0.095, -0.100, -0.112, -0.118])
_HALF_W = np.array([0.0, 0.034, 0.063, 0.078, 0.080, 0.080, 0.078, 0.069, 0.060, 0.056, 0.054, 0.053,
                    0.056, 0.068, 0.078])


def _interp(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    from scipy.interpolate import PchipInterpolator

    return PchipInterpolator(_T, values)(t)


def row_parameters(num_rows: int) -> np.ndarray:
    """t of each ring (num_rows,), excluding the pole; denser over the face, one row at T_MOUTH."""
    # Rows per span (fractions of the rows): crown, forehead, eyes + nose (about 2 mm apart, fine
    # enough for eyelids and the nose base), lower face, under the jaw + neck.
    spans = [(0.0, 0.24, 0.12), (0.24, 0.30, 0.07), (0.30, T_MOUTH, 0.48), (T_MOUTH, 0.70, 0.20), (0.70, 1.0, 0.13)]
    rows = []
    for idx, (t0, t1, frac) in enumerate(spans):
        count = max(2, int(round(frac * num_rows)))
        pts = np.linspace(t0, t1, count + 1)[1:]
        rows.append(pts)
    t = np.concatenate(rows)
    assert np.isclose(t, T_MOUTH).any()
    return t


def column_angles(num_cols: int) -> np.ndarray:
    """phi of each column (num_cols,), in [-pi, pi), about six times denser at the front than the back."""
    s = -1.0 + 2.0 * np.arange(num_cols) / num_cols
    # dphi/ds = pi (1 - a cos(pi s)): small at the front (s = 0), large at the back.
    a = 0.72
    return np.pi * (s - a * np.sin(np.pi * s) / np.pi)


def ring_points(t: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Base skin positions for every (t, phi) pair: t (R,), phi (C,) -> (R, C, 3)."""
    fy, fz = _interp(t, _FRONT_Y), _interp(t, _FRONT_Z)
    by, bz = _interp(t, _BACK_Y), _interp(t, _BACK_Z)
    hw = np.maximum(_interp(t, _HALF_W), 0.0)
    s, c = np.sin(phi)[None], np.cos(phi)[None]
    # Superellipse exponents: the face (front) is flatter than the back of the skull.
    p_front, p_back = 0.82, 0.9
    # The widest point of each ring sits 45% of the way from the back to the front.
    zc = (bz + 0.45 * (fz - bz))[:, None]
    ex = np.where(c >= 0, p_front, p_back)
    x = hw[:, None] * np.sign(s) * np.abs(s) ** ex
    z_front = zc + (fz[:, None] - zc) * np.abs(c) ** p_front
    z_back = zc + (bz[:, None] - zc) * np.abs(c) ** p_back
    z = np.where(c >= 0, z_front, z_back)
    w_front = 0.5 * (1.0 + c)
    y = by[:, None] + (fy - by)[:, None] * w_front
    return np.stack([x, y, z], axis=-1)


def pole_point() -> np.ndarray:
    return np.array([0.0, _FRONT_Y[0], _FRONT_Z[0]])
