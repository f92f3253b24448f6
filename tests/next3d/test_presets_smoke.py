"""Every preset builds its generator and discriminator and runs one step on the CPU."""

import pytest
import torch

from next3d.checkpoint import build_discriminator, build_generator
from next3d.presets import PRESET_NAMES, get_discriminator_preset, get_preset
from next3d.render.cameras import orbit_label


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_generator_and_discriminator_run(name):
    cfg = get_preset(name)
    G = build_generator(cfg)
    D = build_discriminator(get_discriminator_preset(name))
    z = torch.randn(1, cfg.z_dim)
    c = orbit_label(0.2, 0.05)
    # A small rendering resolution keeps the published-size preset quick; every network still runs.
    with torch.no_grad():
        out = G(z, c, {"expression": torch.zeros(1, 3), "jaw": torch.tensor([[0.1, 0.0, 0.0]])},
                neural_rendering_resolution=16, noise_mode="const")
        logits = D(out["image"], out["image_raw"], c)
    res = cfg.img_resolution
    assert out["image"].shape == (1, 3, res, res)
    assert out["image_raw"].shape == (1, 3, 16, 16) and out["image_depth"].shape == (1, 1, 16, 16)
    assert bool(torch.isfinite(out["image"]).all()) and float(out["image"].std()) > 0
    assert logits.shape == (1, 1) and bool(torch.isfinite(logits).all())
