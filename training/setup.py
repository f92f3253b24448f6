"""Everything built before the first step: checks of the data against the configuration, the
networks (identical on every rank), the optimisers with the lazy-regularisation correction.

Checks raise `TrainingSetupError`, one line naming the data set or value and what was
expected, before any work starts.
"""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace
from dataclasses import dataclass
from typing import Optional

import torch

from next3d.checkpoint import build_discriminator, build_generator, built_head_topology

from .config import RunConfig, TrainingConfig
from .distributed import DistEnv, broadcast_module
from .losses import Nets
from .mesh_condition import MeshConditioner
from .warmup import LatentCodes, build_perceptual, visits_per_item


class TrainingSetupError(ValueError):
    """The data set, configuration or run folder cannot be trained with."""


def check_dataset(dataset, run_config: RunConfig, flame: torch.nn.Module, name: str = "dataset") -> None:
    """Labels and FLAME parameters present, resolution = the generator's output, same head topology.

    flame: the generator's FLAME layer (`G.flame`, or `next3d.flame.FLAME` of its head model)."""
    if len(dataset) == 0:
        raise TrainingSetupError(f"{name}: the data set holds no training items")
    item = dataset[0]
    camera = item.get("camera") if isinstance(item, dict) else None
    if camera is None or tuple(torch.as_tensor(camera).shape) != (25,):
        raise TrainingSetupError(f"{name}: items have no camera labels (expected 'camera' of 25 floats per item "
                                 f"in dataset.json); training needs labelled data")
    if not item.get("flame") and "vertices" not in item:
        raise TrainingSetupError(f"{name}: items have no FLAME parameters (expected 'flame' per item in "
                                 f"dataset.json); training needs them for the generator and the mesh-conditioned D")
    res = getattr(dataset, "resolution", None) or int(torch.as_tensor(item["image"]).shape[-1])
    want = run_config.generator.img_resolution
    if int(res) != want:
        raise TrainingSetupError(f"{name}: images are {res}x{res} but preset '{run_config.preset}' outputs "
                                 f"{want}x{want} (resize the data set, or pick the preset of that resolution)")
    data_topo = getattr(dataset, "head_topology", None)
    g_topo = run_config.generator.head_topology or built_head_topology(SimpleNamespace(flame=flame))
    if data_topo is not None and g_topo is not None and data_topo != g_topo:
        raise TrainingSetupError(f"{name}: head topology {data_topo} differs from the generator's {g_topo} "
                                 f"({run_config.generator.head_model}); use G.flame_dir= of the head model the "
                                 f"data set was labelled with")
    params = item.get("flame")
    if params:
        for key, limit in (("shape", flame.num_shape), ("expression", flame.num_expression)):
            n = int(torch.as_tensor(params[key]).shape[-1]) if key in params else 0
            if n > limit:
                raise TrainingSetupError(f"{name}: items have {n} {key} coefficients but the generator's head model "
                                         f"has {limit}; use the head model the data set was labelled with")


def check_batch(cfg: TrainingConfig, env: DistEnv) -> int:
    """batch_gpu, checked to divide the global batch evenly over the processes."""
    local, rem = divmod(cfg.batch, env.world_size)
    if rem:
        raise TrainingSetupError(f"batch {cfg.batch} is not divisible by the {env.world_size} processes")
    batch_gpu = cfg.batch_gpu or local
    if local % batch_gpu:
        raise TrainingSetupError(f"batch_gpu {batch_gpu} does not divide the per-process batch {local}")
    if batch_gpu < 2 and cfg.c_noise > 0:
        raise TrainingSetupError(f"batch_gpu {batch_gpu}: the label noise (c_noise={cfg.c_noise:g}) is scaled by the "
                                 f"label std over a micro-batch, which needs at least 2 samples (or set c_noise=0)")
    return batch_gpu


def lazy_adam(params, lr: float, betas, eps: float, interval: int) -> torch.optim.Adam:
    """Adam with lazy-regularisation correction: lr * k/(k+1), betas ** (k/(k+1)) (k = reg interval, 0 = none)."""
    ratio = interval / (interval + 1) if interval > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas), eps=eps)


