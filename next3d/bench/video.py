"""Benchmark: rendering videos (`next3d bench video [--compare published-loop] [--preset P]`).

Two kinds of clip, one identity (seed 0, truncation 0.7), const noise, deterministic rays:

    orbit       the camera circles (yaw over ±0.5 rad), the face stays still: the project
                makes the planes once and renders every frame from them;
    reenact     every frame has its own expression and jaw: the project makes the
                identity part (texture, static planes) once and the per-mesh part per frame.

The project's path is `next3d.animation.render_video.render_frames` (batch 4). The
published loop (`--compare published-loop`) runs the whole generator for every frame, one
frame at a time, under `torch_utils.compute_policy.PUBLISHED` (reference ops, NCHW,
grouped modulated conv), as the published video script does. Without `--compare` only
the project's path is timed. Default preset `demo` (128² output); `--quick`: `tiny`,
4 frames, one repeat; full: 8 frames, 2 interleaved repeats after a warm-up.
"""

from __future__ import annotations

from typing import List, Optional

import torch


def _clip(G, kind: str, frames: int, device: str):
    from next3d.animation.render_video import FramePlan
    from next3d.generate import frontal_label, seeds_to_z
    from next3d.render.cameras import orbit_label

    gen = torch.Generator().manual_seed(0)
    z = seeds_to_z([0], G.z_dim).to(device)
    with torch.no_grad():
        ws = G.mapping(z, frontal_label(G, device), truncation_psi=0.7, truncation_cutoff=14)
    yaw = 0.5 * torch.sin(torch.linspace(0, 2 * torch.pi, frames + 1)[:-1])
    cams = torch.cat([orbit_label(float(y), 0.0) for y in yaw]).to(device)
    n_mesh = 1 if kind == "orbit" else frames
    jaw = torch.zeros(n_mesh, 3)
    jaw[:, 0] = torch.linspace(0.0, 0.25, n_mesh)
    params = {"expression": (0.6 * torch.randn(n_mesh, G.flame.num_expression, generator=gen)).to(device),
              "jaw": jaw.to(device)}
    with torch.no_grad():
        vertices, landmarks = G.head_mesh(params)
    mesh_index = torch.zeros(frames, dtype=torch.long) if kind == "orbit" else torch.arange(frames)
    return FramePlan(ws=ws, vertices=vertices, landmarks=landmarks, ws_index=torch.zeros(frames, dtype=torch.long),
                     mesh_index=mesh_index, cameras=cams)


def project_video(G, plan, batch: int = 4) -> torch.Tensor:
    """All frames through `render_frames` (reuse on) -> (N, 3, H, W)."""
    from next3d.animation.render_video import RenderVideoOptions, render_frames

    frames = list(render_frames(G, plan, RenderVideoOptions(batch=batch)))
    return torch.stack([f.image for f in frames])


@torch.no_grad()
def published_video(G, plan) -> torch.Tensor:
    """The published per-frame loop: the whole generator (planes included) for each frame,
    batch 1, under the published compute policy -> (N, 3, H, W)."""
    from next3d.generate import deterministic_rays
    from torch_utils import compute_policy, cpu_memory

    out = []
    with compute_policy.use(compute_policy.PUBLISHED), cpu_memory.glibc_defaults(), deterministic_rays(G):
        for i in range(plan.num_frames):
            w = plan.ws[plan.ws_index[i:i + 1]]
            m = plan.mesh_index[i:i + 1]
            mesh = {"vertices": plan.vertices[m], "landmarks": plan.landmarks[m]}
            out.append(G.synthesis(w, plan.cameras[i:i + 1], mesh, noise_mode="const")["image"].float().cpu())
    return torch.cat(out)


def _measure(G, plan, device: str, repeat: int, compare: Optional[str]) -> dict:
    from next3d.bench import time_fn
    from next3d.bench.interleave import interleaved, summarize

    frames = plan.num_frames
    if compare is None:
        seconds = time_fn(lambda: project_video(G, plan), device, repeat=repeat)
        return {"project_s": round(seconds, 4), "frames_per_s": round(frames / seconds, 3)}
    a, b = project_video(G, plan), published_video(G, plan)  # also the warm-up round
    times = interleaved({"project": lambda: project_video(G, plan), "published": lambda: published_video(G, plan)},
                        device, repeat=repeat, warmup=0)
    return {**summarize(times, per=frames), "max_abs_difference": float((a - b).abs().max()),
            "frames_per_s": round(frames / sorted(times["project"])[len(times["project"]) // 2], 3)}


def run(devices: List[str], quick: bool, presets: Optional[List[str]] = None, compare: Optional[str] = None) -> dict:
    from next3d.bench.interleave import load_note
    from next3d.checkpoint import build_generator
    from next3d.presets import get_preset

    presets = presets or (["tiny"] if quick else ["demo"])
    frames = 4 if quick else 8
    repeat = 1 if quick else 2
    out = {"what": "video rendering; project = render_frames (planes / identity computed once), published = the "
                   "whole generator per frame under the published compute policy; ratio = published_s / project_s",
           "frames": frames, "load": load_note(), "results": {}}
    for preset in presets:
        entry = {}
        for device in devices:
            G = build_generator(get_preset(preset), seed=0, device=device).eval()
            entry[device] = {kind: _measure(G, _clip(G, kind, frames, device), device, repeat, compare)
                             for kind in ("orbit", "reenact")}
        out["results"][preset] = entry
    return out
