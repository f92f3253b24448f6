import pytest
import torch

from helpers import assert_close
from next3d.networks.decoder import TriPlaneDecoder
from next3d.render.cameras import orbit_label
from next3d.render.compositor import composite
from next3d.render.ray_sampler import make_rays
from next3d.render.samplers import importance_depths, stratified_depths
from next3d.render.volume_renderer import RenderOptions, VolumeRenderer
from torch_utils.misc import ShapeError

RADIUS = 0.3  # world units of the hand-made object


def _disc_planes(res=32, colour=0.8):
    """Planes whose channel 0 is 1 inside a disc of radius RADIUS (world) and channels 1-3 `colour`."""
    centres = (torch.arange(res) + 0.5) / res * 2 - 1  # grid coordinates of texel centres
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    disc = ((gx ** 2 + gy ** 2).sqrt() <= 2 * RADIUS).float()  # plane coords = 2 * world / box_warp
    plane = torch.stack([disc, disc * colour, disc * colour, disc * colour])
    return plane.expand(1, 3, 4, res, res).clone()


def _hand_decoder(plane_features):
    """Opaque where all three discs overlap (an intersection of three cylinders)."""
    mean = plane_features.mean(1)
    return {"sigma": 1000.0 * torch.relu(mean[..., :1] - 0.95), "features": mean[..., 1:4]}


