"""Fixtures for the animation tests: one tiny random generator per session (random:tiny)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_G():
    """The random:tiny generator (64² output, R = 32, built-in head), eval mode, CPU."""
    from next3d.generate import load_generator

    return load_generator("random:tiny", device="cpu").eval()
