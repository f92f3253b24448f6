"""Helpers importable from every test module (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FLAME_DECA = SHARED / "flame_deca"

# Parametrise compiled-vs-reference tests over every device present; CUDA skips cleanly.
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5, atol: float = 1e-5, name: str = ""):
    """torch.testing.assert_close with a name in the message."""
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{name}: {m}")


def eye_line_angle_deg(landmarks) -> float:
    """Angle (degrees, image coordinates: y down) of the line from the left to the right eye
    centre of 68 landmarks (means of points 36-41 and 42-47)."""
    import numpy as np

    d = np.asarray(landmarks)[42:48].mean(0) - np.asarray(landmarks)[36:42].mean(0)
    return float(np.degrees(np.arctan2(d[1], d[0])))
