"""Reading JSON from files with bounded size and nesting.

Python's `json` recurses once per nesting level: a config.json of 100000 `[` ends in a
`RecursionError`, and a huge file is read whole into memory. `loads_limited` checks the
byte size and the nesting depth first (a linear scan, strings excluded), refuses the
non-JSON constants NaN / Infinity that Python's json accepts, and raises `JsonLimitError`
(one line naming the source) for anything it cannot read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from next3d.errors import Next3DError
from next3d.limits import format_bytes

MAX_JSON_BYTES = 16 << 20
"""Largest JSON document read by default (configuration files are a few KiB)."""
MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays/objects read by default (configurations nest 3 levels)."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonLimitError(Next3DError, ValueError):
    """A JSON document is too large, too deeply nested, or not valid JSON."""


def json_depth(data: Union[str, bytes]) -> int:
    """Deepest nesting of `[`/`{` in a JSON text (brackets inside strings do not count)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    stripped = _STRING.sub(b'""', raw)
    arr = np.frombuffer(stripped, dtype=np.uint8)
    step = (np.isin(arr, (ord("["), ord("{"))).astype(np.int64)
            - np.isin(arr, (ord("]"), ord("}"))).astype(np.int64))
    return int(np.cumsum(step).max(initial=0))


def _no_constants(name: str):
    raise ValueError(f"'{name}' is not a JSON number")


def loads_limited(data: Union[str, bytes], what: str = "JSON", max_bytes: int = MAX_JSON_BYTES,
                  max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads` with a size bound, a nesting bound and no NaN/Infinity. Raises JsonLimitError."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise JsonLimitError(f"{what}: {format_bytes(size)} is larger than the {format_bytes(max_bytes)} "
                             f"a JSON file of this kind may have")
    depth = json_depth(data)
    if depth > max_depth:
        raise JsonLimitError(f"{what}: nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return json.loads(text, parse_constant=_no_constants)
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"{what}: not UTF-8 text ({exc})") from None
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise JsonLimitError(f"{what}: not valid JSON ({exc})") from None


def load_json_file(path: Union[str, Path], what: Optional[str] = None, max_bytes: int = MAX_JSON_BYTES,
                   max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Read a JSON file with `loads_limited`; the size is checked before reading.

    Raises JsonLimitError (or FileNotFoundError/OSError for unreadable files)."""
    path = Path(path)
    what = what or str(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise JsonLimitError(f"{what}: {format_bytes(size)} is larger than the {format_bytes(max_bytes)} "
                             f"a JSON file of this kind may have")
    return loads_limited(path.read_bytes(), what, max_bytes, max_depth)


__all__ = ["JsonLimitError", "MAX_JSON_BYTES", "MAX_JSON_DEPTH", "json_depth", "loads_limited", "load_json_file"]
