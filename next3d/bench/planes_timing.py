"""Benchmark: tri-plane construction from a neural texture, end to end (the "planes" entry).

`time_planes(devices, quick)` times `texture_planes.TexturePlaneBuilder` on the built-in
FLAME head: batch 8, texture 32 x 256^2, planes R = 256 (quick: batch 2, 8 x 64^2, R = 64),
four orthographic views (front, top, +x, -x) plus the mouth cap. It reports, per device,
the forward time with the default rasteriser (`impl="auto"`: the compiled op where it
builds), forward + backward to the texture, the same forward with the pure-PyTorch
reference rasteriser, and their ratio. The raster benchmark owner (or the lead) calls it.
"""

from __future__ import annotations

from typing import List

import torch

from next3d.bench import time_fn


def time_planes(devices: List[str], quick: bool) -> dict:
    """Median milliseconds of tri-plane construction per device; see the module docstring."""
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.texture_planes import TexturePlaneBuilder

    batch, channels, tex_res, res = (2, 8, 64, 64) if quick else (8, 32, 256, 256)
    repeat = 2 if quick else 3
    data = load_flame_model(None)
    out = {"model": data.name, "batch": batch, "texture": [channels, tex_res, tex_res], "resolution": res,
           "views": 4, "results": {}}
    for device in devices:
        flame = FLAME(data).to(device)
        gen = torch.Generator().manual_seed(0)
        expression = (torch.randn(batch, flame.num_expression, generator=gen) * 0.5).to(device)
        jaw = torch.zeros(batch, 3)
        jaw[:, 0] = torch.rand(batch, generator=gen) * 0.3
        with torch.no_grad():
            mesh = flame(expression=expression, jaw=jaw.to(device))
        texture = torch.randn(batch, channels, tex_res, tex_res, generator=gen).to(device)
        timings = {}
        for impl in ("auto", "ref"):
            builder = TexturePlaneBuilder(flame.faces, flame.uv_coords, flame.uv_faces, flame.uv_mask,
                                          resolution=res, rasterize_impl=impl).to(device)

            def forward():
                with torch.no_grad():
                    builder(mesh.vertices, mesh.landmarks, texture)

            # The reference is slow at full size: one timed run after no warm-up there.
            ref_full = impl == "ref" and not quick
            timings[impl] = time_fn(forward, device, repeat=1 if ref_full else repeat, warmup=0 if ref_full else 1)
            if impl == "auto":
                def forward_backward():
                    tex = texture.clone().requires_grad_(True)
                    planes = builder(mesh.vertices, mesh.landmarks, tex)
                    (planes.planes * planes.alphas).mean().backward()

                timings["auto_fwd_bwd"] = time_fn(forward_backward, device, repeat=repeat)
        out["results"][device] = {
            "forward_ms": round(timings["auto"] * 1e3, 1),
            "forward_backward_ms": round(timings["auto_fwd_bwd"] * 1e3, 1),
            "forward_ref_raster_ms": round(timings["ref"] * 1e3, 1),
            "speedup_vs_ref": round(timings["ref"] / timings["auto"], 2),
            "samples_per_s": round(batch / timings["auto"], 2),
        }
    return out
