"""Benchmark: the whole training step (`next3d bench train --preset tiny|small|ffhq512`).

Each phase (G main, G reg = density, D main, D reg = R1) is timed on its own (median of
repeats, after a warm-up) at the preset's training batch on one process, with random
images and labels of the preset's resolution (no data set needed). The step time counts
the regularisers at their intervals: G_main + D_main + G_reg / g_interval + D_reg / d_interval.
Reports images/s of that step, the share of each phase, and peak memory (CUDA: allocator
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
            "real_c": cams[:batch].to(device), "real_flame": {k: v[:batch].to(device) for k, v in flame.items()}}
    return labels, real


def run(devices: List[str], quick: bool, preset: Optional[str] = None) -> dict:
    from training import loop
    from training.config import resolve_run_config
    from training.distributed import DistEnv
    from training.losses import schedule_at
    from training.setup import build_networks

    presets = [preset] if preset else ["tiny"]
    out = {"results": {}}
    for name in presets:
        rc = resolve_run_config(name)
        cfg = rc.training
        for device in devices:
            env = DistEnv(device=device)
            built = build_networks(rc, env)
            batch = 2 if quick else cfg.batch
            labels, real = _fake_data(built.G, batch, rc.generator.img_resolution, device)
            state = loop.TrainState()
            sched = schedule_at(cfg.replace(batch=batch), 0, rc.generator.render.neural_resolution)
            times = {}
            if device.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for phase in ("G_main", "G_reg", "D_main", "D_reg"):
                def fn(phase=phase):
                    loop.run_phase(built, phase, 0, sched, [real], [0], labels, env, state, batch)
                built.nets.cfg = cfg.replace(batch=batch)
                times[phase] = time_fn(fn, device, repeat=1 if quick else 3, warmup=1)
            step = (times["G_main"] + times["D_main"] + times["G_reg"] / max(cfg.g_reg_interval, 1)
                    + times["D_reg"] / max(cfg.d_reg_interval, 1))
            weights = {"G_main": 1.0, "D_main": 1.0, "G_reg": 1 / max(cfg.g_reg_interval, 1),
                       "D_reg": 1 / max(cfg.d_reg_interval, 1)}
            peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
                    else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024)
            out["results"][f"{name}/{device}"] = {
                "batch": batch, "threads": torch.get_num_threads(),
                "images_per_s": round(batch / step, 3), "step_s": round(step, 3),
                "phase_s": {k: round(v, 3) for k, v in times.items()},
                "share": {k: round(times[k] * weights[k] / step, 3) for k in times},
                "peak_memory_mib": round(peak, 1),
                "mesh_condition": cfg.mesh_condition,
            }
    return out
