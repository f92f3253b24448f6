"""The one loader for every compiled op (C++ for the CPU, CUDA for NVIDIA GPUs).

Ops are built lazily, on first use, with `torch.utils.cpp_extension.load` and ninja,
into a cache folder named by a hash of their sources, the torch version and the
flags, so a second process reuses the build. When a build is impossible (no
compiler, no ninja, no CUDA) or fails, the loader says so once, in one line, records
why, and returns None: callers then use their pure-PyTorch reference.

Environment variables (read, never written):
  NEXT3D_OPS          `auto` (default) builds and uses compiled ops; `ref` forces the
                      pure-PyTorch references everywhere.
  NEXT3D_BUILD_CACHE  where builds are kept (default: $XDG_CACHE_HOME/next3d/ops or
                      ~/.cache/next3d/ops).
  NEXT3D_OPS_VERBOSE  `1` prints the compiler's output while building.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import contextlib
import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

CSRC_DIR = Path(__file__).resolve().parents[1] / "csrc"
_VALID_MODES = ("auto", "ref")


@dataclasses.dataclass(frozen=True)
class OpStatus:
    """What happened when an op was asked for."""

    name: str
    ok: bool
    reason: str  # "built", "cached", or why it fell back
    path: Optional[str] = None


_status: Dict[str, OpStatus] = {}
_modules: Dict[str, object] = {}
_loaded_status: Dict[str, OpStatus] = {}  # how each loaded module was obtained ("built"/"cached")
_failed = set()  # ops whose build was impossible or failed: not retried in this process
_lock = threading.Lock()


def ops_mode() -> str:
    """`auto` or `ref`, from NEXT3D_OPS; an unknown value is an error, not a silent default."""
    mode = os.environ.get("NEXT3D_OPS", "auto").strip().lower() or "auto"
    if mode not in _VALID_MODES:
        raise ValueError(f"NEXT3D_OPS={mode!r} is not understood: expected one of {', '.join(_VALID_MODES)}")
    return mode


def build_cache_dir() -> Path:
    """The folder that holds compiled ops (NEXT3D_BUILD_CACHE moves it)."""
    env = os.environ.get("NEXT3D_BUILD_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "next3d" / "ops"


def statuses() -> Dict[str, OpStatus]:
    """Every op asked for so far in this process, with what happened."""
    return dict(_status)


def _why_cannot_build(cuda: bool) -> Optional[str]:
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return "ninja is not installed (pip install ninja)"
    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None and shutil.which("g++") is None and shutil.which("clang++") is None:
        return "no C++ compiler found (install g++ or set CXX)"
    if cuda:
        if not torch.cuda.is_available():
            return "no CUDA device"
        if cpp_extension.CUDA_HOME is None:
            return "CUDA toolkit (nvcc) not found; set CUDA_HOME"
    return None


def _cpu_features() -> set:
    """Instruction-set flags of this machine's CPU (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _openmp_flags() -> List[str]:
    """-fopenmp when this torch runs at::parallel_for on OpenMP (its parallel backend), so the
    kernels' at::parallel_for loops run on torch's threads instead of one."""
    try:
        info = torch.__config__.parallel_info()
    except Exception:  # pragma: no cover - very old torch
        return []
    return ["-fopenmp"] if "parallel backend: OpenMP" in info and sys.platform.startswith("linux") else []


def cpu_build_flags() -> List[str]:
    """Compiler flags of the CPU kernels: OpenMP (see `_openmp_flags`) and the vector
    instructions this machine has (AVX2 + FMA where present). The builds are made on the
    machine that runs them and the flags are part of the build's hash, so a cache shared
    with an older CPU builds its own copy instead of loading an unsupported one."""
    flags = _openmp_flags() + ["-ftree-vectorize"]
    features = _cpu_features()
    if {"avx2", "fma"} <= features:
        flags += ["-mavx2", "-mfma"]
    return flags


def cpu_link_flags() -> List[str]:
    """Linker flags: libgomp (torch's bundled copy when it has one, the same soname) for OpenMP builds."""
    if not _openmp_flags():
        return []
    lib = Path(torch.__file__).parent / "lib"
    if (lib / "libgomp.so.1").is_file():
        return [f"-L{lib}", f"-Wl,-rpath,{lib}", "-l:libgomp.so.1"]
    return ["-fopenmp"]


