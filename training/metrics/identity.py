"""ID consistency with the dlib 128-D face descriptor.

**Generator mode** (`id_consistency`). For identity i = 0 .. N-1 (N = `num_identities`):
z_i as in `sampling` (seed s), and the FLAME shape β of data-set item idx_i (drawn as in
`sampling`). The latent is mapped once, conditioned on the frontal camera of the
generator's orbit (yaw 0, pitch 0; truncation ψ, default 1), so every render below shows
the same generated person. The *reference* is the frontal render of β with neutral
expression and pose (ψ = 0, jaw = neck = eyes = 0). The *probes* are
  * views: the neutral head at every yaw in `yaws` (radians, default ±0.35, ±0.7) on the
    same orbit, and
  * expressions: the frontal head with the expression and jaw/neck/eye pose of
    `num_expressions` other random data-set items (β kept).
ID = the mean over identities and probes of cos(d(probe), d(reference)), with d the dlib
descriptor of the largest detected face (`face_models`; fallback box when none is
found). Also reported: the means over views and over expressions separately, and the
fraction of images where a face was detected. 1 = identical descriptors.

**Photo mode** (`photo_identity`), for inversion: the mean cosine similarity of each
render's descriptor to the input photo's descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from next3d.render.cameras import orbit_label
from training.metrics.face_models import FaceModels, cosine_similarity
from training.metrics.feature_nets import MetricError
from training.metrics.sampling import condition_indices, flame_input, generator_device, render, to_uint8

DEFAULT_YAWS = (-0.7, -0.35, 0.35, 0.7)
EXPRESSION_KEYS = ("expression", "jaw", "neck", "left_eye", "right_eye")


@dataclass(frozen=True)
class IdentityOptions:
    """Settings of the generator-mode ID metric."""

    num_identities: int = 100  # N generated identities.
    yaws: Sequence[float] = DEFAULT_YAWS  # View probes: camera yaws (radians) of the neutral head.
    num_expressions: int = 4  # Expression probes per identity (expressions of random data-set items).
    truncation_psi: float = 1.0  # Truncation of the one mapping per identity.
    pitch: float = 0.0  # Camera pitch of every render (radians).


def photo_identity(photo, renders, models: Optional[FaceModels] = None) -> Dict[str, float]:
    """Photo mode: photo (3, H, W) tensor or (H, W, 3) uint8; renders (B, 3, H', W') ->
    {'id_photo': mean cosine, 'id_photo_min': worst render, 'id_photo_distance': mean Euclidean
    distance, 'id_detect_rate': detections / (B + 1)}."""
    models = models or FaceModels()
    ref = models.analyse(photo)
    desc, found = models.describe(renders)
    sims = cosine_similarity(desc, ref.descriptor[None])
    dist = np.linalg.norm(desc - ref.descriptor[None], axis=1)
    return {"id_photo": float(sims.mean()), "id_photo_min": float(sims.min()), "id_photo_distance": float(dist.mean()),
            "id_detect_rate": float((found.sum() + ref.detected) / (len(found) + 1))}


def _neutral(flame: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: (torch.zeros_like(v) if k in EXPRESSION_KEYS else v) for k, v in flame.items()}


@torch.no_grad()
def id_consistency(G: torch.nn.Module, dataset, *, options: IdentityOptions = IdentityOptions(), seed: int = 0,
                   batch: int = 4, models: Optional[FaceModels] = None,
                   on_progress: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
    """Generator mode (module docstring) -> {'id', 'id_views', 'id_expressions', 'id_distance',
    'id_detect_rate', 'id_num'}."""
    if options.num_identities < 1:
        raise MetricError(f"id: expected at least 1 identity, got {options.num_identities}")
    if not options.yaws and options.num_expressions < 1:
        raise MetricError("id: needs view probes (yaws) or expression probes (num_expressions >= 1)")
    models = models or FaceModels()
    device = generator_device(G)
    r = G.config.render
    n = options.num_identities
    ids = condition_indices(len(dataset), n, seed)
    expr_ids = condition_indices(len(dataset), n * options.num_expressions, seed + 1).reshape(n, -1)
    z_all = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    yaws = [0.0] + [float(y) for y in options.yaws]
    cams = orbit_label(torch.tensor(yaws), options.pitch, radius=r.avg_camera_radius, pivot=r.avg_camera_pivot,
                       device=device)
    view_sims, expr_sims, found_all, dists = [], [], [], []
    for i in range(n):
        base = flame_input(G, [dataset[int(ids[i])]], device)
        if "vertices" in base:
            raise MetricError("id: the data set has meshes, not FLAME parameters (needed for neutral renders)")
        neutral = _neutral(base)
        # Every probe of identity i: (camera index, flame) pairs; probe 0 is the reference.
        probes = [(v, neutral) for v in range(len(yaws))]
        for j in expr_ids[i]:
            other = flame_input(G, [dataset[int(j)]], device)
            probes.append((0, {k: (other[k] if k in EXPRESSION_KEYS and k in other else v) for k, v in base.items()}))
        ws = G.mapping(z_all[i:i + 1].to(device), cams[:1], truncation_psi=options.truncation_psi)
        images = []
        for lo in range(0, len(probes), batch):
            chunk = probes[lo:lo + batch]
            flame = {k: torch.cat([p[1][k] for p in chunk]) for k in base}
            cam = cams[[p[0] for p in chunk]]
            out = render(G, None, cam, flame, seed=seed * 100003 + i, ws=ws.expand(len(chunk), -1, -1))
            images.append(to_uint8(out["image"]))
            if on_progress is not None:
                on_progress(len(chunk))
        desc, found = models.describe(torch.cat(images))
        sims = cosine_similarity(desc[1:], desc[:1])
        dists.extend(np.linalg.norm(desc[1:] - desc[:1], axis=1))
        view_sims.extend(sims[:len(yaws) - 1])
        expr_sims.extend(sims[len(yaws) - 1:])
        found_all.extend(found)
    every = np.array(view_sims + expr_sims, dtype=np.float64)
    result = {"id": float(every.mean()), "id_distance": float(np.mean(dists)),
              "id_detect_rate": float(np.mean(found_all)), "id_num": n}
    if view_sims:
        result["id_views"] = float(np.mean(view_sims))
    if expr_sims:
        result["id_expressions"] = float(np.mean(expr_sims))
    return result
