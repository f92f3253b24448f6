"""Processes and gradients: torch.distributed under torchrun (NCCL on GPUs, gloo on the CPU).

`DistEnv.from_environment()` reads torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT) and initialises the process group; without them it is one process.
Multi-node runs are the same command under torchrun's rendezvous flags, e.g. on each node

    torchrun --nnodes=2 --node-rank=N --nproc-per-node=8 --rdzv-backend=c10d \
             --rdzv-endpoint=HOST:29500 -m next3d train --data ... --preset ffhq512 ...

Each process averages its loss over its own share of the global batch (micro-batch losses
scaled by batch_gpu / local batch); gradients are then summed over processes and divided by
the process count, so the result equals one process running the whole batch, and
`nan_to_num`-ed as published.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """rank, world_size, local_rank and the device of this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    @classmethod
    def from_environment(cls, device: Optional[str] = None) -> "DistEnv":
        """Initialise the process group from torchrun's environment (no-op for one process)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device is None:
            device = f"cuda:{local}" if torch.cuda.is_available() else "cpu"
        if world > 1 and not dist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            if device.startswith("cuda"):
                torch.cuda.set_device(torch.device(device))
            dist.init_process_group(backend=backend, rank=rank, world_size=world)
        return cls(rank=rank, world_size=world, local_rank=local, device=device)


def broadcast_module(module: torch.nn.Module, env: DistEnv, src: int = 0) -> None:
    """Every parameter and buffer of `module` set to rank `src`'s values."""
    if not env.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=src)


def sync_gradients(params: Iterable[torch.nn.Parameter], env: DistEnv) -> None:
    """Average gradients over processes (flattened, one all-reduce) and replace NaN/inf as published."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.flatten() for p in params])
    if env.active:
        dist.all_reduce(flat)
        flat /= env.world_size
    torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def all_flag(value: bool, env: DistEnv) -> bool:
    """True when `value` is true on every process (for agreeing to skip a step)."""
    if not env.active:
        return value
    t = torch.tensor([0.0 if value else 1.0], device=env.device)
    dist.all_reduce(t)
    return float(t) == 0.0


def all_mean(values: dict, env: DistEnv) -> dict:
    """Mean of scalar logs over processes (same keys on every process)."""
    if not env.active or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    t /= env.world_size
    return dict(zip(keys, t.tolist()))


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()
