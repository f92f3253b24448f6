"""Benchmark: the mesh rasteriser, compiled kernels vs the pure-PyTorch reference.

A head-like mesh of about 10k faces (a deformed UV sphere generated here) seen by 4 orbit
cameras, batch 8 (32 images) at 256 x 256, perspective-corrected. Reports seconds per call
and the speed-up over the reference on the same device.
"""

from __future__ import annotations

import math
from typing import Dict, List

import torch

from next3d.bench import time_fn
from next3d.render import cameras
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import _load_cpu, _load_cuda, rasterize


def head_like_mesh(n_lat: int = 70, n_lon: int = 72):
    """A deformed UV sphere wound counter-clockwise from outside: (V, 3), (F, 3), F = 2 n_lat n_lon - ..."""
    lat = torch.linspace(0, math.pi, n_lat + 1)
    lon = torch.linspace(0, 2 * math.pi, n_lon + 1)[:-1]
    th, ph = torch.meshgrid(lat, lon, indexing="ij")
    unit = torch.stack([torch.sin(th) * torch.sin(ph), torch.cos(th), torch.sin(th) * torch.cos(ph)], -1)
    # Ellipsoid with a nose bump towards +z and a chin: roughly a head's silhouette.
    radius = 1.0 + 0.25 * torch.exp(-((th - 1.6) ** 2 + ph.remainder(2 * math.pi).sub(math.pi).abs().sub(math.pi) ** 2) * 20)
    verts = unit * radius[..., None] * torch.tensor([0.22, 0.28, 0.25])
    verts = verts.reshape(-1, 3)
    faces = []
    for i in range(n_lat):
        for j in range(n_lon):
            a, b = i * n_lon + j, i * n_lon + (j + 1) % n_lon
            c, d = a + n_lon, b + n_lon
            if i > 0:
                faces.append([a, c, b])
            if i < n_lat - 1:
                faces.append([b, c, d])
    return verts, torch.tensor(faces)


def _scene(batch: int, views: int, device: str):
    verts, faces = head_like_mesh()
    yaw = torch.linspace(-0.5, 0.5, views).repeat(batch)
    gen = torch.Generator().manual_seed(0)
    jitter = 0.01 * torch.randn(batch, 1, verts.shape[0], 3, generator=gen).expand(-1, views, -1, -1)
    pts = (verts + jitter).reshape(batch * views, -1, 3)
    c = cameras.orbit_label(yaw, 0.0, pivot=(0.0, 0.0, 0.0))
    ndc, w = perspective_from_label(pts, c)
    return ndc.to(device), faces.to(device), w.to(device)


def run(devices: List[str], quick: bool) -> Dict[str, object]:
    batch, views, size = (2, 2, 64) if quick else (8, 4, 256)
    repeat = 2 if quick else 3
    out: Dict[str, object] = {"images": batch * views, "image_size": size}
    for device in devices:
        ndc, faces, w = _scene(batch, views, device)
        out["faces"] = int(faces.shape[0])

        def call(impl):
            return lambda: rasterize(ndc, faces, size, clip_w=w, perspective_correct=True, impl=impl)

        entry: Dict[str, object] = {}
        # The reference takes seconds per call at full size: one timed call, no warm-up.
        ref_s = time_fn(call("ref"), device, repeat=1 if not quick else repeat, warmup=0 if not quick else 1)
        entry["ref_s"] = round(ref_s, 4)
        kind = "cuda" if device.startswith("cuda") else "cpu"
        module = (_load_cuda if kind == "cuda" else _load_cpu)()
        if module is None:
            entry["compiled"] = "unavailable (reference only)"
        else:
            fast_s = time_fn(call(kind), device, repeat=max(repeat, 5), warmup=1)
            a, b = call("ref")(), call(kind)()  # an exactness check on the benchmark scene
            entry["compiled_s"] = round(fast_s, 5)
            entry["speedup_vs_ref"] = round(ref_s / fast_s, 1)
            entry["face_idx_mismatches"] = int((a.face_idx != b.face_idx).sum())
            entry["coverage"] = round(float(a.mask.float().mean()), 3)
        out[device] = entry
    # Tri-plane construction end to end (rasterising four views + texture sampling).
    from next3d.bench.planes_timing import time_planes

    out["texture_planes"] = time_planes(devices, quick)
    return out
