"""Benchmark: the whole training step (`next3d bench train --preset tiny|small|ffhq512`).

Each phase (G main, G reg = density, D main, D reg = R1) is timed on its own (median of
repeats, after a warm-up) at the preset's training batch on one process, with random
images and labels of the preset's resolution (no data set needed). The step time counts
the regularisers at their intervals: G_main + D_main + G_reg / g_interval + D_reg / d_interval.
With `compare='published-loop'` every phase is timed interleaved under the project's compute
policy and under `torch_utils.compute_policy.PUBLISHED` (the published loop has the same
phases, intervals and flattened gradient clean-up; it differs in the ops and layouts; the
mesh condition of our D is rendered afresh for every call there, while the project's side
reuses its renderings, warm as in training once the items have been seen), and the step of
each is reported with the ratio. Reports images/s of that step, the share of each phase, and peak memory (CUDA: allocator
peak; CPU: growth of the process's maximum resident set).
"""

from __future__ import annotations

import resource
from typing import List, Optional

import torch

from next3d.bench import time_fn


def _fake_data(G, batch: int, resolution: int, device):
    from next3d.render.cameras import orbit_label
    from training.data_order import LabelTable

    g = torch.Generator().manual_seed(0)
    n = max(batch, 8)
    cams = torch.cat([orbit_label(float(y), 0.0) for y in torch.linspace(-0.5, 0.5, n)])
    flame = {"shape": torch.randn(n, G.flame.num_shape, generator=g) * 0.5,
             "expression": torch.randn(n, G.flame.num_expression, generator=g) * 0.5,
             "neck": torch.zeros(n, 3), "jaw": torch.zeros(n, 3), "left_eye": torch.zeros(n, 3),
             "right_eye": torch.zeros(n, 3)}
    labels = LabelTable(cameras=cams, flame=flame)
    real = {"real_img": (torch.rand(batch, 3, resolution, resolution, generator=g) * 2 - 1).to(device),
            "real_c": cams[:batch].to(device), "real_flame": {k: v[:batch].to(device) for k, v in flame.items()},
            "real_idx": torch.arange(batch, device=device)}
    return labels, real


def _compare_phases(built, run_phase_fn, repeat: int, device: str) -> dict:
    """Each phase under the project's compute policy and the published one, interleaved."""
    from next3d.bench.interleave import interleaved, summarize
    from torch_utils import compute_policy, cpu_memory

    out = {}
    for phase in ("G_main", "G_reg", "D_main", "D_reg"):
        def project(phase=phase):
            run_phase_fn(phase)

        def published(phase=phase):  # the published loop leaves glibc's allocator at its defaults
            with compute_policy.use(compute_policy.PUBLISHED), cpu_memory.glibc_defaults(), _uncached(built):
                run_phase_fn(phase)

        out[phase] = summarize(interleaved({"project": project, "published": published}, device, repeat=repeat,
                                           warmup=1))
    return out


def _uncached(built):
    """The mesh condition rendered afresh every call (the published D has none, so no cache of it)."""
    import contextlib

    cond = built.nets.conditioner
    return contextlib.nullcontext() if cond is None else cond.uncached()


def run(devices: List[str], quick: bool, preset: Optional[str] = None, compare: Optional[str] = None) -> dict:
    from training import loop
    from training.config import resolve_run_config
    from training.distributed import DistEnv
    from training.losses import schedule_at
    from training.setup import build_networks

    presets = [preset] if preset else ["tiny"]
    from next3d.bench.interleave import load_note

    out = {"results": {}, "load": load_note()}
    for name in presets:
        rc = resolve_run_config(name)
        cfg = rc.training
        for device in devices:
            env = DistEnv(device=device)
            batch = 2 if quick else cfg.batch
            # A preset with a reconstruction warm start also gets its phase (G_recon) timed.
            built = build_networks(rc, env, num_items=max(batch, 8) if cfg.warmup_kimg > 0 else None)
            labels, real = _fake_data(built.G, batch, rc.generator.img_resolution, device)
            state = loop.TrainState()
            sched = schedule_at(cfg.replace(batch=batch), 0, rc.generator.render.neural_resolution)
            times = {}
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            built.nets.cfg = cfg.replace(batch=batch)

            def run_phase_fn(phase):
                loop.run_phase(built, phase, 0, sched, [real], [0], labels, env, state, batch)

            # Each phase's share of a step: the regularisers run every interval steps.
            weights = {"G_main": 1.0, "D_main": 1.0, "G_reg": 1 / max(cfg.g_reg_interval, 1),
                       "D_reg": 1 / max(cfg.d_reg_interval, 1)}
            if compare is not None:
                phases = _compare_phases(built, run_phase_fn, 1 if quick else 3, device)
                step = {k: sum(phases[p][f"{k}_s"] * w for p, w in weights.items()) for k in ("project", "published")}
                out["results"][f"{name}/{device}"] = {
                    "batch": batch, "threads": torch.get_num_threads(), "phases": phases,
                    "step_s": {k: round(v, 4) for k, v in step.items()},
                    "images_per_s": round(batch / step["project"], 3),
                    "published_images_per_s": round(batch / step["published"], 3),
                    "ratio": round(step["published"] / step["project"], 3),
                    "note": "step = G_main + D_main + G_reg / g_reg_interval + D_reg / d_reg_interval from the "
                            "phase medians; published = the same phases under compute_policy.PUBLISHED",
                }
                continue
            for phase in ("G_main", "G_reg", "D_main", "D_reg"):
                times[phase] = time_fn(lambda phase=phase: run_phase_fn(phase), device, repeat=1 if quick else 3,
                                       warmup=1)
            if cfg.warmup_kimg > 0:
                times["G_recon"] = time_fn(lambda: run_phase_fn("G_recon"), device, repeat=1 if quick else 3, warmup=1)
            step = sum(times[k] * w for k, w in weights.items())
            peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                    else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
            out["results"][f"{name}/{device}"] = {
                "batch": batch, "threads": torch.get_num_threads(),
                "images_per_s": round(batch / step, 3), "step_s": round(step, 3),
                "phase_s": {k: round(v, 3) for k, v in times.items()},
                "share": {k: round(times[k] * weights[k] / step, 3) for k in weights},
                "peak_memory_mib": round(peak, 1),
                "mesh_condition": cfg.mesh_condition,
            }
            if "G_recon" in times:
                warm = step - times["G_main"] + times["G_recon"]
                out["results"][f"{name}/{device}"]["warmup_images_per_s"] = round(batch / warm, 3)
    return out
