"""Shared fixtures of the synthetic-heads tests: the built-in head's assets, loaded once."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def assets():
    from next3d.synthetic.head import load_head_assets

    return load_head_assets(None)
