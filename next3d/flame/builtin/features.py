"""Facial features of the built-in head as smooth displacement fields on the base skin.

Each feature is a sum of anisotropic Gaussian bumps in (x, y), weighted by how much the
skin faces forward, so the back of the skull is untouched. Anatomical anchor points
(eye centres, mouth line, nose tip, ...) are defined here once and reused by the rig,
the blendshapes and the landmark embedding.
"""

from __future__ import annotations

import numpy as np

# Anchors (metres, FLAME frame).
EYE_CENTER = np.array([0.031, 0.024, 0.036])  # left eyeball centre (+x); the right one mirrors x
EYE_RADIUS = 0.0118
MOUTH_Y = -0.038  # the lips are cut along the grid row at this height (profile.T_MOUTH)
MOUTH_HALF_WIDTH = 0.024
NOSE_TIP = np.array([0.0, 0.0, 0.090])
CHIN = np.array([0.0, -0.086, 0.057])
EAR_CENTER = np.array([0.078, -0.002, -0.032])  # left ear attachment; the right one mirrors x
JAW_HINGE = np.array([0.0, -0.004, -0.028])


def gauss(x, y, cx, cy, sx, sy):
    return np.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))


def frontness(phi: np.ndarray, width: float = 1.0) -> np.ndarray:
    """1 at the front (phi = 0), 0 beyond |phi| = width * 100 degrees, smooth."""
    lim = np.deg2rad(100.0) * width
    r = np.clip(np.abs(phi) / lim, 0, 1)
    return 0.5 * (1 + np.cos(np.pi * r))


def _mirror_gauss(x, y, cx, cy, sx, sy):
    return gauss(x, y, cx, cy, sx, sy) + gauss(x, y, -cx, cy, sx, sy)


# Nose mid-line height above the face (metres) at heights y: nasion, bridge, rounded tip (y ~ 0),
# the underside sloping back to the columella base (subnasale, y ~ -0.018).
_NOSE_Y = np.array([0.036, 0.029, 0.015, 0.004, -0.001, -0.006, -0.011, -0.016, -0.020, -0.025])
_NOSE_H = np.array([0.000, 0.004, 0.013, 0.024, 0.0275, 0.026, 0.019, 0.009, 0.003, 0.000])
# Half-width (Gaussian sigma) of the nose cross-section at the same heights: narrow bridge, wider tip.
_NOSE_W = np.array([0.007, 0.0065, 0.0065, 0.0075, 0.0085, 0.0085, 0.0075, 0.0065, 0.0065, 0.007])


def _pchip(x, xs, ys):
    from scipy.interpolate import PchipInterpolator

    order = np.argsort(xs)
    return PchipInterpolator(xs[order], ys[order], extrapolate=False)(np.clip(x, xs.min(), xs.max()))


def nose_dz(x, y):
    """Forward displacement of the nose: bridge ridge, rounded tip, nostril wings (alae).

    Every term is a smooth bump at least two grid spacings wide (no max/min of terms), so the
    underside of the nose shades smoothly at the grid's resolution.
    """
    h = _pchip(y, _NOSE_Y, _NOSE_H)
    w = _pchip(y, _NOSE_Y, _NOSE_W)
    ridge = h * np.exp(-0.5 * (x / w) ** 2)
    # Alae: rounded wings either side of the tip, their bottom at the columella base.
    alae = 0.011 * _mirror_gauss(x, y, 0.0135, -0.0115, 0.0055, 0.0050)
    # Alar groove between the wings and the tip, and the crease where the wings meet the cheek.
    groove = -0.0022 * _mirror_gauss(x, y, 0.0085, -0.0085, 0.0028, 0.0035)
    crease = -0.0030 * _mirror_gauss(x, y, 0.0205, -0.0095, 0.0030, 0.0060)
    return ridge + alae + groove + crease


def brow_dz(x, y):
    return 0.0045 * gauss(x, y, 0.0, 0.044, 0.034, 0.0085) - 0.002 * gauss(x, y, 0.0, 0.032, 0.006, 0.005)


