"""Benchmark: the generator's forward pass (z, camera, FLAME parameters -> images).

Reports, per preset, device and batch: median seconds per forward, images per second,
and each stage's share of the forward time. Stages are the generator's sub-module calls,
timed with forward pre/post hooks (CPU: wall clock; CUDA: CUDA events, so no extra
synchronisation inside the pass):

    mapping   backbone.mapping (one mapping network drives all 28 ws, as published)
    flame     FLAME layer (parameters -> vertices, landmarks)
    texture   texture_backbone.synthesis (UV neural texture)
    planes    texture_planes (rasterise the mesh, sample the texture into tri-planes)
    mouth     mouth_backbone.synthesis (lip StyleUNet)
    blending  neural_blending.synthesis (front-plane StyleUNet)
    static    backbone.synthesis (static tri-planes)
    render    renderer (two-pass volume rendering incl. the decoder)
    superres  superresolution
    other     the rest: mouth crop/paste, plane blending, glue

Full run: `tiny` and `ffhq512`, batch 1 and 8. ffhq512 on the CPU takes many seconds
per image, so it runs once per batch (the batch-1 run doubles as warm-up for batch 8);
the JSON says how many repeats and warm-ups each number used. `quick`: `tiny` at batch 1
and 2, one timed run each (seconds; for the test suite). Randomly initialised weights
(seed 0), noise mode const, truncation 0.7, the built-in head unless $NEXT3D_FLAME_DIR
is set.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Tuple

import torch

STAGES: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("mapping", ("backbone.mapping",)),
    ("flame", ("flame",)),
    ("texture", ("texture_backbone.synthesis",)),
    ("planes", ("texture_planes",)),
    ("mouth", ("mouth_backbone.synthesis",)),
    ("blending", ("neural_blending.synthesis",)),
    ("static", ("backbone.synthesis",)),
    ("render", ("renderer",)),
    ("superres", ("superresolution",)),
)


class StageTimer:
    """Accumulates time spent in named sub-modules of a module via forward hooks."""

    def __init__(self, module: torch.nn.Module, device: str, stages=STAGES):
        self.cuda = device.startswith("cuda")
        self.handles = []
        self.reset()
        for stage, names in stages:
            for name in names:
                sub = module.get_submodule(name)
                self.handles.append(sub.register_forward_pre_hook(self._pre(stage)))
                self.handles.append(sub.register_forward_hook(self._post(stage)))

    def reset(self):
        self.open: Dict[str, object] = {}
        self.seconds: Dict[str, float] = {}
        self.events: List[Tuple[str, object, object]] = []

    def _pre(self, stage):
        def hook(module, args):
            if self.cuda:
                ev = torch.cuda.Event(enable_timing=True)
                ev.record()
                self.open[stage] = ev
            else:
                self.open[stage] = time.perf_counter()
        return hook

    def _post(self, stage):
        def hook(module, args, output):
            start = self.open.pop(stage)
            if self.cuda:
                ev = torch.cuda.Event(enable_timing=True)
                ev.record()
                self.events.append((stage, start, ev))
            else:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        return hook

    def totals(self) -> Dict[str, float]:
        """Seconds per stage since the last reset (synchronises CUDA)."""
        out = dict(self.seconds)
        if self.events:
            torch.cuda.synchronize()
            for stage, start, end in self.events:
                out[stage] = out.get(stage, 0.0) + start.elapsed_time(end) / 1e3
        return out

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def _inputs(G, batch: int, device: str):
    from next3d.render.cameras import orbit_label

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(batch, G.z_dim, generator=gen).to(device)
    c = orbit_label(torch.linspace(-0.4, 0.4, batch), 0.0).to(device)
    jaw = torch.zeros(batch, 3)
    jaw[:, 0] = torch.linspace(0.0, 0.2, batch)
    flame = {"expression": (0.5 * torch.randn(batch, G.flame.num_expression, generator=gen)).to(device),
             "jaw": jaw.to(device)}
    return z, c, flame


def measure(G, batch: int, device: str, repeat: int, warmup: int) -> dict:
    """Median forward seconds of G at `batch` and the stage shares summed over the timed runs."""
    z, c, flame = _inputs(G, batch, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def forward():
        return G(z, c, flame, truncation_psi=0.7, truncation_cutoff=14, noise_mode="const")

    timer = StageTimer(G, device)
    try:
        with torch.no_grad():
            for _ in range(warmup):
                forward()
            sync()
            timer.reset()
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                forward()
                sync()
                times.append(time.perf_counter() - t0)
            stages = timer.totals()
    finally:
        timer.remove()
    total = sum(times)
    shares = {name: round(100.0 * stages.get(name, 0.0) / total, 1) for name, _ in STAGES}
    shares["other"] = round(100.0 - sum(shares.values()), 1)
    median = sorted(times)[len(times) // 2]
    return {"batch": batch, "seconds": round(median, 4), "images_per_s": round(batch / median, 3),
            "repeats": repeat, "warmup": warmup, "stage_percent": shares}


def _plan(preset: str, device: str, quick: bool) -> List[Tuple[int, int, int]]:
    """(batch, repeat, warmup) per measurement."""
    if quick:
        return [(1, 1, 1), (2, 1, 0)]
    if preset == "ffhq512" and device == "cpu":
        return [(1, 1, 0), (8, 1, 0)]  # Slow: one run each; batch 1 warms up batch 8.
    if preset == "ffhq512":
        return [(1, 5, 2), (8, 3, 1)]
    return [(1, 5, 1), (8, 3, 1)]


def compare_published(G, batch: int, device: str, repeat: int, warmup: int) -> dict:
    """One image at `batch`: the project's forward against the published arrangement
    (`torch_utils.compute_policy.PUBLISHED`: reference ops, NCHW, grouped modulated conv,
    fresh outputs), interleaved; plus the largest output difference between the two."""
    from next3d.bench.interleave import interleaved, summarize
    from next3d.generate import deterministic_rays
    from torch_utils import compute_policy, cpu_memory

    z, c, flame = _inputs(G, batch, device)

    def forward():
        return G(z, c, flame, truncation_psi=0.7, truncation_cutoff=14, noise_mode="const")

    def published():  # the published code leaves glibc's allocator at its defaults
        with compute_policy.use(compute_policy.PUBLISHED), cpu_memory.glibc_defaults():
            return forward()

    with torch.no_grad(), deterministic_rays(G):  # same ray samples on both sides: comparable outputs
        a, b = forward(), published()
        diff = {k: float((a[k].float() - b[k].float()).abs().max()) for k in ("image", "image_raw", "image_depth")}
        del a, b
        times = interleaved({"project": forward, "published": published}, device, repeat=repeat, warmup=warmup)
    out = {"batch": batch, **summarize(times, per=batch), "max_abs_difference": diff,
           "project_keeps_freed_memory": cpu_memory.is_kept()}
    out["images_per_s"] = round(batch / out["project_s"], 4)
    out["published_images_per_s"] = round(batch / out["published_s"], 4)
    return out


def run_compare(devices: List[str], quick: bool, presets: Optional[List[str]] = None,
                batches: Optional[List[int]] = None) -> dict:
    """`--compare published-loop`: see `compare_published`. Full: `ffhq512` at batch 1 and 4,
    3 interleaved repeats after one warm-up round (the warm-up also builds the ops);
    quick: `tiny`, batch 1 and 2, one repeat."""
    from next3d.bench.interleave import load_note
    from next3d.checkpoint import build_generator
    from next3d.presets import get_preset

    presets = presets or (["tiny"] if quick else ["ffhq512"])
    batches = batches or ([1, 2] if quick else [1, 4])
    out = {"what": "generator forward, project path vs the published arrangement (reference ops, NCHW, "
                   "grouped modulated conv), interleaved; ratio = published_s / project_s",
           "load": load_note(), "results": {}}
    for preset in presets:
        entry = {}
        for device in devices:
            G = build_generator(get_preset(preset), seed=0, device=device).eval()
            entry[device] = [compare_published(G, batch, device, repeat=1 if quick else 3, warmup=1)
                             for batch in batches]
            del G
        out["results"][preset] = entry
    return out


def run(devices: List[str], quick: bool, presets: Optional[List[str]] = None, compare: Optional[str] = None) -> dict:
    if compare is not None:
        return run_compare(devices, quick, presets=presets)
    from next3d.checkpoint import build_generator
    from next3d.networks.generator import parameter_counts
    from next3d.presets import get_preset

    presets = presets or (["tiny"] if quick else ["tiny", "ffhq512"])
    out = {"what": "generator forward (mapping..superresolution), no_grad, eval; median seconds per call",
           "stage_note": "stage_percent: share of the timed runs' wall time per generator sub-module; "
                         "'other' = crop/paste, plane blending and glue",
           "results": {}}
    for preset in presets:
        config = get_preset(preset)
        entry = {"output": config.img_resolution, "neural_resolution": config.render.neural_resolution}
        for device in devices:
            G = build_generator(config, seed=0, device=device)
            entry["parameters_m"] = round(parameter_counts(G)["total"] / 1e6, 3)
            entry[device] = [measure(G, batch, device, repeat, warmup)
                             for batch, repeat, warmup in _plan(preset, device, quick)]
            del G
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        out["results"][preset] = entry
    return out
