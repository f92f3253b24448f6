"""Stages 2-4 on the tiny generator against a target it made itself (conftest.truth)."""

import dataclasses

import pytest
import torch

from next3d.inversion.latent import LatentConfig, expand_ws, invert_latent, learning_rate, w_statistics
from next3d.inversion.losses import ImageLoss, LossWeights, noise_regularisation, normalise_noise, psnr, render
from next3d.inversion.pivotal import PivotalConfig, default_alpha, locality_latent, pivotal_tuning
from next3d.inversion.refine import RefineConfig, refine_face

L2 = ImageLoss(None, LossWeights(lpips=0.0, l2=1.0))


def test_image_loss_is_masked_l2():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.zeros(1, 3, 8, 8)
    y[..., :4] = 1.0  # differs on the left half only
    mask = torch.zeros(1, 1, 8, 8)
    assert float(L2(x, y, mask)["total"]) == 0.0  # nothing counts
    mask[..., :4] = 1.0
    assert float(L2(x, y, mask)["l2"]) == pytest.approx(1.0)
    mask[..., 4:] = 1.0
    assert float(L2(x, y, mask)["l2"]) == pytest.approx(0.5)
    assert float(psnr(x, x + 0.2)[0]) == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.04)).item(), rel=1e-5)


def test_noise_regularisation_and_schedule():
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(32, 32, generator=g)]
    smooth = [torch.nn.functional.interpolate(torch.randn(1, 1, 8, 8, generator=g), size=32, mode="bilinear")[0, 0]]
    normalise_noise(smooth)
    assert float(smooth[0].mean()) == pytest.approx(0, abs=1e-5) and float(smooth[0].std()) == pytest.approx(1, 0.02)
    assert float(noise_regularisation(smooth)) > 20 * float(noise_regularisation(white))
    cfg = LatentConfig(steps=100, lr=0.1)
    lrs = [learning_rate(cfg, s) for s in range(100)]
    assert lrs[0] == 0 and max(lrs) == pytest.approx(0.1) and lrs[-1] < 0.01 and lrs[50] == pytest.approx(0.1)


def test_w_inversion_lowers_the_loss_and_moves_towards_the_target(tiny_G, truth):
    G, tgt = tiny_G, truth.target
    cfg = LatentConfig(steps=5, lr=0.1, lr_rampup=0.0, optimise_noise=False, avg_samples=256, initial_noise=0.0)
    res = invert_latent(G, tgt, L2, cfg, neural_resolution=16)
    w_avg, _ = w_statistics(G, 256)
    with torch.no_grad():
        start = render(G, expand_ws(G, w_avg, None), tgt.camera, tgt.flame)
        end = render(G, res.ws, tgt.camera, tgt.flame)
    assert res.ws.shape == (1, G.num_ws, G.w_dim) and len(res.losses) == 5
    assert res.losses[-1] < 0.8 * res.losses[0]
    assert float((end - tgt.image).square().mean()) < 0.8 * float((start - tgt.image).square().mean())
    # ... and in latent space towards the true w.
    assert float((res.ws[0, 0] - truth.ws[0, 0]).norm()) < float((w_avg[0] - truth.ws[0, 0]).norm())


def test_w_plus_frees_only_the_texture_ws(tiny_G, truth):
    cfg = LatentConfig(steps=2, lr=0.1, lr_rampup=0.0, space="w+", optimise_noise=False, avg_samples=64)
    ws = invert_latent(tiny_G, truth.target, L2, cfg, neural_resolution=16).ws
    n = tiny_G.num_ws_eg3d
    assert torch.equal(ws[:, :n], ws[:, :1].expand(-1, n, -1))  # one shared w for the eg3d ws
    assert float((ws[:, n:] - ws[:, :1]).abs().max()) > 0  # the texture ws moved on their own