# impl='auto' on each device: the compiled kernel or the reference, whichever measured
# faster at the generator's shapes (`next3d bench ops`, figures in the comments). Ops not
# listed use the compiled kernel where it builds.
# Measured on a 2-core AVX2 CPU under load (OpenMP build, `next3d bench ops`, generator
# shapes, batch 1): bias_act compiled/ref 1.6-2.1x faster at 128^2-512^2 (kept compiled);
# the upfirdn2d filter after an up-convolution 0.42-1.04x and upsample2d 0.69-1.6x of the
# reference (oneDNN's depthwise convolution), so the CPU takes the reference.
# bias_act written in place (inference, `bias_act(..., inplace=True)`) is its own entry: the
# reference's in-place ATen ops (add_, leaky_relu_, mul_, clamp_; no allocation) ran 1.6-4.9x
# faster than the compiled in-place kernel at the generator's shapes, NCHW and NHWC (2-core
# AVX-512 Xeon, 2026-12-04: (1, 128, 512^2) 32 vs 57 ms, (1, 128, 256^2) 2.8 vs 13.3 ms,
# (1, 512, 64^2) 0.8 vs 2.6 ms; with ATen held to AVX2 30 vs 47, 2.7 vs 8.0, 0.8 vs 1.9 ms),
# while out of place the compiled kernel still wins (86 vs 158 ms at (1, 128, 512^2)).
AUTO_PREFERENCE: Dict[tuple, str] = {("upfirdn2d", "cpu"): "ref", ("bias_act_inplace", "cpu"): "ref"}
AUTO_REASON: Dict[tuple, str] = {  # (op, device type) -> why the reference is preferred, for `next3d info`
    ("upfirdn2d", "cpu"): "oneDNN's depthwise convolution measured faster than the C++ kernel at the "
                          "generator's shapes",
    ("bias_act_inplace", "cpu"): "in-place ATen ops measured faster than the C++ in-place kernel",
}


def auto_choice(op: str, device_type: str) -> str:
    """'compiled' or 'ref': what impl='auto' of `op` uses on `device_type` under the current
    compute policy (`torch_utils.compute_policy`; its ops='ref' forces the reference)."""
    from torch_utils import compute_policy

    if compute_policy.current().ops == "ref":
        return "ref"
    return AUTO_PREFERENCE.get((op, device_type), "compiled")


