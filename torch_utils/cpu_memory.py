"""Keep freed CPU memory in the process for the next allocation (glibc's allocator).

A generator forward at 512^2 allocates activations of 67-268 MB. glibc serves every block
above its mmap threshold (at most 32 MiB) with a fresh mmap and returns it on free, so each
such activation pays page faults for all its pages again: filling a new 134 MB tensor took
365 ms against 106 ms for a reused one (2-core EPYC, one thread, 2026-12-03). Turning off
mmap for large blocks and the trimming of the heap top keeps freed blocks in the heap, where
the next forward reuses them already mapped. The price: the process keeps its peak memory
until it exits (or `release()`), which is what a process rendering many images wants.

Process-wide, unlike `torch_utils.compute_policy` (a context variable): glibc has one set of
allocator parameters per process. `keep_freed_memory()` applies them (the `next3d` command
calls it once at start), `release()` restores glibc's defaults and hands freed memory back.
Elsewhere than glibc (macOS, Windows, musl) both do nothing and return False. NEXT3D_KEEP_FREED_MEMORY=0
keeps glibc's defaults in the commands. `glibc_defaults()` runs a block with glibc's defaults
(the benchmarks' published side: the published code leaves the allocator alone).

glibc adapts its mmap threshold (128 KiB at start, up to 32 MiB as large blocks are freed);
setting any parameter stops that, so `release()` and `glibc_defaults()` set the values it
settles at (32 MiB, trimming above 64 MiB): blocks above 32 MiB are mmap'd afresh again, as
in a process that never called `keep_freed_memory()`, unless the heap already holds a free
block that fits (memory the kept side left there): the benchmarks' published side gets that
help too, so their ratios understate this lever (ffhq512 batch 1, one thread: the published
arrangement took 12.9 s this way, 15.3 s in a process that never touched the allocator).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
from typing import Iterator, Optional

# mallopt parameters of glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536
# Where glibc's dynamic thresholds settle in a process that has freed a large block (its mmap
# threshold rises to the size of freed mmap'd blocks, at most 32 MiB on 64-bit; trimming at
# twice that). Setting any threshold stops the adaptation, so the defaults come back as this
# settled state.
_SETTLED_MMAP_THRESHOLD = 32 * 2 ** 20
_SETTLED_TRIM_THRESHOLD = 2 * _SETTLED_MMAP_THRESHOLD
_KEEP_TRIM_THRESHOLD = 2 ** 31 - 1  # mallopt takes an int: the largest means "never trim"

_state = {"kept": False}


@functools.lru_cache(maxsize=None)
def _glibc() -> Optional[ctypes.CDLL]:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    except (OSError, AttributeError):
        return None
    return libc


def available() -> bool:
    """Whether this process runs on glibc (the only allocator these settings know)."""
    return _glibc() is not None


def is_kept() -> bool:
    """Whether `keep_freed_memory()` is in force."""
    return _state["kept"]


def keep_freed_memory() -> bool:
    """Large blocks from the heap, freed memory kept for reuse; True when applied."""
    libc = _glibc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD) == 1
    _state["kept"] = ok
    return ok


def _settled_defaults(libc) -> bool:
    ok = libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX) == 1
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _SETTLED_MMAP_THRESHOLD) == 1 and ok
    ok = libc.mallopt(_M_TRIM_THRESHOLD, _SETTLED_TRIM_THRESHOLD) == 1 and ok
    _state["kept"] = False
    return ok


def release() -> bool:
    """glibc's default behaviour again (as settled after the first large frees), and the freed
    heap memory handed back to the system."""
    libc = _glibc()
    if libc is None:
        return False
    ok = _settled_defaults(libc)
    libc.malloc_trim(0)
    return ok


def enabled_by_environment() -> bool:
    """False when NEXT3D_KEEP_FREED_MEMORY is 0 / false / no / off."""
    return os.environ.get("NEXT3D_KEEP_FREED_MEMORY", "1").strip().lower() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def glibc_defaults() -> Iterator[None]:
    """Run the body with glibc's default parameters; what was in force returns afterwards."""
    was_kept = is_kept()
    if was_kept:
        _settled_defaults(_glibc())  # no trim: a default process would hold these pages too
    try:
        yield
    finally:
        if was_kept:
            keep_freed_memory()
