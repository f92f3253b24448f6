"""Lighting: a second-order spherical-harmonics environment plus a directional key light.

Directions are in world space (EG3D's, = FLAME axes: x to the subject's left, y up, z towards
the face's front); the light stays with the scene, so the shading changes with the camera.

* SH: 9 real SH coefficients per RGB channel (`sh` (9, 3), order l=0; l=1: y, z, x; l=2: xy,
  yz, 3z^2-1, xz, x^2-y^2, the usual real basis). `irradiance(n, sh)` is the clamped
  cosine-convolved environment divided by pi (a uniform environment of radiance a gives a).
  The environment is drawn as a sum of a few broad lobes (sky above, warm bounce below, a
  coloured fill from a random side) projected onto the basis, so it is plausible and smooth.
* Key light: unit direction towards the light, linear-RGB colour from a colour temperature,
  an intensity; diffuse (wrapped Lambert) and a Blinn-Phong highlight, shadowed by a shadow map.
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch

from next3d.synthetic.distributions import SynthDistributions, uniform

_SH_C = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)
_A_HAT = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)


def sh_basis_np(d: np.ndarray) -> np.ndarray:
    """Real SH basis (9,) ... for unit directions (..., 3)."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    c0, c1, c2, c3, c4 = _SH_C
    return np.stack([np.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z, c3 * (3 * z * z - 1),
                     c2 * x * z, c4 * (x * x - y * y)], -1)


def irradiance(normals: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
    """Normals (..., 3) unit, world space; sh (9, 3) -> (..., 3) diffuse light (>= 0)."""
    x, y, z = normals[..., 0], normals[..., 1], normals[..., 2]
    c0, c1, c2, c3, c4 = _SH_C
    basis = torch.stack([torch.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                         c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)], -1)
    coeff = sh * torch.as_tensor(_A_HAT / np.pi, dtype=sh.dtype)[:, None]
    return (basis @ coeff).clamp(min=0.0)


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Linear RGB (3,) of a black body at `kelvin` (an approximation), normalised to luminance 1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    srgb = np.clip([r, g, b], 0, 255) / 255.0
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return lin / (0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2])


def _direction(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.sin(a) * math.cos(e), math.sin(e), math.cos(a) * math.cos(e)])


def sample_lighting(dist: SynthDistributions, rng: np.random.Generator) -> Dict:
    """Key light (direction, colour, intensity), SH environment (9, 3) and exposure (JSON-able)."""
    az = uniform(rng, (-dist.key_azimuth_max_deg, dist.key_azimuth_max_deg))
    el = uniform(rng, dist.key_elevation_range_deg)
    key_rgb = kelvin_to_rgb(uniform(rng, dist.colour_temperature_range))
    ambient = uniform(rng, dist.ambient_range)
    lobes = [((0.0, 1.0, 0.0), kelvin_to_rgb(uniform(rng, (6000, 11000))), 1.0),  # sky / ceiling
             ((0.0, -1.0, 0.3), kelvin_to_rgb(uniform(rng, (3000, 5000))) * rng.uniform(0.2, 0.5), 1.0),  # bounce
             (tuple(_direction(rng.uniform(-180, 180), rng.uniform(-20, 40))),
              np.clip(rng.uniform(0.3, 1.0, 3), 0, 1) * rng.uniform(0.2, 0.8), 1.0),  # coloured fill
             ((0.0, 0.0, 0.0), np.ones(3), 1.0)]  # uniform part
    sh = np.zeros((9, 3))
    for d, rgb, _ in lobes:
        d = np.asarray(d, float)
        n = np.linalg.norm(d)
        if n == 0:
            sh[0] += np.asarray(rgb) * 0.8 / _SH_C[0]
        else:
            sh += sh_basis_np(d / n)[:, None] * np.asarray(rgb)[None] * 1.3
    # Normalise the environment to `ambient` (mean irradiance over the sphere = DC term).
    sh *= ambient / (sh[0].mean() * _SH_C[0])
    return {"key_direction": [float(v) for v in _direction(az, el)], "key_azimuth_deg": az, "key_elevation_deg": el,
            "key_rgb": [float(v) for v in key_rgb], "key_intensity": uniform(rng, dist.key_intensity_range),
            "ambient": ambient, "sh": [[float(v) for v in row] for row in sh],
            "exposure": uniform(rng, dist.exposure_range)}