def _source_hash(paths: Sequence[Path], flags: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(torch.__version__.encode())
    digest.update(sys.version.encode())
    # ninja's build file records the include paths: two checkouts or two environments
    # sharing one folder would rebuild over each other's builds on every load.
    digest.update(str(CSRC_DIR).encode())
    digest.update(str(Path(torch.__file__).parent).encode())
    digest.update(" ".join(flags).encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _build_lock(build_dir: Path):
    """Hold an OS-level lock on `build_dir` while building or loading there.

    torch's own build lock is a plain file (`build_dir/lock`) that a killed build
    (Ctrl-C, kill -9, a crashed test) leaves behind, after which every later build of
    that op waits forever. Every next3d process builds under this `flock` first, and the
    kernel drops a flock when its holder dies, so a `lock` file found while holding it
    belongs to no live next3d build and is removed.
    """
    try:
        import fcntl
    except ImportError:  # Windows: torch's baton alone
        yield
        return
    with open(build_dir / ".next3d-build.lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            stale = build_dir / "lock"
            if stale.exists():
                _say(f"removing a stale build lock left by an interrupted build: {stale}")
                stale.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _say(msg: str) -> None:
    print(f"next3d: {msg}", file=sys.stderr, flush=True)


def load_op(
    name: str,
    sources: Sequence[str],
    *,
    cuda: bool = False,
    headers: Sequence[str] = (),
    extra_cflags: Sequence[str] = (),
    extra_cuda_cflags: Sequence[str] = (),
) -> Optional[object]:
    """Build (or reuse) the extension `name` from `sources` and return its module, or None.

    Args:
        name: unique module name, e.g. ``"bias_act_cpu"``.
        sources: paths relative to the `csrc/` folder (.cpp, and .cu when `cuda`).
        cuda: whether the op needs nvcc and a CUDA device.
        headers: extra files (relative to `csrc/`) that the hash must cover.
        extra_cflags / extra_cuda_cflags: passed to the compilers.

    Returns None (after saying why, once per process) when the reference must be used.
    """
    with _lock:
        # The mode is read on every call (before any cache), so NEXT3D_OPS=ref always wins
        # and switching back to auto later is not blocked by a remembered "ref" status.
        if ops_mode() == "ref":
            _status[name] = OpStatus(name, False, "NEXT3D_OPS=ref forces the reference")
            return None
        if name in _modules:
            _status[name] = _loaded_status[name]
            return _modules[name]
        if name in _status and not _status[name].ok and name in _failed:
            return None
        reason = _why_cannot_build(cuda)
        src_paths = [CSRC_DIR / s for s in sources]
        hdr_paths = [CSRC_DIR / h for h in headers]
        missing = [str(p) for p in src_paths + hdr_paths if not p.is_file()]
        if reason is None and missing:
            reason = f"sources not found: {', '.join(missing)}"
        if reason is not None:
            _status[name] = OpStatus(name, False, reason)
            _failed.add(name)
            _say(f"op '{name}' uses the pure-PyTorch reference: {reason}")
            return None

        cflags = ["-O3", "-std=c++17", *extra_cflags]
        ldflags: List[str] = []
        if not cuda:
            cflags += cpu_build_flags()
            ldflags += cpu_link_flags()
        cuda_cflags = ["-O3", "--use_fast_math", "-std=c++17", *extra_cuda_cflags]
        tag = _source_hash(src_paths + hdr_paths, cflags + ldflags + (cuda_cflags if cuda else []))
        build_dir = build_cache_dir() / f"{name}_{tag}"
        cached = any(build_dir.glob(f"{name}*.so")) or any(build_dir.glob(f"{name}*.pyd"))
        try:
            build_dir.mkdir(parents=True, exist_ok=True)
            if not cached:
                _say(f"building op '{name}' (first use; cached in {build_dir}) ...")
            from torch.utils import cpp_extension

            with _build_lock(build_dir):
                module = cpp_extension.load(
                    name=name,
                    sources=[str(p) for p in src_paths],
                    extra_include_paths=[str(CSRC_DIR)],
                    extra_cflags=cflags,
                    extra_cuda_cflags=cuda_cflags if cuda else None,
                    extra_ldflags=ldflags or None,
                    build_directory=str(build_dir),
                    with_cuda=cuda,
                    verbose=os.environ.get("NEXT3D_OPS_VERBOSE", "") == "1",
                )
        except Exception as exc:  # any build or import failure falls back, with the reason
            first = next((ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower()), None)
            detail = first or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            reason = f"build failed ({detail[:200]}); set NEXT3D_OPS_VERBOSE=1 for the compiler output"
            _status[name] = OpStatus(name, False, reason)
            _failed.add(name)
            _say(f"op '{name}' uses the pure-PyTorch reference: {reason}")
            return None
        _modules[name] = module
        _status[name] = _loaded_status[name] = OpStatus(name, True, "cached" if cached else "built", str(build_dir))
        return module


# Registry used by `next3d info` and the benchmarks: op -> device type -> (module name,
# loader). The loader takes no arguments and returns the compiled module or None.
_registry: Dict[str, Dict[str, tuple]] = {}


def register(op: str, device_type: str, module_name: str, loader) -> None:
    """Declare that `op` has a compiled path on `device_type` ("cpu" or "cuda"), built as
    extension `module_name` by `loader()`."""
    _registry.setdefault(op, {})[device_type] = (module_name, loader)


def declare_op(
    op: str,
    *,
    cpu_sources: Sequence[str],
    cuda_sources: Sequence[str],
    headers: Sequence[str] = (),
    extra_cflags: Sequence[str] = (),
    extra_cuda_cflags: Sequence[str] = (),
) -> Dict[str, Callable[[], Optional[object]]]:
    """Declare the CPU and CUDA builds of `op` (extensions `<op>_cpu`, `<op>_cuda`).

    Registers both for `next3d info` and returns {"cpu": loader, "cuda": loader}; each
    loader builds lazily through `load_op` and returns the module or None.
    """
    def load_cpu():
        return load_op(f"{op}_cpu", cpu_sources, headers=headers, extra_cflags=extra_cflags)

    def load_cuda():
        return load_op(f"{op}_cuda", cuda_sources, cuda=True, headers=headers, extra_cflags=extra_cflags,
                       extra_cuda_cflags=extra_cuda_cflags)

    register(op, "cpu", f"{op}_cpu", load_cpu)
    register(op, "cuda", f"{op}_cuda", load_cuda)
    return {"cpu": load_cpu, "cuda": load_cuda}


def registered() -> Dict[str, Dict[str, tuple]]:
    """Op -> {device type -> (module name, loader)}, for every op module imported so far."""
    return {k: dict(v) for k, v in _registry.items()}


def load_all(device_types: Optional[List[str]] = None) -> Dict[str, Dict[str, OpStatus]]:
    """Try every registered op on every device type; return op -> device type -> status."""
    out: Dict[str, Dict[str, OpStatus]] = {}
    for op, entries in registered().items():
        for dev, (module_name, loader) in entries.items():
            if device_types is not None and dev not in device_types:
                continue
            loader()
            out.setdefault(op, {})[dev] = _status.get(module_name) or OpStatus(module_name, False, "not attempted")
    return out
