"""Shared test fixtures: deterministic torch, the optional ../shared assets, CUDA skipping."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import FLAME_DECA


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def flame_deca_dir():
    """../shared/flame_deca (real FLAME-topology assets), or skip when absent."""
    if not FLAME_DECA.is_dir():
        pytest.skip("../shared/flame_deca is not present (it is never needed to run next3d)")
    return FLAME_DECA


def pytest_configure(config):
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