@pytest.mark.parametrize("num_fine", [0, 16])
def test_renders_a_hand_made_object(num_fine):
    opts = RenderOptions(num_coarse=32, num_fine=num_fine, density_activation="none", perturb=False, det=True)
    res = 7
    out = VolumeRenderer(opts)(_disc_planes(), _hand_decoder, orbit_label(), res)
    assert out["features"].shape == (1, 3, res, res)
    assert out["depth"].shape == (1, 1, res, res) and out["weight_sum"].shape == (1, 1, res, res)
    centre, corner = (0, 0, res // 2, res // 2), (0, 0, 0, 0)
    # Camera at z = 2.9 looking down -z: the object's front surface is at depth 2.9 - 0.3
    # (where the bilinear disc edge makes the plane mean reach 0.95: 2.601), and its density
    # is at most 1000 * 0.05 = 50, so the expected termination depth is about 2.601 + 1/50.
    # The coarse pass alone blurs the colour (an interval straddling the surface averages
    # inside and outside colours); importance samples resolve it.
    colour_tol = 0.2 if num_fine == 0 else 0.03
    assert abs(float(out["depth"][centre]) - 2.621) < 0.01
    assert float(out["weight_sum"][centre]) > 0.99
    assert abs(float(out["features"][centre]) - (0.8 * 2 - 1)) < colour_tol  # features rescaled to (-1, 1)
    # Corner rays pass beside the object: empty, "black" (-1) features, and the largest
    # sample depth of all rays (EG3D's clamp); deterministic samples end exactly at 3.3.
    assert float(out["weight_sum"][corner]) < 1e-3
    assert float(out["depth"][corner]) == pytest.approx(3.3, abs=1e-6)
    assert abs(float(out["features"][corner]) + 1) < 1e-2
    assert float(out["depth"].min()) >= 2.25 and float(out["depth"].max()) <= 3.3 + 1e-6


def test_gradients_reach_planes_and_decoder():
    torch.manual_seed(1)
    dec = TriPlaneDecoder(in_channels=8, hidden_channels=16, out_channels=6)
    planes = torch.randn(2, 3, 8, 16, 16, requires_grad=True)
    c = orbit_label(torch.tensor([0.3, -0.3]), torch.tensor([0.0, 0.2]))
    out = VolumeRenderer(RenderOptions(num_coarse=6, num_fine=6))(planes, dec, c, 4)
    assert out["features"].shape == (2, 6, 4, 4)
    depth, weight_sum = out["depth"].detach(), out["weight_sum"].detach()
    assert bool(torch.isfinite(depth).all())
    # Jittered EG3D samples reach up to one step (1.05 / 5) past ray_end; depth stays inside.
    assert float(depth.min()) >= 2.25 and float(depth.max()) <= 3.3 + 1.05 / 5
    assert float(weight_sum.min()) >= 0 and float(weight_sum.max()) <= 1
    (out["features"].square().mean() + out["depth"].mean()).backward()
    assert float(planes.grad.abs().sum()) > 0
    for name, p in dec.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_query_matches_the_renderers_own_decoding():
    torch.manual_seed(2)
    dec = TriPlaneDecoder(in_channels=8, hidden_channels=16, out_channels=5)
    planes = torch.randn(1, 3, 8, 16, 16)
    renderer = VolumeRenderer(RenderOptions(num_coarse=5, num_fine=0, perturb=False))
    c = orbit_label(0.2, 0.1)
    origins, dirs = make_rays(c, 3)
    depths = stratified_depths(1, 9, 5, 2.25, 3.3, perturb=False)
    points = (origins.unsqueeze(2) + depths * dirs.unsqueeze(2)).reshape(1, 45, 3)
    q = renderer.query(planes, dec, points)
    assert q["sigma"].shape == (1, 45, 1) and q["features"].shape == (1, 45, 5)
    manual = composite(q["features"].reshape(1, 9, 5, 5), q["sigma"].reshape(1, 9, 5, 1), depths)
    rendered = renderer.render_rays(planes, dec, origins, dirs)
    assert_close(rendered["features"], manual.features * 2 - 1, name="features")
    assert_close(rendered["depth"], manual.depth, name="depth")


def test_custom_grid_sample_is_used_and_errors():
    calls = []

    def spy(inp, grid):
        calls.append(tuple(inp.shape))
        return torch.nn.functional.grid_sample(inp, grid, align_corners=False)

    dec = TriPlaneDecoder(in_channels=4, hidden_channels=8, out_channels=3)
    renderer = VolumeRenderer(RenderOptions(num_coarse=4, num_fine=4))
    renderer(torch.randn(1, 3, 4, 8, 8), dec, orbit_label(), 2, grid_sample=spy)
    assert calls == [(3, 4, 8, 8), (3, 4, 8, 8)]  # coarse and fine pass
    with pytest.raises(ShapeError, match="camera label"):
        renderer(torch.randn(2, 3, 4, 8, 8), dec, orbit_label(), 2)
    with pytest.raises(ValueError, match="ray range"):
        RenderOptions(ray_start=3.0, ray_end=2.0)
    with pytest.raises(ValueError, match="num_coarse >= 4"):
        RenderOptions(num_coarse=3, num_fine=2)


def test_two_passes_as_eg3d():
    """The fine depths are EG3D's importance samples of the coarse weights, merged by sorting."""
    torch.manual_seed(4)
    dec = TriPlaneDecoder(in_channels=4, hidden_channels=8, out_channels=3)
    planes = torch.randn(1, 3, 4, 8, 8) * 3
    opts = RenderOptions(num_coarse=6, num_fine=5, perturb=False, det=True)
    renderer = VolumeRenderer(opts)
    origins, dirs = make_rays(orbit_label(0.1, -0.1), 2)
    got = renderer.render_rays(planes, dec, origins, dirs)
    assert got["weights"].shape == (1, 4, 10, 1)  # one weight per interval of the 11 merged samples
    coarse = stratified_depths(1, 4, 6, 2.25, 3.3, perturb=False)

    def decode(depths):
        q = renderer.query(planes, dec, (origins.unsqueeze(2) + depths * dirs.unsqueeze(2)).reshape(1, -1, 3))
        return q["features"].reshape(1, 4, -1, 3), q["sigma"].reshape(1, 4, -1, 1)

    feats, sigma = decode(coarse)
    fine = importance_depths(coarse, composite(feats, sigma, coarse).weights, 5, det=True)
    merged = torch.sort(torch.cat([coarse, fine], dim=2), dim=2).values
    assert float(merged[0, 0, 1:, 0].diff().min()) >= 0
    all_feats, all_sigma = decode(merged)
    expect = composite(all_feats, all_sigma, merged)
    assert_close(got["features"], expect.features * 2 - 1, atol=1e-5, name="features")
    assert_close(got["depth"], expect.depth, atol=1e-5, name="depth")
