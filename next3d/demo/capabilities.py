"""Which optional capabilities the demo can show a tab for.

A tab appears only when its capability's package is importable (found by
`importlib.util.find_spec`, nothing is imported here):

    photo   next3d.fitting     detection, crop and FLAME/camera fit of a photo (issue 9)
    invert  next3d.inversion   photo -> avatar inversion (issue 14)
    video   next3d.animation   orbit and reenactment videos (issue 13)
"""

from __future__ import annotations

import importlib.util
from typing import Dict

CAPABILITY_MODULES: Dict[str, str] = {
    "photo": "next3d.fitting",
    "invert": "next3d.inversion",
    "video": "next3d.animation",
}


def has_module(name: str) -> bool:
    """True when module `name` can be imported (its spec is found); never raises."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing or broken
        return False


def available_capabilities() -> Dict[str, bool]:
    """Capability name -> whether its package is importable."""
    return {cap: has_module(module) for cap, module in CAPABILITY_MODULES.items()}


__all__ = ["CAPABILITY_MODULES", "has_module", "available_capabilities"]
