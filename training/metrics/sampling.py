"""Generated samples for the metrics, conditioned as in training.

Sample k (k = 0 .. N-1) of a run with seed s: z ~ N(0, I) from torch.Generator(s) (all N
drawn at once, so any batch size gives the same samples), and the camera label and FLAME
parameters of data-set item `idx[k]`, idx = numpy RandomState(s).randint(len, size=N)
(items drawn with replacement). The camera conditions the mapping and renders the view;
truncation ψ = 1 unless given. Ray jitter and per-pixel noise use RNGs seeded by s and
the batch index. FLAME vectors longer than the generator's head model are cut to its
component counts (shorter ones are zero-padded by FLAME); items of the published layout
drive the generator with their meshes (`vertices`, `landmarks_3d`).

Images come back as the uint8 pixels a saved PNG would hold: round(127.5·x + 127.5)
clamped to [0, 255], (B, 3, H, W); the raw render and depth as float.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import torch

from training.metrics.feature_nets import MetricError

FLAME_KEYS = ("shape", "expression", "neck", "jaw", "left_eye", "right_eye")


@dataclass
class GeneratedBatch:
    """One batch of generated samples (tensors on the generator's device unless noted).

    images (B, 3, H, W) uint8 (CPU); image (B, 3, H, W) float ~[-1, 1]; image_raw (B, 3, R, R);
    depth (B, 1, R, R) along-ray depth (world units); camera (B, 25); flame: the FLAME input given
    to G; indices (B,) data-set items used; z (B, z_dim).
    """

    images: torch.Tensor
    image: torch.Tensor
    image_raw: torch.Tensor
    depth: torch.Tensor
    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    indices: np.ndarray
    z: torch.Tensor


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """float (B, 3, H, W) in [-1, 1] -> uint8 as saved (CPU)."""
    return (image.detach().float() * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def generator_device(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device


def flame_input(G: torch.nn.Module, items: List[Mapping[str, Any]], device) -> Dict[str, torch.Tensor]:
    """The FLAME input of G for a list of data-set items (module docstring)."""
    if all("flame" in it for it in items):
        counts = {"shape": G.flame.num_shape, "expression": G.flame.num_expression}
        out = {}
        for key in FLAME_KEYS:
            if key not in items[0]["flame"]:
                continue
            value = torch.stack([torch.as_tensor(it["flame"][key]).float() for it in items]).to(device)
            if key in counts:
                value = value[:, :counts[key]]
            out[key] = value
        if not out:
            raise MetricError("data set items have an empty 'flame' dict")
        return out
    if all("vertices" in it and "landmarks_3d" in it for it in items):
        return {"vertices": torch.stack([torch.as_tensor(it["vertices"]) for it in items]).float().to(device),
                "landmarks": torch.stack([torch.as_tensor(it["landmarks_3d"]) for it in items]).float().to(device)}
    raise MetricError("data set items need 'flame' parameters (or 'vertices' and 'landmarks_3d') to drive the "
                      "generator")


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def condition_indices(num_items: int, num: int, seed: int) -> np.ndarray:
    if num_items < 1:
        raise MetricError("the data set is empty: no cameras or FLAME parameters to condition on")
    return np.random.RandomState(seed % (2 ** 32)).randint(num_items, size=int(num))


@torch.no_grad()
def render(G: torch.nn.Module, z: torch.Tensor, camera: torch.Tensor, flame: Mapping[str, torch.Tensor], *,
           seed: int, truncation_psi: float = 1.0, cond_camera: Optional[torch.Tensor] = None,
           ws: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """One seeded generator call in eval mode: mapping on `cond_camera` (default `camera`), or
    the given ws; returns G's synthesis dict."""
    device = generator_device(G)
    was = G.training
    G.eval()
    try:
        with seeded(seed, device):
            gen = torch.Generator(device=device).manual_seed(seed)
            if ws is None:
                ws = G.mapping(z, cond_camera if cond_camera is not None else camera, truncation_psi=truncation_psi)
            return G.synthesis(ws, camera, dict(flame), generator=gen)
    finally:
        G.train(was)


def generated_batches(G: torch.nn.Module, dataset, num: int, *, batch: int = 4, seed: int = 0,
                      truncation_psi: float = 1.0) -> Iterator[GeneratedBatch]:
    """`num` generated samples in batches (module docstring)."""
    if num < 1:
        raise MetricError(f"number of generated images: expected at least 1, got {num}")
    device = generator_device(G)
    indices = condition_indices(len(dataset), num, seed)
    z_all = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    for k, lo in enumerate(range(0, num, batch)):
        idx = indices[lo:lo + batch]
        items = [dataset[int(i)] for i in idx]
        camera = torch.stack([torch.as_tensor(it["camera"]).float() for it in items]).to(device)
        flame = flame_input(G, items, device)
        z = z_all[lo:lo + batch].to(device)
        out = render(G, z, camera, flame, seed=seed * 100003 + k, truncation_psi=truncation_psi)
        yield GeneratedBatch(images=to_uint8(out["image"]), image=out["image"], image_raw=out["image_raw"],
                             depth=out["image_depth"], camera=camera, flame=flame, indices=idx, z=z)
