"""Fixtures for the inversion tests: the tiny generator and a target it made itself (known latent,
camera and FLAME), so every stage can be checked against the truth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import pytest
import torch


@dataclass
class Truth:
    ws: torch.Tensor
    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    target: object


@pytest.fixture(scope="session")
def tiny_G():
    from next3d.checkpoint import build_generator
    from next3d.presets import get_preset

    return build_generator(get_preset("tiny"))


@pytest.fixture(scope="session")
def truth(tiny_G):
    """A target rendered by tiny_G from a known latent (seed 3), camera (yaw 0.25) and FLAME."""
    from next3d.generate import frontal_label
    from next3d.inversion.losses import render
    from next3d.inversion.target import InversionTarget, face_mask, full_flame
    from next3d.render.cameras import orbit_label

    G = tiny_G
    g = torch.Generator().manual_seed(3)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=g), frontal_label(G)).detach()
    camera = orbit_label(0.25, 0.05)
    flame = full_flame(G, {"shape": torch.randn(1, 8, generator=g) * 0.5,
                           "expression": torch.randn(1, 8, generator=g) * 0.8,
                           "jaw": torch.tensor([[0.25, 0.0, 0.0]])})
    with torch.no_grad():
        image = render(G, ws, camera, flame, 16)  # the tests render at R = 16 too
    target = InversionTarget(image=image, camera=camera, flame=flame, mask=face_mask(G, camera, flame, 64),
                             name="tiny-truth")
    return Truth(ws=ws, camera=camera, flame=flame, target=target)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