def eye_socket_dz(x, y):
    # An almond-shaped dip: wide in x, narrow in y; deep enough for the eyeball to show.
    cx, cy = EYE_CENTER[0], EYE_CENTER[1]
    dip = _mirror_gauss(x, y, cx, cy, 0.0125, 0.0068)
    return -0.0195 * dip ** 0.8


def cheek_dz(x, y):
    bones = 0.006 * _mirror_gauss(x, y, 0.045, 0.000, 0.014, 0.011)
    under_eye = -0.003 * _mirror_gauss(x, y, 0.032, 0.009, 0.010, 0.004)
    nasolabial = -0.0025 * _mirror_gauss(x, y, 0.022, -0.025, 0.004, 0.010)
    return bones + under_eye + nasolabial


def lips_dz(x, y):
    across = np.exp(-0.5 * (x / 0.017) ** 2)
    upper = 0.0125 * gauss(0 * x, y, 0.0, MOUTH_Y + 0.0055, 1.0, 0.0048) * across
    lower = 0.0135 * gauss(0 * x, y, 0.0, MOUTH_Y - 0.0065, 1.0, 0.0055) * across
    philtrum = 0.003 * gauss(x, y, 0.0, -0.022, 0.004, 0.006)
    corner_in = -0.003 * _mirror_gauss(x, y, MOUTH_HALF_WIDTH, MOUTH_Y, 0.004, 0.004)
    return upper + lower + philtrum + corner_in


def chin_dz(x, y):
    return 0.008 * gauss(x, y, 0.0, -0.075, 0.014, 0.010) - 0.004 * gauss(x, y, 0.0, -0.056, 0.012, 0.004)


def face_displacement(points: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Forward (z) feature displacement of base skin points (N, 3) -> (N, 3)."""
    x, y = points[:, 0], points[:, 1]
    dz = nose_dz(x, y) + brow_dz(x, y) + eye_socket_dz(x, y) + cheek_dz(x, y) + lips_dz(x, y) + chin_dz(x, y)
    out = np.zeros_like(points)
    out[:, 2] = dz * frontness(phi, 0.8)
    return out


def ear_displacement(points: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Ears: flaps pushed out of the side of the head, swept backwards (N, 3) -> (N, 3)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    side = np.abs(np.sin(phi)) ** 6  # only the sides
    out = np.zeros_like(points)
    # Elliptic outline, taller than wide; a rim (helix) stands out more than the bowl.
    r = np.sqrt(((y - EAR_CENTER[1]) / 0.030) ** 2 + ((z - EAR_CENTER[2]) / 0.016) ** 2)
    profile = np.clip(1 - r, 0, 1) ** 0.6 * (0.75 + 0.25 * np.clip(r / 0.8, 0, 1))
    out[:, 0] = np.sign(x) * 0.020 * profile * side
    out[:, 2] = -0.012 * profile * side  # swept back
    return out


def jaw_shape_displacement(points: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Narrow the lower face towards the chin and raise the jaw line at the sides (N, 3) -> (N, 3).

    The lift makes the jaw line run up from the chin to the jaw angles (a U seen from the front)
    instead of a level shelf; its slope in y stays below 1, so rows never fold.
    """
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    out = np.zeros_like(points)
    lower = np.clip((MOUTH_Y + 0.01 - y) / 0.05, 0, 1) * np.clip((y + 0.13) / 0.03, 0, 1)
    front = np.clip(z / 0.05, 0, 1)
    out[:, 0] = -0.22 * x * lower * front
    sides = np.clip(np.abs(x) / 0.055, 0, 1) ** 1.5 * np.clip((z + 0.07) / 0.05, 0, 1)
    fade = np.clip((y + 0.175) / 0.03, 0, 1)  # exactly zero at the neck opening (kept level)
    out[:, 1] = 0.016 * sides * np.exp(-0.5 * ((y + 0.100) / 0.022) ** 2) * fade
    return out
