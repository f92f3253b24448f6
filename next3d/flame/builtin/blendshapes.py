"""Shape (identity) and expression components of the built-in head.

Every component is a smooth displacement field evaluated at each vertex's `eval_point`
(eyeballs use their centre, so they move rigidly), normalised so one unit moves the most
affected vertex by a stated amount: about 2-4 mm, so that +-2 stays plausible.
Expressions are confined to the face (the back of the skull never moves); components
that separate the lips use `lip_side` (the upper and lower copies of the cut row).
Every component is left/right symmetric or antisymmetric, or has its mirror partner in the
list (smile_left / smile_right...): the bases are closed under a horizontal flip, so data
sets of this head can be flipped with their FLAME parameters mirrored exactly.

Component lists (index: name) are `SHAPE_NAMES` and `EXPRESSION_NAMES`.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import numpy as np

from next3d.flame.builtin import eyelids
from next3d.flame.builtin import features as ft
from next3d.flame.builtin.mesh import EYE_L, EYE_R, MOUTH, HeadMesh

Field = Callable[["_Ctx"], np.ndarray]


class _Ctx:
    def __init__(self, mesh: HeadMesh):
        self.p = mesh.eval_point
        self.x, self.y, self.z = self.p.T
        self.ax = np.abs(self.x)
        self.sx = np.tanh(self.x / 0.006)  # smooth "which side" (a sign would tear the midline)
        self.lr = np.sign(self.x)  # hard side selection for one-sided components
        self.side = mesh.lip_side
        self.front = ft.frontness(mesh.phi, 0.85)
        self.eye = (mesh.part == EYE_L) | (mesh.part == EYE_R)
        self.pocket = mesh.part == MOUTH
        self.head = 1 / (1 + np.exp(-(self.y + 0.105) / 0.01))  # above the neck
        self.mesh = mesh

    def g(self, cx, cy, sx, sy, mirror=False):
        out = ft.gauss(self.x, self.y, cx, cy, sx, sy)
        if mirror:
            out = out + ft.gauss(self.x, self.y, -cx, cy, sx, sy)
        return out * self.front

    def g3(self, c, s):
        d = (self.p - np.asarray(c)) / np.asarray(s)
        return np.exp(-0.5 * (d * d).sum(1))

    def vec(self, w, v):
        return w[:, None] * np.asarray(v, dtype=np.float64)[None]

    def scale(self, w, center, axes):
        return w[:, None] * (self.p - np.asarray(center)) * np.asarray(axes)[None]


def _lips(c: _Ctx):
    return c.g(0, ft.MOUTH_Y, 0.022, 0.010)


def _corners(c: _Ctx):
    return c.g(ft.MOUTH_HALF_WIDTH, ft.MOUTH_Y, 0.009, 0.009, mirror=True)


def _brows(c: _Ctx, sign=0):
    w = c.g(0.030, 0.045, 0.018, 0.011, mirror=True)
    return w if sign == 0 else w * (c.lr == sign)


def _lid(c: _Ctx, sign):
    """Close the lids of one eye over the eyeball (moves lid skin only, never the eyeball)."""
    g = c.mesh.grid
    return eyelids.closing_field(c.mesh.vertices, g["index"], g["phi_cols"], tuple(g["lid_rows"]), sign)


def _above(c: _Ctx):
    """+1 on the upper lip side of the mouth line, -1 below (the cut's copies by `lip_side`)."""
    return np.where(c.side != 0, c.side, np.tanh((c.y - ft.MOUTH_Y) / 0.0008))


def _part(c: _Ctx):
    """Upper lip up, lower lip down, decaying away from the mouth line (negative values press/overlap)."""
    decay = np.exp(-np.abs(c.y - ft.MOUTH_Y) / 0.012)  # slow enough that rows never cross at +-2
    return _lips(c) * np.clip(1 - (c.ax / 0.026) ** 2, 0, 1) * _above(c) * decay


SHAPES: List[Tuple[str, float, Field]] = [
    ("head_width", 0.004, lambda c: c.scale(c.head, (0, 0, -0.03), (1, 0, 0))),
    ("head_length", 0.004, lambda c: c.scale(c.head * (c.z < 0.0) * np.clip(-c.z / 0.05, 0, 1), (0, 0, 0), (0, 0, 1))),
    ("head_height", 0.004, lambda c: c.scale(np.clip((c.y - 0.03) / 0.09, 0, 1), (0, 0.03, 0), (0, 1, 0))),
    ("face_length", 0.004, lambda c: c.scale(c.front * np.clip((0.02 - c.y) / 0.06, 0, 1) * c.head,
                                               (0, 0.02, 0), (0, 1, 0.3))),
    ("face_width", 0.003, lambda c: c.scale(c.front * c.head * np.clip((c.y + 0.1) / 0.05, 0, 1), (0, 0, 0), (1, 0, 0))),
    ("nose_length", 0.003, lambda c: c.vec(c.g(0, 0.0, 0.012, 0.012), (0, -0.5, 1))),
    ("nose_size", 0.003, lambda c: c.scale(c.g(0, 0.005, 0.014, 0.022), (0, 0.005, 0.055), (1, 0.6, 1))),
    ("nose_bridge", 0.0025, lambda c: c.vec(c.g(0, 0.020, 0.007, 0.012), (0, 0, 1))),
    ("nose_width", 0.0025, lambda c: c.vec(c.g(0.012, -0.010, 0.007, 0.008, mirror=True) * c.sx, (1, 0, 0))),
    ("nose_tip_tilt", 0.0025, lambda c: c.vec(c.g(0, -0.004, 0.010, 0.008), (0, 1, 0))),
    ("chin_prominence", 0.003, lambda c: c.vec(c.g(0, -0.080, 0.018, 0.014), (0, 0, 1))),
    ("chin_height", 0.003, lambda c: c.vec(c.g(0, -0.085, 0.022, 0.013), (0, -1, 0))),
    ("chin_width", 0.002, lambda c: c.scale(c.g(0, -0.080, 0.022, 0.014), (0, -0.08, 0), (1, 0, 0))),
    ("cheekbones", 0.003, lambda c: c.vec(c.g(0.048, 0.002, 0.013, 0.012, mirror=True), (0, 0, 1)) +
     c.vec(c.g(0.048, 0.002, 0.013, 0.012, mirror=True) * c.sx, (0.6, 0, 0))),
    ("cheek_fullness", 0.003, lambda c: c.vec(c.g(0.040, -0.035, 0.016, 0.016, mirror=True) * c.sx, (1, 0, 0))
     + c.vec(c.g(0.040, -0.035, 0.016, 0.016, mirror=True), (0, 0, 0.3))),
    ("jaw_width", 0.003, lambda c: c.vec(c.g(0.055, -0.060, 0.020, 0.022, mirror=True) * c.sx, (1, 0, 0))),
    ("jaw_angle", 0.003, lambda c: c.vec(c.g(0.058, -0.070, 0.014, 0.014, mirror=True), (0, -1, 0))),
    ("brow_ridge", 0.002, lambda c: c.vec(c.g(0, 0.043, 0.035, 0.008), (0, 0, 1))),
    ("forehead_slope", 0.003, lambda c: c.vec(c.g(0, 0.085, 0.05, 0.025), (0, 0, -1))),
    ("eye_spacing", 0.002, lambda c: c.vec(c.g(0.031, 0.024, 0.012, 0.010, mirror=True) * c.sx, (1, 0, 0))),
    ("eye_height", 0.002, lambda c: c.vec(c.g(0.031, 0.024, 0.014, 0.011, mirror=True), (0, 1, 0))),
    ("eye_depth", 0.002, lambda c: c.vec(c.g(0.031, 0.024, 0.014, 0.011, mirror=True), (0, 0, -1))),
    ("upper_lip_fullness", 0.002, lambda c: c.vec(c.g(0, ft.MOUTH_Y + 0.005, 0.018, 0.005) * (c.side >= 0), (0, 0, 1))),
    ("lower_lip_fullness", 0.002, lambda c: c.vec(c.g(0, ft.MOUTH_Y - 0.006, 0.018, 0.006) * (c.side <= 0), (0, 0, 1))),
    ("mouth_width", 0.0025, lambda c: c.scale(_lips(c), (0, ft.MOUTH_Y, 0), (1, 0, 0)) * 8),
    ("mouth_height", 0.0025, lambda c: c.vec(c.g(0, ft.MOUTH_Y, 0.03, 0.014), (0, 1, 0))),
    ("ear_size", 0.003, lambda c: c.scale(c.g3(ft.EAR_CENTER * [1, 1, 1], (0.02, 0.03, 0.02)) +
                                         c.g3(ft.EAR_CENTER * [-1, 1, 1], (0.02, 0.03, 0.02)),
                                         (0, ft.EAR_CENTER[1], ft.EAR_CENTER[2]), (0, 1, 1)) * 8),
    ("ear_protrusion", 0.003, lambda c: c.vec((c.g3(ft.EAR_CENTER * [1, 1, 1], (0.01, 0.025, 0.015)) +
                                              c.g3(ft.EAR_CENTER * [-1, 1, 1], (0.01, 0.025, 0.015))) * c.sx, (1, 0, 0))),
    ("ear_height", 0.003, lambda c: c.vec(c.g3(ft.EAR_CENTER * [1, 1, 1], (0.015, 0.03, 0.02)) +
                                          c.g3(ft.EAR_CENTER * [-1, 1, 1], (0.015, 0.03, 0.02)), (0, 1, 0))),
    ("neck_thickness", 0.004, lambda c: c.scale(np.clip((-0.10 - c.y) / 0.03, 0, 1), (0, 0, -0.045), (1, 0, 1))),
    ("occiput", 0.003, lambda c: c.vec(c.g3((0, -0.01, -0.12), (0.05, 0.035, 0.04)), (0, 0, -1))),
    ("temple_width", 0.003, lambda c: c.vec(c.g3((0.07, 0.05, 0.0), (0.015, 0.025, 0.03)) * c.sx
                                            + c.g3((-0.07, 0.05, 0.0), (0.015, 0.025, 0.03)) * c.sx, (1, 0, 0))),
    ("crown", 0.003, lambda c: c.vec(c.g3((0, 0.127, -0.03), (0.05, 0.03, 0.05)), (0, 1, 0))),
    ("face_flatness", 0.002, lambda c: c.vec(c.g(0.045, 0.0, 0.02, 0.05, mirror=True), (0, 0, 1))),
    ("philtrum_length", 0.002, lambda c: c.vec(c.g(0, -0.025, 0.02, 0.010) * (c.side >= 0), (0, 1, 0))),
    ("nose_tip_width", 0.002, lambda c: c.vec(c.g(0.006, -0.003, 0.006, 0.007, mirror=True) * c.sx, (1, 0, 0))),
    ("nostril_size", 0.002, lambda c: c.vec(c.g(0.012, -0.011, 0.006, 0.006, mirror=True), (0, 0, 1))),
    ("cheek_hollow", 0.0025, lambda c: c.vec(c.g(0.042, -0.030, 0.012, 0.012, mirror=True), (0, 0, -1))),
    ("under_jaw", 0.003, lambda c: c.vec(c.g3((0, -0.10, 0.02), (0.03, 0.012, 0.025)), (0, -1, 0))),
    ("face_shift", 0.002, lambda c: c.vec(c.g(0, -0.01, 0.03, 0.045), (1, 0, 0))),
    ("face_forward", 0.003, lambda c: c.vec(c.front * c.head * np.clip((c.z + 0.02) / 0.07, 0, 1), (0, 0, 1))),
    ("mouth_depth", 0.002, lambda c: c.vec(c.g(0, ft.MOUTH_Y, 0.025, 0.012), (0, 0, -1))),
]

NUM_RANDOM_SHAPES = 18

EXPRESSIONS: List[Tuple[str, Optional[float], Field]] = [
    ("smile", 0.004, lambda c: c.vec(_corners(c) * c.sx, (0.6, 0, 0)) + c.vec(_corners(c), (0, 1, -0.5))
     + c.vec(c.g(0.040, -0.012, 0.013, 0.012, mirror=True), (0, 0.4, 0.5))),
    ("frown", 0.003, lambda c: c.vec(_corners(c), (0, -1, -0.2))),
    ("brow_raise", 0.004, lambda c: c.vec(_brows(c) + 0.4 * c.g(0, 0.07, 0.05, 0.02), (0, 1, 0.15))),
    ("brow_furrow", 0.003, lambda c: c.vec(c.g(0.015, 0.040, 0.010, 0.010, mirror=True) * c.sx, (-0.8, 0, 0))
     + c.vec(c.g(0.015, 0.040, 0.010, 0.010, mirror=True), (0, -0.6, 0.2))),
    ("eye_close_left", None, lambda c: _lid(c, 1.0)),  # +2 closes the lids exactly
    ("eye_close_right", None, lambda c: _lid(c, -1.0)),
    ("lip_pucker", 0.004, lambda c: c.vec(_lips(c), (0, 0, 1)) + c.vec(_lips(c) * c.sx, (-0.5, 0, 0))),
    ("lip_press", 0.002, lambda c: c.vec(_lips(c), (0, 0, -1)) + c.vec(_lips(c) * c.side, (0, -0.5, 0))),
    ("cheek_puff", 0.004, lambda c: c.vec(c.g(0.038, -0.035, 0.016, 0.016, mirror=True) * c.sx, (1, 0, 0))
     + c.vec(c.g(0.038, -0.035, 0.016, 0.016, mirror=True), (0, 0, 0.4))),
    ("smile_left", 0.004, lambda c: c.vec(_corners(c) * (c.lr > 0), (0.6, 1, -0.5))),
    ("smile_right", 0.004, lambda c: c.vec(_corners(c) * (c.lr < 0), (-0.6, 1, -0.5))),
    ("brow_raise_left", 0.004, lambda c: c.vec(_brows(c, 1), (0, 1, 0.15))),
    ("brow_raise_right", 0.004, lambda c: c.vec(_brows(c, -1), (0, 1, 0.15))),
    ("nose_wrinkle", 0.0025, lambda c: c.vec(c.g(0.010, 0.006, 0.007, 0.008, mirror=True), (0, 1, 0.3))),
    ("upper_lip_raise", 0.003, lambda c: c.vec(c.g(0, ft.MOUTH_Y + 0.004, 0.018, 0.007) * (1 + _above(c)) / 2,
                                                (0, 1, 0.3))),
    ("lower_lip_depress", 0.003, lambda c: c.vec(c.g(0, ft.MOUTH_Y - 0.005, 0.018, 0.008) * (1 - _above(c)) / 2,
                                                  (0, -1, 0.3))),
    ("chin_raise", 0.003, lambda c: c.vec(c.g(0, -0.070, 0.018, 0.014), (0, 1, 0.4))),
    ("squint", 0.003, lambda c: c.vec(c.g(0.031, 0.013, 0.012, 0.005, mirror=True) * ~c.eye, (0, 1, 0.4))),
    # The corner on the side the mouth moves to leads (without it the pair would be one field, negated).
    ("mouth_left", 0.003, lambda c: c.vec(_lips(c) + _corners(c) * (c.lr > 0), (1, 0, 0))),
    ("mouth_right", 0.003, lambda c: c.vec(_lips(c) + _corners(c) * (c.lr < 0), (-1, 0, 0))),
    ("lip_stretch", 0.003, lambda c: c.vec(_corners(c) * c.sx, (1, 0, 0)) + c.vec(_corners(c), (0, 0, -0.3))),
    ("cheek_suck", 0.003, lambda c: c.vec(c.g(0.038, -0.030, 0.012, 0.014, mirror=True) * c.sx, (-1, 0, 0))
     + c.vec(c.g(0.038, -0.030, 0.012, 0.014, mirror=True), (0, 0, -0.3))),
    ("nostril_flare", 0.0015, lambda c: c.vec(c.g(0.013, -0.011, 0.005, 0.005, mirror=True) * c.sx, (1, 0, 0))),
    ("lips_part", 0.0025, lambda c: c.vec(_part(c), (0, 1, 0))),
]

SHAPE_NAMES = tuple(n for n, _, _ in SHAPES) + tuple(f"random_{i}" for i in range(NUM_RANDOM_SHAPES))
EXPRESSION_NAMES = tuple(n for n, _, _ in EXPRESSIONS)


def _normalise(d: np.ndarray, amount: float, name: str) -> np.ndarray:
    peak = np.linalg.norm(d, axis=1).max()
    if not peak > 0:
        raise AssertionError(f"built-in head component '{name}' is zero")
    return d * (amount / peak)


def _random_fields(ctx: _Ctx, count: int, seed: int = 2023) -> List[np.ndarray]:
    """Low-frequency identity variation: sums of broad normal-ish bumps, deterministic. Each bump
    has a twin at its mirrored centre, with the same sign (even components: left/right symmetric)
    or the opposite (odd: antisymmetric), so the basis maps onto itself under a horizontal flip."""
    rng = np.random.default_rng(seed)
    out = []
    centre = np.array([0.0, 0.0, -0.02])
    radial = ctx.p - centre
    radial = radial / (np.linalg.norm(radial, axis=1, keepdims=True) + 1e-9)
    mirror = np.array([-1.0, 1.0, 1.0])
    for i in range(count):
        twin = 1.0 if i % 2 == 0 else -1.0
        d = np.zeros_like(ctx.p)
        for _ in range(3):
            c = centre + rng.normal(size=3) * np.array([0.06, 0.07, 0.07])
            s = rng.uniform(0.025, 0.045)
            w = ctx.g3(c, (s, s, s)) + twin * ctx.g3(c * mirror, (s, s, s))
            d += rng.normal() * w[:, None] * radial
        out.append(_normalise(d * ctx.head[:, None], 0.0025, "random"))
    return out


def shape_components(mesh: HeadMesh) -> np.ndarray:
    """(V, 3, S) shape basis."""
    ctx = _Ctx(mesh)
    comps = [_normalise(f(ctx), amount, name) for name, amount, f in SHAPES]
    comps += _random_fields(ctx, NUM_RANDOM_SHAPES)
    return np.stack(comps, axis=-1)


def expression_components(mesh: HeadMesh) -> np.ndarray:
    """(V, 3, E) expression basis (zero on the back of the skull and the eyeballs)."""
    ctx = _Ctx(mesh)
    comps = []
    for name, amount, f in EXPRESSIONS:
        d = f(ctx)
        d[ctx.eye] = 0.0
        # amount None: the field is a full movement (eyelids closing), taken in two units.
        comps.append(_normalise(d, amount, name) if amount is not None else 0.5 * d)
    return np.stack(comps, axis=-1)