@dataclass
class Built:
    G: torch.nn.Module
    G_ema: torch.nn.Module
    D: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    nets: Nets
    opt_codes: Optional[torch.optim.Optimizer] = None
    """Adam of the warm start's per-item latent codes (`nets.codes`), when it has them."""


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_init_generator(G: torch.nn.Module, run_config: RunConfig, name: str = "--init-from") -> None:
    """A network to start a run from must have the run's generator configuration exactly
    (the weights are copied one to one); TrainingSetupError names the differing fields."""
    have, want = _flat(G.config.to_dict()), _flat(run_config.generator.to_dict())
    diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
    if diff:
        shown = ", ".join(f"{k} = {have.get(k)!r} (preset {run_config.preset}: {want.get(k)!r})" for k in diff[:4])
        more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
        raise TrainingSetupError(f"{name}: the network's generator configuration differs from the run's: "
                                 f"{shown}{more}; start from a network of preset {run_config.preset}")


def generator_on_run_head(G: torch.nn.Module, run_config: RunConfig, seed: int) -> torch.nn.Module:
    """A copy of G's weights on a generator built with the run's own head model (the one its data
    set was labelled with). `--init-from` carries weights, not the head: a network trained on an
    earlier built-in head version continues on the current one. The head's arrays are buffers
    outside the state_dict, so only the topology (UV layout, hence the texture planes) must agree."""
    fresh = build_generator(run_config.generator, seed=seed)
    have, want = built_head_topology(G), built_head_topology(fresh)
    if have is not None and want is not None and have != want:
        raise TrainingSetupError(f"--init-from: the network's head topology {have} differs from the run's {want} "
                                 f"({run_config.generator.head_model}); start from a network trained on this head")
    fresh.load_state_dict(G.state_dict())
    return fresh


def build_networks(run_config: RunConfig, env: DistEnv, G: Optional[torch.nn.Module] = None,
                   num_items: Optional[int] = None) -> Built:
    """G, G_ema, D from the configuration (seeded), broadcast from rank 0, and their optimisers;
    with a warm start (`warmup_kimg` > 0), also the `num_items` latent codes and their Adam."""
    cfg = run_config.training
    if G is None:
        G = build_generator(run_config.generator, seed=cfg.seed)
    G = G.to(env.device).train().requires_grad_(False)
    D = build_discriminator(run_config.discriminator, seed=cfg.seed + 1).to(env.device).train().requires_grad_(False)
    D.c_noise = cfg.c_noise
    broadcast_module(G, env)
    broadcast_module(D, env)
    G_ema = copy.deepcopy(G).eval()
    opt_G = lazy_adam(G.parameters(), cfg.glr, cfg.betas, cfg.eps, cfg.g_reg_interval)
    opt_D = lazy_adam(D.parameters(), cfg.dlr, cfg.betas, cfg.eps, cfg.d_reg_interval)
    conditioner = None
    if cfg.mesh_condition != "none":
        conditioner = MeshConditioner(G.flame, cfg.mesh_condition, cfg.mesh_resolution)
    force_fp32 = (not cfg.mixed_precision) and str(env.device).startswith("cuda")
    nets = Nets(G=G, D=D, conditioner=conditioner, cfg=cfg, force_fp32=force_fp32)
    opt_codes = None
    if cfg.warmup_kimg > 0:
        if not num_items:
            raise TrainingSetupError("the reconstruction warm start (warmup_kimg > 0) needs the data set's item count")
        visits = visits_per_item(cfg, num_items)
        if visits < 4 and env.is_main:
            warnings.warn(f"warmup_kimg={cfg.warmup_kimg:g} shows each of its {min(cfg.warmup_items or num_items, num_items)} items {visits:.1f} times; "
                          f"the per-item latent codes learn little below ~4 visits (raise warmup_kimg or set "
                          f"warmup_items to a subset)", stacklevel=2)
        nets.codes = LatentCodes(num_items, G.z_dim, cfg.seed).to(env.device).requires_grad_(False)
        broadcast_module(nets.codes, env)
        nets.perceptual = build_perceptual(cfg.warmup_perceptual_net, cfg.warmup_perceptual, env.device)
        opt_codes = torch.optim.Adam(nets.codes.parameters(), lr=cfg.warmup_code_lr, betas=(0.9, 0.999))
    return Built(G, G_ema, D, opt_G, opt_D, nets, opt_codes)
