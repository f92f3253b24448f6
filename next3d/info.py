"""What this installation can do (torch, devices, compiled ops): the facts behind `next3d info`."""

from __future__ import annotations

import importlib
import platform

import torch

import next3d
from torch_utils import custom_ops

# Modules that register compiled ops with `torch_utils.custom_ops.register` on import.
OP_MODULES = (
    "torch_utils.ops.bias_act",
    "torch_utils.ops.upfirdn2d",
    "torch_utils.ops.fma",
    "next3d.render.rasterize",
)


def gather(build: bool = True) -> dict:
    """Facts about this installation as a dict (used by `next3d info` and the benchmarks)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    missing = []
    for name in OP_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name}: {exc}")
    ops = {}
    if build:
        dev_types = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for op, per_dev in custom_ops.load_all(dev_types).items():
            ops[op] = {dev: ("compiled (" + st.reason + ")" if st.ok else "reference: " + st.reason)
                       + (f"; impl='auto' uses {_auto_use(op, dev)}" if st.ok else "")
                       for dev, st in per_dev.items()}
    return {
        "next3d": next3d.__version__,
        "head_model": _head_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_build": torch.version.cuda,
        "devices": devices,
        "ops_mode": custom_ops.ops_mode(),
        "build_cache": str(custom_ops.build_cache_dir()),
        "ops": ops,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "compute_policy": _policy_summary(),
        "keeps_freed_memory": _memory_summary(),
        "unavailable_modules": missing,
    }


def _policy_summary() -> str:
    """The default compute policy's levers that differ from the published arrangement."""
    import dataclasses

    from torch_utils import compute_policy

    fast, pub = compute_policy.FAST, compute_policy.PUBLISHED
    on = [f"{f.name}={getattr(fast, f.name)}" for f in dataclasses.fields(fast)
          if getattr(fast, f.name) != getattr(pub, f.name)]
    return ", ".join(on) or "the published arrangement"


def _memory_summary() -> str:
    from torch_utils import cpu_memory

    if not cpu_memory.available():
        return "no (not glibc)"
    if not cpu_memory.enabled_by_environment():
        return "no (NEXT3D_KEEP_FREED_MEMORY=0)"
    return "yes (the commands keep freed CPU memory for reuse; NEXT3D_KEEP_FREED_MEMORY=0 turns it off)"


def _auto_use(op: str, device_type: str) -> str:
    """What impl='auto' runs for a built op: the compiled kernel or the reference (and why)."""
    if custom_ops.auto_choice(op, device_type) == "compiled":
        used = "the compiled kernel"
    else:
        used = "the reference (" + custom_ops.AUTO_REASON.get((op, device_type), "measured faster") + ")"
    if op == "bias_act" and custom_ops.auto_choice("bias_act_inplace", device_type) == "ref":
        why = custom_ops.AUTO_REASON.get(("bias_act_inplace", device_type), "measured faster")
        used += f"; written in place (inference) the reference ({why})"
    return used


def _head_model() -> str:
    """Which head model a command uses when no --flame-dir is given (nothing is generated here)."""
    import os

    from next3d.flame.builtin import BUILTIN_VERSION, builtin_cache_root
    from next3d.flame.files import ENV_FLAME_DIR

    if os.environ.get(ENV_FLAME_DIR):
        return f"FLAME folder {os.environ[ENV_FLAME_DIR]} (${ENV_FLAME_DIR})"
    folder = builtin_cache_root() / BUILTIN_VERSION
    state = "generated" if folder.is_dir() else "generated on first use"
    return f"built-in head {BUILTIN_VERSION} at {folder} ({state}; set ${ENV_FLAME_DIR} for real FLAME)"
