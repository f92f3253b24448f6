"""The public split of the plane synthesis: identity part once per latent, mesh part per frame."""

import pytest
import torch

from next3d.networks.generator import IdentityPlanes
from torch_utils.misc import ShapeError


@pytest.fixture(scope="module")
def G():
    from next3d.generate import load_generator

    return load_generator("random:tiny", device="cpu").eval()


def _inputs(G, n=2):
    torch.manual_seed(0)
    z = torch.randn(n, G.z_dim)
    from next3d.render.cameras import orbit_label

    c = orbit_label(torch.linspace(-0.3, 0.3, n), 0.1)
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = torch.linspace(0.0, 0.3, n)
    flame = {"expression": 0.5 * torch.randn(n, G.flame.num_expression), "jaw": jaw}
    return z, c, flame


def test_identity_then_mesh_planes_equal_synthesize_planes(G):
    z, c, flame = _inputs(G)
    with torch.no_grad():
        ws = G.mapping(z, c)
        ident = G.identity_planes(ws, noise_mode="const")
        got = G.mesh_planes(ident, flame, noise_mode="const")
        ref = G.synthesize_planes(ws, flame, noise_mode="const")
    res, ch = G.config.static.resolution, G.config.plane_channels
    assert isinstance(ident, IdentityPlanes)
    assert ident.texture.shape == (2, ch, G.config.texture.resolution, G.config.texture.resolution)
    assert ident.static.shape == (2, 3, ch, res, res)
    assert got.shape == (2, 3, ch, res, res)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    # Rows of a cached identity pair with other meshes: row 1 alone equals its own synthesis.
    with torch.no_grad():
        one = G.mesh_planes(ident.select(torch.tensor([1])), {k: v[1:] for k, v in flame.items()},
                            noise_mode="const")
    torch.testing.assert_close(one, ref[1:], atol=2e-4, rtol=1e-4)  # batch 1 may take another conv form


def test_cached_planes_render_as_the_full_forward(G):
    """Camera-only orbit: planes made once, rendered under other cameras, equal the full forward."""
    from next3d.generate import deterministic_rays
    from next3d.render.cameras import orbit_label

    z, c, flame = _inputs(G, 1)
    with torch.no_grad(), deterministic_rays(G):
        ws = G.mapping(z, c)
        planes = G.mesh_planes(G.identity_planes(ws, noise_mode="const"), flame, noise_mode="const")
        for yaw in (-0.4, 0.0, 0.4):
            cam = orbit_label(yaw, 0.0)
            full = G.synthesis(ws, cam, flame, noise_mode="const")
            cached = G.synthesis(ws, cam, flame, planes=planes, noise_mode="const")
            assert full["image"].shape == (1, 3, G.img_resolution, G.img_resolution)
            torch.testing.assert_close(cached["image"], full["image"], atol=1e-5, rtol=0)
            torch.testing.assert_close(cached["image_depth"], full["image_depth"], atol=1e-5, rtol=0)


def test_mesh_planes_checks_the_batch(G):
    z, c, flame = _inputs(G, 2)
    with torch.no_grad():
        ident = G.identity_planes(G.mapping(z, c), noise_mode="const")
    with pytest.raises(ShapeError, match="differs from the ws batch 2"):
        G.mesh_planes(ident, {k: v[:1] for k, v in flame.items()})
    bad = IdentityPlanes(ws=ident.ws, texture=ident.texture[:, :1], static=ident.static)
    with pytest.raises(ShapeError, match="identity texture"):
        G.mesh_planes(bad, flame)
