"""Every sampling distribution of the synthetic-heads set, in one typed config, and the draws.

`SynthDistributions` holds the numbers (one documented field each); the functions here draw the
FLAME parameters and the camera; `appearance`, `hair`, `body`, `lighting` and `background`
draw their own parameters from the same config. Every draw of one item comes from one numpy
`Generator` seeded by `item_rng(seed, index)`, so an item depends only on (seed, index).

Angles are degrees in the config and radians in the FLAME parameters. FLAME axes: x to the
subject's left, y up, z towards the viewer; jaw `x` rotation > 0 opens the mouth; neck and eye
`y` rotation > 0 turn towards the subject's left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from next3d.render import cameras


@dataclass(frozen=True)
class SynthDistributions:
    """Distributions of one synthetic item. Probabilities in [0, 1]; std = standard deviation."""

    # --- identity and expression -----------------------------------------------------------
    shape_std: float = 1.0  # each shape coefficient ~ N(0, shape_std), clipped to +-shape_clip
    shape_clip: float = 2.5  # |shape coefficient| limit
    flame_num_shape: int = 100  # real FLAME: leading shape components drawn and stored (rest 0)
    flame_num_expression: int = 50  # real FLAME: leading expression components drawn and stored
    expression_std: float = 0.3  # every expression coefficient ~ N(0, expression_std) ...
    expression_active_prob: float = 0.2  # ... and with this probability adds N(0, expression_active_std)
    expression_active_std: float = 0.9  # a strong activation of one component
    expression_clip: float = 2.0  # |expression coefficient| limit (built-in: +-2 stays plausible)
    # jaw (x rotation, radians): closed / slightly open / wide open, with these probabilities
    jaw_mode_probs: Tuple[float, float, float] = (0.65, 0.23, 0.12)
    jaw_closed_max: float = 0.02  # closed: U(0, jaw_closed_max)
    jaw_slight_range: Tuple[float, float] = (0.03, 0.14)  # slightly open: uniform in this range
    jaw_wide_range: Tuple[float, float] = (0.16, 0.38)  # wide open: uniform in this range
    jaw_lateral_std: float = 0.025  # jaw y rotation (sideways), radians
    # gaze: with gaze_at_camera_prob both eyes look at the camera, else random conjugate gaze
    gaze_at_camera_prob: float = 0.55
    gaze_yaw_std_deg: float = 12.0  # random gaze yaw (eye y rotation)
    gaze_pitch_std_deg: float = 7.0  # random gaze pitch (eye x rotation, > 0 looks down)
    gaze_max_deg: float = 30.0  # clip of every gaze angle
    # eyelids (built-in head: the eye_close components; real FLAME has none)
    eyes_closed_prob: float = 0.05  # both eyes fully closed (blink)
    eyes_half_prob: float = 0.12  # both eyes half closed: closure ~ U(eyes_half_range)
    eyes_half_range: Tuple[float, float] = (0.25, 0.7)  # fraction of full closure
    wink_prob: float = 0.02  # one eye closed, the other open
    # neck pose (degrees): pitch (x), yaw (y), roll (z) ~ N(0, std) each
    neck_std_deg: Tuple[float, float, float] = (5.0, 6.0, 3.0)

    # --- camera (EG3D label, orbit around the pivot) ----------------------------------------
    yaw_core_std_deg: float = 11.0  # most cameras: yaw ~ N(0, yaw_core_std_deg) ...
    yaw_tail_prob: float = 0.22  # ... with this probability yaw ~ N(0, yaw_tail_std_deg) instead
    yaw_tail_std_deg: float = 32.0
    yaw_max_deg: float = 60.0  # |yaw| limit (redrawn beyond it)
    pitch_std_deg: float = 6.0  # camera pitch (> 0 looks from above) ~ N(0, std)
    pitch_max_deg: float = 20.0
    roll_std_deg: float = 2.5  # camera roll about its optical axis
    roll_max_deg: float = 8.0
    radius: float = cameras.DEFAULT_RADIUS  # orbit radius (world units)
    pivot: Tuple[float, float, float] = tuple(cameras.DEFAULT_PIVOT)  # look-at point (world)
    focal: float = cameras.FFHQ_FOCAL  # normalised focal length (FFHQ)

    # --- skin and face appearance (appearance.py) --------------------------------------------
    skin_tone_range: Tuple[float, float] = (0.0, 1.0)  # position on the light->dark palette, uniform
    skin_hue_jitter: float = 0.035  # undertone: red/yellow shift of the base skin colour
    skin_redness_range: Tuple[float, float] = (0.15, 0.6)  # cheeks, nose tip, ears redder by this much
    blotch_amp_range: Tuple[float, float] = (0.03, 0.10)  # low-frequency blotches, relative
    fine_noise_amp_range: Tuple[float, float] = (0.02, 0.06)  # per-texel noise, relative
    lip_darkness_range: Tuple[float, float] = (0.5, 0.78)  # lip albedo = skin * this, reddened
    lip_redness_range: Tuple[float, float] = (0.35, 0.85)
    brow_thickness_range: Tuple[float, float] = (0.6, 1.3)  # relative brow height
    brow_density_range: Tuple[float, float] = (0.55, 1.0)
    lash_strength_range: Tuple[float, float] = (0.5, 1.0)  # darkness of the upper lash line
    iris_palette_probs: Tuple[float, ...] = (0.45, 0.2, 0.12, 0.13, 0.1)  # brown, dark, hazel, blue, green
    stubble_prob: float = 0.22  # optional stubble / beard shadow
    stubble_range: Tuple[float, float] = (0.2, 0.9)  # stubble density
    specular_range: Tuple[float, float] = (0.02, 0.12)  # skin specular strength
    roughness_range: Tuple[float, float] = (0.35, 0.75)  # skin roughness (higher = broader highlight)

    # --- hair (hair.py) --------------------------------------------------------------------
    hair_style_probs: Dict[str, float] = field(default_factory=lambda: {
        "bald": 0.06, "buzz": 0.12, "short": 0.32, "bob": 0.2, "long": 0.22, "cap": 0.08})
    hair_colour_probs: Tuple[float, ...] = (0.38, 0.3, 0.14, 0.06, 0.12)  # black, brown, blond, red, grey
    hair_thickness_scale: Tuple[float, float] = (0.7, 1.4)  # volume of the style, relative
    hairline_range: Tuple[float, float] = (-0.008, 0.012)  # forehead hairline offset (FLAME metres)
    fringe_prob: float = 0.25  # bob / long: hair over the forehead
    long_length_range: Tuple[float, float] = (0.18, 0.32)  # long: how far below the eyes it ends (m)

    # --- neck, shoulders, clothing (body.py) ----------------------------------------------
    shoulder_width_range: Tuple[float, float] = (0.17, 0.22)  # half-width of the shoulders (m)
    neckline_probs: Tuple[float, float, float] = (0.5, 0.3, 0.2)  # crew, v-neck, open (bare shoulders)

    # --- lighting (lighting.py) -------------------------------------------------------------
    ambient_range: Tuple[float, float] = (0.25, 0.6)  # SH environment strength relative to the key
    key_azimuth_max_deg: float = 70.0  # key light direction: azimuth ~ U(+-max) around the front
    key_elevation_range_deg: Tuple[float, float] = (5.0, 55.0)  # and elevation above the horizon
    key_intensity_range: Tuple[float, float] = (0.7, 1.5)
    colour_temperature_range: Tuple[float, float] = (3200.0, 7500.0)  # key light, kelvin
    exposure_range: Tuple[float, float] = (0.85, 1.2)
    shadows: bool = True  # key-light shadow map (nose, hair, chin shadows)

    # --- background (background.py) ---------------------------------------------------------
    background_kind_probs: Tuple[float, float, float] = (0.25, 0.35, 0.4)  # flat, gradient, textured
    sensor_noise_range: Tuple[float, float] = (0.0, 0.012)  # Gaussian noise on the final image

    # --- rendering ---------------------------------------------------------------------------
    supersample: int = 2  # anti-aliasing: render at supersample x resolution, box-filter down

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        for name in ("jaw_mode_probs", "iris_palette_probs", "hair_colour_probs", "neckline_probs",
                     "background_kind_probs"):
            probs = np.asarray(getattr(self, name), dtype=float)
            if (probs < 0).any() or not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-6):
                raise ValueError(f"SynthDistributions.{name}: expected probabilities summing to 1, got {tuple(probs)}")
        hp = np.asarray(list(self.hair_style_probs.values()), dtype=float)
        if (hp < 0).any() or not math.isclose(float(hp.sum()), 1.0, abs_tol=1e-6):
            raise ValueError(f"SynthDistributions.hair_style_probs: expected probabilities summing to 1, "
                             f"got {self.hair_style_probs}")
        if not 1 <= self.supersample <= 4:
            raise ValueError(f"SynthDistributions.supersample: expected 1..4, got {self.supersample}")
        if not 0 < self.yaw_max_deg <= 90:
            raise ValueError(f"SynthDistributions.yaw_max_deg: expected (0, 90], got {self.yaw_max_deg}")


def item_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of item `index` of the set drawn with `seed` (independent of any other item)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)])))


def uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _clipped_normal(rng: np.random.Generator, std: float, limit: float) -> float:
    """N(0, std) redrawn until |x| <= limit (a truncated normal; falls back to a clip)."""
    for _ in range(32):
        x = float(rng.normal(0.0, std))
        if abs(x) <= limit:
            return x
    return float(np.clip(x, -limit, limit))


# ----------------------------------------------------------------------------------------
# Camera.


@dataclass(frozen=True)
class CameraDraw:
    """yaw, pitch, roll in degrees (yaw > 0 shows the subject's left cheek, pitch > 0 from above)
    and the label (25,) float32."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    label: np.ndarray


def camera_label(yaw_deg: float, pitch_deg: float, roll_deg: float, dist: SynthDistributions) -> np.ndarray:
    """EG3D label (25,) float32: orbit camera at `dist.radius` around `dist.pivot`, rolled about its axis."""
    c2w = cameras.orbit_cam2world(math.radians(yaw_deg), math.radians(pitch_deg), dist.radius, dist.pivot,
                                  dtype=torch.float64)
    r = math.radians(roll_deg)
    roll = torch.tensor([[math.cos(r), -math.sin(r), 0.0], [math.sin(r), math.cos(r), 0.0], [0.0, 0.0, 1.0]],
                        dtype=torch.float64)
    c2w[:, :3, :3] = c2w[:, :3, :3] @ roll
    intr = cameras.intrinsics(dist.focal, batch=1, dtype=torch.float64)
    return cameras.make_label(c2w, intr)[0].float().numpy()


def sample_camera(dist: SynthDistributions, rng: np.random.Generator) -> CameraDraw:
    """FFHQ-like pose: mostly frontal, yaw tails to about +-yaw_max_deg, small pitch and roll."""
    std = dist.yaw_tail_std_deg if rng.random() < dist.yaw_tail_prob else dist.yaw_core_std_deg
    yaw = _clipped_normal(rng, std, dist.yaw_max_deg)
    pitch = _clipped_normal(rng, dist.pitch_std_deg, dist.pitch_max_deg)
    roll = _clipped_normal(rng, dist.roll_std_deg, dist.roll_max_deg)
    return CameraDraw(yaw, pitch, roll, camera_label(yaw, pitch, roll, dist))


# ----------------------------------------------------------------------------------------
# FLAME parameters.


def _expression_index(names: Optional[Sequence[str]], name: str) -> Optional[int]:
    if names is None or name not in names:
        return None
    return list(names).index(name)


def sample_flame(dist: SynthDistributions, rng: np.random.Generator, num_shape: int, num_expression: int,
                 expression_names: Optional[Sequence[str]] = None,
                 camera_position_flame: Optional[np.ndarray] = None,
                 eye_center_flame: Optional[np.ndarray] = None) -> Tuple[Dict[str, np.ndarray], Dict[str, float]]:
    """Draw FLAME parameters (float32 arrays: shape (num_shape,), expression (num_expression,),
    neck, jaw, left_eye, right_eye (3,)) and a small dict of what was chosen (JSON-able).

    `expression_names` (built-in head) lets the eyelid closure use the eye_close components.
    `camera_position_flame` / `eye_center_flame` (FLAME space, (3,)) let the gaze look at the camera.
    """
    shape = np.clip(rng.normal(0.0, dist.shape_std, num_shape), -dist.shape_clip, dist.shape_clip)
    expr = rng.normal(0.0, dist.expression_std, num_expression)
    active = rng.random(num_expression) < dist.expression_active_prob
    expr = expr + active * rng.normal(0.0, dist.expression_active_std, num_expression)
    expr = np.clip(expr, -dist.expression_clip, dist.expression_clip)
    info: Dict[str, float] = {}

    # Eyelids: the built-in head's eye_close components (+2 = fully closed); random activation of
    # them above is replaced by the blink model.
    left_id = _expression_index(expression_names, "eye_close_left")
    right_id = _expression_index(expression_names, "eye_close_right")
    u = rng.random()
    closure_l = closure_r = float(np.clip(rng.normal(0.0, 0.06), -0.15, 0.15))  # a little open/closed
    if u < dist.eyes_closed_prob:
        closure_l = closure_r = 1.0
    elif u < dist.eyes_closed_prob + dist.eyes_half_prob:
        closure_l = closure_r = uniform(rng, dist.eyes_half_range)
    elif u < dist.eyes_closed_prob + dist.eyes_half_prob + dist.wink_prob:
        if rng.random() < 0.5:
            closure_l = 1.0
        else:
            closure_r = 1.0
    if left_id is not None and right_id is not None:
        expr[left_id] = 2.0 * closure_l
        expr[right_id] = 2.0 * closure_r
        info["eye_closure_left"], info["eye_closure_right"] = closure_l, closure_r

    # Jaw.
    mode = int(rng.choice(3, p=np.asarray(dist.jaw_mode_probs)))
    if mode == 0:
        jaw_open = uniform(rng, (0.0, dist.jaw_closed_max))
    elif mode == 1:
        jaw_open = uniform(rng, dist.jaw_slight_range)
    else:
        jaw_open = uniform(rng, dist.jaw_wide_range)
    jaw = np.array([jaw_open, rng.normal(0.0, dist.jaw_lateral_std), 0.0])
    info["jaw_mode"] = ("closed", "slight", "wide")[mode]

    neck = np.radians([rng.normal(0.0, s) for s in dist.neck_std_deg])

    # Gaze: conjugate (both eyes the same rotation).
    at_camera = rng.random() < dist.gaze_at_camera_prob
    g_yaw = math.radians(rng.normal(0.0, dist.gaze_yaw_std_deg))
    g_pitch = math.radians(rng.normal(0.0, dist.gaze_pitch_std_deg))
    if at_camera and camera_position_flame is not None and eye_center_flame is not None:
        # Direction to the camera in the head frame (undo the neck rotation).
        from scipy.spatial.transform import Rotation

        d = np.asarray(camera_position_flame, float) - np.asarray(eye_center_flame, float)
        d = Rotation.from_rotvec(neck).inv().apply(d)
        g_yaw = math.atan2(d[0], d[2])
        g_pitch = math.atan2(-d[1], math.hypot(d[0], d[2]))
    lim = math.radians(dist.gaze_max_deg)
    g_yaw, g_pitch = float(np.clip(g_yaw, -lim, lim)), float(np.clip(g_pitch, -lim, lim))
    eye = np.array([g_pitch, g_yaw, 0.0])
    info["gaze_at_camera"] = bool(at_camera)

    params = {"shape": shape, "expression": expr, "neck": neck, "jaw": jaw, "left_eye": eye, "right_eye": eye.copy()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in params.items()}, info
