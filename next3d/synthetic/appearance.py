"""Procedural UV albedo of the head: skin tone, redness, blotches, lips, brows, lash line, eyes, stubble.

`sample_appearance` draws a JSON-able dict of appearance parameters; `skin_texture` turns it into
a UV albedo (3, S, S) (linear RGB in [0, 1]) and a specular-strength map (S, S) for the head's
UV layout, evaluated at the rest-template point of every texel (`head.UVBake`), so the same code
paints the built-in head and real FLAME. Facial regions are placed from the template's 68
landmarks; colours are linear RGB (sRGB anchors converted with `srgb_to_linear`).

The texture is a pure function of (assets, appearance dict, size): its noise comes from the
dict's `noise_seed`, so changing one parameter changes only the regions that parameter paints.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from next3d.synthetic import head as head_mod
from next3d.synthetic.distributions import SynthDistributions, uniform

# Light -> dark human skin, sRGB (a smooth palette over the whole range of human skin tones).
SKIN_PALETTE_SRGB = np.array([
    (243, 218, 200), (234, 196, 170), (222, 176, 145), (200, 150, 115), (175, 125, 90),
    (145, 98, 68), (112, 74, 52), (84, 56, 40), (60, 41, 31)], dtype=np.float64)
HAIR_COLOURS_SRGB = {  # (base, jitter) per hair colour class
    "black": ((30, 24, 21), 25), "brown": ((92, 62, 42), 30), "blond": ((196, 164, 112), 14),
    "red": ((150, 72, 38), 15), "grey": ((168, 164, 160), 20)}
IRIS_COLOURS_SRGB = {"brown": (96, 58, 32), "dark": (48, 32, 24), "hazel": (126, 98, 52),
                     "blue": (84, 118, 152), "green": (88, 116, 76)}


def srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _jitter(rng: np.random.Generator, rgb_srgb, amount: float):
    """sRGB colour with its brightness scaled by 1 + N(0, amount %) and each channel by 1 + N(0, 3 %)."""
    scale = (1 + rng.normal(0, amount / 100.0)) * (1 + rng.normal(0, 0.03, 3))
    return np.clip(np.asarray(rgb_srgb, float) * np.clip(scale, 0.3, 2.0), 0, 255)


def skin_colour(tone: float) -> np.ndarray:
    """Linear RGB (3,) of the palette at `tone` in [0, 1] (0 = lightest, 1 = darkest)."""
    pos = np.clip(tone, 0, 1) * (len(SKIN_PALETTE_SRGB) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(SKIN_PALETTE_SRGB) - 1)
    lin = srgb_to_linear(SKIN_PALETTE_SRGB)
    return lin[lo] * (1 - (pos - lo)) + lin[hi] * (pos - lo)


def sample_hair_colour(dist: SynthDistributions, rng: np.random.Generator) -> Tuple[str, list]:
    names = list(HAIR_COLOURS_SRGB)
    name = names[int(rng.choice(len(names), p=np.asarray(dist.hair_colour_probs)))]
    base, jit = HAIR_COLOURS_SRGB[name]
    return name, [float(v) for v in srgb_to_linear(_jitter(rng, base, jit))]


def sample_appearance(dist: SynthDistributions, rng: np.random.Generator, hair_rgb) -> Dict:
    """Skin and face parameters (JSON-able). `hair_rgb` (linear) tints the brows and stubble."""
    tone = uniform(rng, dist.skin_tone_range)
    base = skin_colour(tone)
    hue = rng.normal(0, dist.skin_hue_jitter)  # + warmer/yellower, - pinker
    base = base * np.array([1.0, 1.0 + 0.5 * hue, 1.0 - hue])
    iris_names = list(IRIS_COLOURS_SRGB)
    iris = iris_names[int(rng.choice(len(iris_names), p=np.asarray(dist.iris_palette_probs)))]
    iris_rgb = srgb_to_linear(_jitter(rng, IRIS_COLOURS_SRGB[iris], 15))
    hair_rgb = np.asarray(hair_rgb, float)
    # Brows: the hair colour, darker; very light hair gets light-brown brows.
    brow = np.minimum(hair_rgb * uniform(rng, (0.45, 0.8)), srgb_to_linear([120, 95, 70]))
    stubble = float(uniform(rng, dist.stubble_range)) if rng.random() < dist.stubble_prob else 0.0
    return {
        "skin_tone": float(tone),
        "skin_rgb": [float(v) for v in np.clip(base, 0, 1)],
        "redness": uniform(rng, dist.skin_redness_range),
        "blotch_amp": uniform(rng, dist.blotch_amp_range),
        "fine_noise_amp": uniform(rng, dist.fine_noise_amp_range),
        "lip_darkness": uniform(rng, dist.lip_darkness_range),
        "lip_redness": uniform(rng, dist.lip_redness_range),
        "brow_rgb": [float(v) for v in brow],
        "brow_thickness": uniform(rng, dist.brow_thickness_range),
        "brow_density": uniform(rng, dist.brow_density_range),
        "lash_strength": uniform(rng, dist.lash_strength_range),
        "iris": iris,
        "iris_rgb": [float(v) for v in iris_rgb],
        "pupil_size": uniform(rng, (0.35, 0.55)),
        "sclera_rgb": [float(v) for v in srgb_to_linear(_jitter(rng, (228, 220, 212), 4))],
        "stubble": stubble,
        "specular": uniform(rng, dist.specular_range),
        "roughness": uniform(rng, dist.roughness_range),
        "noise_seed": int(rng.integers(0, 2 ** 31 - 1)),
    }


# ----------------------------------------------------------------------------------------
# Texture.


def _smooth_noise(gen: torch.Generator, size: int, cells: int, channels: int = 1) -> torch.Tensor:
    """(channels, size, size) smooth noise, unit-ish std: a random cells x cells grid, bicubic-upsampled."""
    grid = torch.randn(1, channels, cells, cells, generator=gen)
    return F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)[0]


def _sigmoid(x):
    return torch.sigmoid(x)


def _band(value: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, soft: float) -> torch.Tensor:
    """Soft indicator of lo < value < hi."""
    return _sigmoid((value - lo) / soft) * _sigmoid((hi - value) / soft)


def _interp(x: torch.Tensor, xs: np.ndarray, ys: np.ndarray) -> torch.Tensor:
    order = np.argsort(xs)
    return torch.as_tensor(np.interp(x.numpy(), xs[order], ys[order]), dtype=torch.float32)


def _skin_maps(assets: "head_mod.HeadAssets", size: int) -> Dict[str, torch.Tensor]:
    """The texture's spatial maps that depend only on the model and the size (cached per model): region
    masks placed from the template landmarks, evaluated at every texel's rest-template point."""
    bake = assets.uv_bake(size)
    pos = torch.as_tensor(bake.positions)
    x, y, z = pos[..., 0], pos[..., 1], pos[..., 2]
    ax = x.abs()
    L = assets.template_landmarks
    cls = torch.as_tensor(bake.cls.astype(np.int64))
    face_z = float(L[0, 2])  # in front of the ears: the face
    front = _sigmoid((z - (face_z - 0.01)) / 0.004)
    out: Dict[str, torch.Tensor] = {"front": front}

    # Redness: cheeks, nose tip, ears, chin.
    def g(cx, cy, sx, sy, mirror=True):
        o = torch.exp(-0.5 * (((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
        if mirror:
            o = o + torch.exp(-0.5 * (((x + cx) / sx) ** 2 + ((y - cy) / sy) ** 2))
        return o

    nose_tip = L[30]
    red = (0.8 * g(0.042, nose_tip[1] - 0.012, 0.016, 0.014) + 0.7 * g(0.0, nose_tip[1] + 0.002, 0.008, 0.008, False)
           + 0.3 * g(0.0, L[8, 1] + 0.01, 0.015, 0.01, False)) * front
    out["red"] = red + 0.6 * _sigmoid((ax - 0.072) / 0.004) * _sigmoid((y - L[5, 1]) / 0.01)  # ears
    # Around the eyes: a little darker and browner.
    out["sockets"] = [torch.exp(-0.5 * (((x - c[0]) / 0.017) ** 2 + ((y - c[1] - 0.001) / 0.010) ** 2)) * front
                      for c in (L[36:42].mean(0), L[42:48].mean(0))]
    # Stubble: the beard-shadow region.
    below_nose = _sigmoid(((L[33, 1] - 0.004) - y) / 0.002)
    jaw_line = _interp(x, L[:17, 0], L[:17, 1])
    above_neck = _sigmoid((y - (jaw_line - 0.018)) / 0.004)
    cheeks = _sigmoid((L[48, 1] + 0.012 - y) / 0.006) + _sigmoid((0.02 - ax) / 0.004)
    out["beard"] = below_nose * above_neck * cheeks.clamp(max=1) * front
    # Lips: between the outer lip contours.
    up_ids, lo_ids = [48, 49, 50, 51, 52, 53, 54], [48, 59, 58, 57, 56, 55, 54]
    y_up = _interp(x, L[up_ids, 0], L[up_ids, 1])
    y_lo = _interp(x, L[lo_ids, 0], L[lo_ids, 1])
    half_w = 0.5 * (L[54, 0] - L[48, 0])
    lips = _band(y, y_lo - 0.0005, y_up + 0.0005, 0.0007) * _sigmoid((half_w + 0.001 - ax) / 0.0012)
    out["lips"] = lips * _sigmoid((z - (L[48, 2] - 0.008)) / 0.002)
    # The line between the lips: dark, thin.
    y_mid = 0.5 * (L[62, 1] + L[66, 1])
    out["lip_line"] = torch.exp(-0.5 * ((y - y_mid) / 0.0007) ** 2) * _sigmoid((half_w - ax) / 0.0015) * front
    # Under the jaw: the neck a little darker, darkest just below the jaw line (where light rarely reaches).
    jaw_y = _interp(x, L[2:15, 0], L[2:15, 1])
    below = (jaw_y - y).clamp(min=0)
    under = _sigmoid((jaw_y - 0.003 - y) / 0.0015) * (0.35 * torch.exp(-below / 0.02) + 0.12)
    out["under"] = under * _sigmoid((z - (L[4, 2] - 0.03)) / 0.01)
    # Brows: per brow the landmark curve height at every texel, the position along it and the extent mask.
    brows = []
    for ids in ([17, 18, 19, 20, 21], [26, 25, 24, 23, 22]):  # tail -> inner end
        pts = L[ids]
        xs, ys = pts[:, 0], pts[:, 1]
        lo_x, hi_x = min(xs), max(xs)
        inner = np.abs(pts[-1, 0])
        frac = ((x.abs() - inner) / max(abs(pts[0, 0]) - inner, 1e-6)).clamp(0, 1)  # 0 inner .. 1 tail
        along = _band(x, torch.tensor(lo_x - 0.003), torch.tensor(hi_x + 0.002), 0.0015)
        brows.append((_interp(x, xs, ys), frac, along))
    out["brows"] = brows
    # Upper lash line (dark, just above the upper lid margin) and a lighter lower one (per unit strength).
    lash = []
    for up, lo in (([36, 37, 38, 39], [36, 41, 40, 39]), ([42, 43, 44, 45], [42, 47, 46, 45])):
        xs = L[up, 0]
        y_m = _interp(x, xs, L[up, 1])
        y_l = _interp(x, L[lo, 0], L[lo, 1])
        along = _band(x, torch.tensor(min(xs) - 0.0015), torch.tensor(max(xs) + 0.003), 0.0008)
        lash.append((_band(y, y_m - 0.0004, y_m + 0.0014, 0.0004) * along,
                     _band(y, y_l - 0.0008, y_l + 0.0002, 0.0003) * along))
    out["lash"] = lash
    out["lash_mask"] = front * _sigmoid((z - (L[36, 2] - 0.006)) / 0.002)
    # Nostrils: dark under the nose either side of the columella.
    nost = g(0.5 * (L[33, 0] - L[31, 0]) * 0.9, L[33, 1] + 0.0015, 0.0032, 0.0018) * front
    out["nostrils"] = (nost * _sigmoid((nose_tip[2] - 0.004 - z) / 0.002)).clamp(0, 1)
    out["is_eye"] = (cls == head_mod.EYES).float()
    out["is_mouth"] = (cls == head_mod.MOUTH).float()
    out["tzone"] = (g(0.0, L[27, 1] + 0.03, 0.03, 0.02, False) + g(0.0, L[30, 1] + 0.005, 0.009, 0.02, False)).clamp(0, 1)
    out["y"] = y
    return out


def skin_texture(assets: "head_mod.HeadAssets", app: Dict, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """UV albedo (3, size, size) linear RGB in [0, 1] and specular strength (size, size) in [0, 1]."""
    maps = assets.cached(("skin_maps", size), lambda: _skin_maps(assets, size))
    gen = torch.Generator().manual_seed(int(app["noise_seed"]))
    front, y = maps["front"], maps["y"]

    skin = torch.tensor(app["skin_rgb"], dtype=torch.float32)[:, None, None]
    albedo = skin.expand(3, size, size).clone()
    red = maps["red"] * app["redness"]
    albedo = albedo * (1 - red * torch.tensor([0.0, 0.22, 0.26])[:, None, None])
    for sock in maps["sockets"]:
        albedo = albedo * (1 - 0.14 * sock * torch.tensor([0.7, 1.0, 1.1])[:, None, None])

    # Low-frequency blotches and fine noise (luminance with a little chroma).
    blot = _smooth_noise(gen, size, 10, 3)
    lum = blot.mean(0, keepdim=True)
    albedo = albedo * (1 + app["blotch_amp"] * (lum + 0.3 * (blot - lum)))
    fine = _smooth_noise(gen, size, size // 2, 1) * 0.8
    albedo = albedo * (1 + app["fine_noise_amp"] * fine)

    # Stubble: the beard-shadow region with dots.
    if app["stubble"] > 0:
        dots = (torch.rand(1, size, size, generator=gen) < 0.55).float()
        amount = (app["stubble"] * maps["beard"] * (0.55 + 0.45 * dots)).clamp(0, 1)
        dark = torch.tensor(app["brow_rgb"], dtype=torch.float32)[:, None, None] * 0.8
        albedo = albedo * (1 - 0.55 * amount) + dark * 0.55 * amount

    lips = maps["lips"]
    lip_rgb = skin * app["lip_darkness"] * torch.tensor([1.0, 1.0 - 0.45 * app["lip_redness"],
                                                         1.0 - 0.3 * app["lip_redness"]])[:, None, None]
    albedo = albedo * (1 - lips) + lip_rgb * (1 + 0.5 * app["fine_noise_amp"] * fine) * lips
    albedo = albedo * (1 - 0.6 * maps["lip_line"])
    albedo = albedo * (1 - maps["under"])

    # Brows: a band under the brow landmarks (thick at the inner end, thin at the tail), hairy.
    brow_rgb = torch.tensor(app["brow_rgb"], dtype=torch.float32)[:, None, None]
    streaks = _smooth_noise(gen, size, size // 6, 1)
    brows = torch.zeros(size, size)
    for yb, frac, along in maps["brows"]:
        height = app["brow_thickness"] * (0.0085 - 0.0045 * frac)
        brows = brows + _band(y, yb - height, yb + 0.001, 0.0009) * along
    brows = brows.clamp(0, 1) * front
    density = (app["brow_density"] * (0.85 + 0.25 * streaks[0])).clamp(0, 1)
    brows = brows * density
    albedo = albedo * (1 - brows) + brow_rgb * brows

    lash = torch.zeros(size, size)
    for upper, lower in maps["lash"]:
        lash = lash + app["lash_strength"] * upper
        lash = lash + 0.35 * app["lash_strength"] * lower
    lash = (lash.clamp(0, 1) * maps["lash_mask"])
    albedo = albedo * (1 - 0.85 * lash)
    albedo = albedo * (1 - 0.75 * maps["nostrils"])

    # Eyes: painted per pixel by `eye_albedo` (the UV layout gives them few texels); a sclera tone here.
    is_eye = maps["is_eye"]
    sclera = torch.tensor(app["sclera_rgb"], dtype=torch.float32)[:, None, None]
    albedo = albedo * (1 - is_eye) + sclera * is_eye

    # Mouth interior texels (inner lips, pocket): dark red.
    is_mouth = maps["is_mouth"]
    mouth_rgb = torch.tensor([0.20, 0.045, 0.04])[:, None, None]
    albedo = albedo * (1 - is_mouth) + mouth_rgb * is_mouth

    # Specular strength: T-zone shinier, brows and stubble matte, lips glossy, eyes wet.
    spec = app["specular"] * (0.7 + 0.6 * maps["tzone"] * front) * (1 - 0.8 * brows) * (1 + 0.6 * lips)
    spec = spec * (1 - is_eye) + 0.5 * is_eye
    spec = spec * (1 - is_mouth) + 0.15 * is_mouth
    return albedo.clamp(0, 1).contiguous(), spec.clamp(0, 1).contiguous()


def eye_albedo(local: torch.Tensor, app: Dict) -> torch.Tensor:
    """Albedo (N, 3) of eyeball points given in the eyeball's rest frame (N, 3) (centre at 0, the
    front pole +z): sclera (pinker and darker towards the back), iris with radial fibres and a dark
    limbal ring, pupil."""
    polar = torch.atan2(torch.hypot(local[:, 0], local[:, 1]), local[:, 2])
    azim = torch.atan2(local[:, 1], local[:, 0])
    iris_r, pupil_r = 0.44, 0.44 * app["pupil_size"]
    sclera = torch.tensor(app["sclera_rgb"], dtype=torch.float32)[None]
    sclera = sclera * (1 - 0.3 * _sigmoid((polar - 1.1) / 0.15))[:, None]
    sclera = sclera * (1 - _sigmoid((polar - 0.8) / 0.2)[:, None] * torch.tensor([0.0, 0.1, 0.12]))
    iris = torch.tensor(app["iris_rgb"], dtype=torch.float32)[None]
    fibres = 0.5 + 0.25 * torch.sin(azim * 37.0 + 2.0 * torch.sin(azim * 5.0)) + 0.25 * torch.sin(azim * 61.0)
    rel = (polar / iris_r).clamp(0, 1)
    iris = iris * (0.7 + 0.5 * fibres * rel)[:, None] * (1.2 - 0.4 * rel)[:, None]
    iris = iris * (1 - 0.6 * _sigmoid((polar - 0.88 * iris_r) / 0.02))[:, None]  # limbal ring
    in_iris = _sigmoid((iris_r - polar) / 0.012)[:, None]
    in_pupil = _sigmoid((pupil_r - polar) / 0.01)[:, None]
    eye = sclera * (1 - in_iris) + iris * in_iris
    return eye * (1 - in_pupil) + 0.008 * in_pupil
