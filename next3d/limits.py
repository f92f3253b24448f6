"""Size and memory guards: check what a request implies *before* allocating it.

Three kinds of checks, all raising `LimitError` (one line naming the value, the bound and
the setting that moves it):

* `check_int` / `check_float`: a number is finite, of the right type and within sane bounds
  (e.g. a resolution of 100000 is refused before anything is built).
* `check_allocation(what, shape, itemsize)` / `check_bytes(what, nbytes)`: the memory an
  array (or a whole computation) would take stays below `memory_budget()` — the physical
  memory of this machine, or `$NEXT3D_MEMORY_LIMIT` (bytes, or with a suffix: `8G`, `512M`).
* `check_declared_array(what, shape, dtype, available)`: an array declared in a file (a
  `.npy` header, a pickled array, a safetensors header) fits the bytes actually present,
  so a 40-byte file declaring a (1000000, 1000000) array is refused instead of allocated.
  `check_npy_file(path)` applies it to a `.npy` file.

Everything here is pure Python/numpy arithmetic on Python ints (no overflow).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

from next3d.errors import Next3DError

ENV_MEMORY_LIMIT = "NEXT3D_MEMORY_LIMIT"
_FALLBACK_BUDGET = 16 << 30  # when the physical memory cannot be read
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class LimitError(Next3DError, ValueError):
    """A size or value is outside its sane bounds, or implies more memory than allowed."""


def format_bytes(n: Union[int, float]) -> str:
    """1536 -> '1.5 KiB'; up to EiB, 3 significant digits."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def parse_bytes(text: str) -> int:
    """'8G' / '512M' / '1024' / '1.5G' -> bytes (binary units). Raises LimitError on anything else."""
    s = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = s[-1:] if s[-1:] in _SUFFIXES and s[-1:] != "" else ""
    number = s[:-1] if unit else s
    try:
        value = float(number)
    except ValueError:
        raise LimitError(f"{ENV_MEMORY_LIMIT}={text!r}: expected a size such as 8G, 512M or 1073741824") from None
    if not math.isfinite(value) or value <= 0:
        raise LimitError(f"{ENV_MEMORY_LIMIT}={text!r}: expected a positive size such as 8G")
    return int(value * _SUFFIXES[unit])


def physical_memory() -> Optional[int]:
    """Bytes of physical memory of this machine, or None when unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int:
    """The most bytes one request may imply: $NEXT3D_MEMORY_LIMIT, else the physical memory."""
    env = os.environ.get(ENV_MEMORY_LIMIT, "").strip()
    if env:
        return parse_bytes(env)
    return physical_memory() or _FALLBACK_BUDGET


def _is_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, lo: Optional[int] = None, hi: Optional[int] = None, hint: str = "") -> int:
    """`value` as an int in [lo, hi] (None = unbounded); LimitError naming `name` otherwise."""
    if not _is_int(value):
        raise LimitError(f"{name}: expected an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise LimitError(f"{name}: {value} is outside {bounds}{'; ' + hint if hint else ''}")
    return value


def check_float(name: str, value: Any, lo: Optional[float] = None, hi: Optional[float] = None,
                hint: str = "") -> float:
    """`value` as a finite float in [lo, hi]; NaN and infinities are refused."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LimitError(f"{name}: expected a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise LimitError(f"{name}: expected a finite number, got {value}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        raise LimitError(f"{name}: {value:g} is outside {bounds}{'; ' + hint if hint else ''}")
    return value


def check_finite_array(name: str, values: Any) -> None:
    """Refuse NaN or infinite entries in an array or tensor (names the first bad index)."""
    import numpy as np

    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise LimitError(f"{name}: holds {int(bad.sum())} non-finite value(s) (first at index {idx}: "
                         f"{arr[idx]}); expected finite numbers")


def shape_elements(shape: Iterable[Any], what: str = "array") -> int:
    """Number of elements of `shape` as a Python int (no overflow); negative or non-int sizes refused."""
    dims = tuple(shape)
    count = 1
    for d in dims:
        if not _is_int(d) or int(d) < 0:
            raise LimitError(f"{what}: shape {dims} has a size that is not a non-negative integer ({d!r})")
        count *= int(d)
    return count


def check_bytes(what: str, nbytes: int, budget: Optional[int] = None, hint: str = "") -> int:
    """Refuse a request of `nbytes` above `budget` (default `memory_budget()`)."""
    budget = memory_budget() if budget is None else int(budget)
    if nbytes > budget:
        raise LimitError(f"{what}: would need {format_bytes(nbytes)}, more than the memory limit "
                         f"{format_bytes(budget)}{'; ' + hint if hint else ''} (the limit is the machine's "
                         f"memory, or ${ENV_MEMORY_LIMIT})")
    return int(nbytes)


def check_allocation(what: str, shape: Sequence[Any], itemsize: int = 4, budget: Optional[int] = None,
                     hint: str = "") -> int:
    """Bytes of an array of `shape` and `itemsize`; LimitError when above the budget."""
    return check_bytes(f"{what} of shape {tuple(int(s) if _is_int(s) else s for s in shape)}",
                       shape_elements(shape, what) * int(itemsize), budget, hint)


def check_declared_array(what: str, shape: Sequence[Any], dtype: Any, available: int,
                         budget: Optional[int] = None) -> int:
    """An array declared in a file must fit in the `available` bytes that follow the declaration
    (and in the memory budget). Returns its byte count."""
    import numpy as np

    itemsize = np.dtype(dtype).itemsize
    need = shape_elements(shape, what) * itemsize
    if need > available:
        raise LimitError(f"{what}: declares a {np.dtype(dtype).name} array of shape {tuple(shape)} "
                         f"({format_bytes(need)}) but the file holds only {format_bytes(available)} of data "
                         f"(truncated or malformed)")
    return check_bytes(f"{what} (shape {tuple(shape)})", need, budget)


def check_npy_file(path: Union[str, Path], what: Optional[str] = None) -> Tuple[Tuple[int, ...], Any]:
    """Read a `.npy` header and check its declared array against the file size.

    Returns (shape, dtype). Object arrays (pickles) are not size-checked here (their size
    is unknown until read). Raises LimitError / ValueError naming the file.
    """
    import numpy as np

    path = Path(path)
    what = what or str(path)
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = reader(fh)
        except (ValueError, OSError, EOFError) as exc:
            raise LimitError(f"{what}: not a readable .npy file ({exc})") from None
        data_start = fh.tell()
    if dtype != np.dtype(object):
        check_declared_array(what, shape, dtype, path.stat().st_size - data_start)
    return tuple(shape), dtype


__all__ = [
    "ENV_MEMORY_LIMIT", "LimitError", "format_bytes", "parse_bytes", "physical_memory", "memory_budget",
    "check_int", "check_float", "check_finite_array", "shape_elements", "check_bytes", "check_allocation",
    "check_declared_array", "check_npy_file",
]
