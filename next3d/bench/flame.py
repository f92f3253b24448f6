"""Benchmark: FLAME forward (shape + expression + pose -> vertices, landmarks) at batch 64.

Runs on the built-in head unless $NEXT3D_FLAME_DIR points at a FLAME folder. Reports
median milliseconds per forward and per forward+backward for each device.
"""

from __future__ import annotations

from typing import List

import torch

from next3d.bench import time_fn


def run(devices: List[str], quick: bool) -> dict:
    from next3d.flame import FLAME, load_flame_model

    data = load_flame_model()
    batch = 8 if quick else 64
    repeat = 2 if quick else 10
    out = {"model": data.name, "vertices": data.num_vertices, "batch": batch, "results": {}}
    for device in devices:
        model = FLAME(data).to(device)
        gen = torch.Generator().manual_seed(0)
        shape = (torch.randn(batch, model.num_shape, generator=gen) * 0.5).to(device)
        expr = (torch.randn(batch, model.num_expression, generator=gen) * 0.5).to(device)
        pose = (torch.randn(batch, 15, generator=gen) * 0.05).to(device)

        def forward():
            with torch.no_grad():
                model(shape, expr, pose)

        def forward_backward():
            s = shape.clone().requires_grad_(True)
            o = model(s, expr, pose)
            (o.vertices.square().mean() + o.landmarks.square().mean()).backward()

        fwd = time_fn(forward, device, repeat=repeat)
        fb = time_fn(forward_backward, device, repeat=repeat)
        out["results"][device] = {"forward_ms": round(fwd * 1e3, 3), "forward_backward_ms": round(fb * 1e3, 3),
                                  "meshes_per_s": round(batch / fwd, 1)}
    return out