def test_refinement_moves_a_perturbed_jaw_back(tiny_G, truth):
    # The untrained tiny generator's loss is smooth only near the truth (mouth opened further by
    # 0.06 rad here); the pixels' gradient reaches the mesh only under losses.mesh_gradients.
    G, tgt = tiny_G, truth.target
    start = {k: v.clone() for k, v in truth.flame.items()}
    start["jaw"] = start["jaw"] + torch.tensor([[0.06, 0.0, 0.0]])
    start["expression"] = start["expression"].clone()
    start["expression"][:, :4] += 0.3
    cfg = RefineConfig(steps=5, lr=0.015, camera=False, eyes=False, fit_weight=0.0)
    res = refine_face(G, truth.ws, tgt, L2, cfg, neural_resolution=16, flame=start)
    assert res.image_losses[-1] < 0.5 * res.image_losses[0]
    jaw_err = lambda f: abs(float(f["jaw"][0, 0] - truth.flame["jaw"][0, 0]))  # noqa: E731
    assert jaw_err(res.flame) < 0.5 * jaw_err(start)
    assert not torch.equal(res.flame["expression"], start["expression"])  # refined too
    assert torch.equal(res.flame["shape"], start["shape"])  # identity is not refined
    assert torch.allclose(res.camera, truth.camera, atol=1e-5)  # camera switched off


def test_refinement_priors_pull_towards_the_fitter_priors(tiny_G, truth):
    # With the image loss off, the fitter's priors alone shrink expression and jaw (towards 0).
    zero = ImageLoss(None, LossWeights(lpips=0.0, l2=0.0))
    cfg = RefineConfig(steps=3, lr=0.05, camera=False, fit_weight=1.0)
    res = refine_face(tiny_G, truth.ws, truth.target, zero, cfg, neural_resolution=16)
    assert float(res.flame["jaw"][0, 0]) < float(truth.flame["jaw"][0, 0])
    assert float(res.flame["expression"].norm()) < float(truth.flame["expression"].norm())


def _change(G0, G1, ws, tgt):
    with torch.no_grad():
        a = render(G0, ws, tgt.camera.expand(ws.shape[0], -1), {k: v.expand(ws.shape[0], -1) for k, v in tgt.flame.items()}, 16)
        b = render(G1, ws, tgt.camera.expand(ws.shape[0], -1), {k: v.expand(ws.shape[0], -1) for k, v in tgt.flame.items()}, 16)
    return float((a - b).square().mean())


@pytest.fixture(scope="module")
def pti_runs(tiny_G, truth):
    """Pivotal tuning from the mean latent towards the target, without and with the locality regulariser."""
    G, tgt = tiny_G, truth.target
    w_avg, _ = w_statistics(G, 64)
    pivot = expand_ws(G, w_avg, None)
    base = PivotalConfig(steps=3, lr=2e-3, lpips_threshold=0.0, locality_interval=0)
    free = pivotal_tuning(G, pivot, tgt.camera, tgt.flame, tgt, L2, base, neural_resolution=16)
    local = pivotal_tuning(G, pivot, tgt.camera, tgt.flame, tgt, L2,
                           dataclasses.replace(base, locality_interval=1, locality_l2=30.0, locality_alpha=None),
                           neural_resolution=16)
    return pivot, free, local


def test_pti_lowers_the_input_view_loss_and_leaves_G_alone(tiny_G, truth, pti_runs):
    pivot, free, local = pti_runs
    before = {k: v.clone() for k, v in tiny_G.state_dict().items()}
    for run in (free, local):
        assert run.losses[-1] < run.losses[0]
        with torch.no_grad():
            tuned = float(L2(render(run.G, pivot, truth.camera, truth.flame, 16), truth.target.image)["total"])
        assert tuned < run.losses[0]
        assert not any(p.requires_grad for p in run.G.parameters())
    assert len(local.locality) == 3 and not free.locality
    assert all(torch.equal(v, before[k]) for k, v in tiny_G.state_dict().items())  # the original is untouched
    assert any(not torch.equal(v, before[k]) for k, v in free.G.state_dict().items())


def test_locality_regulariser_bounds_the_change_of_other_latents(tiny_G, truth, pti_runs):
    pivot, free, local = pti_runs
    G = tiny_G
    g = torch.Generator().manual_seed(99)
    probes = torch.cat([locality_latent(G, pivot, default_alpha(G), g) for _ in range(2)])
    change_free = _change(G, free.G, probes, truth.target)
    change_local = _change(G, local.G, probes, truth.target)
    assert change_free > 0
    assert change_local < 0.7 * change_free
