"""Loss values, schedules, EMA and lazy-regularisation maths, checked by hand."""

import math

import numpy as np
import pytest
import torch

from training import losses
from training.config import TrainingConfig, training_preset
from training.ema import ema_beta, update_ema
from training.setup import lazy_adam


def test_nonsaturating_values():
    logits = torch.tensor([[0.0], [2.0], [-3.0]])
    g = losses.g_nonsaturating(logits)
    assert torch.allclose(g, torch.tensor([math.log(2), math.log1p(math.exp(-2)), math.log1p(math.exp(3))]))
    d = losses.d_nonsaturating(torch.tensor([[1.0]]), torch.tensor([[-1.0]]))
    # softplus(-1) + softplus(-1) = 2 log(1 + e^-1)
    assert torch.allclose(d, torch.tensor([2 * math.log1p(math.exp(-1))]))
    assert torch.allclose(losses.d_nonsaturating(None, torch.tensor([[0.0]])), torch.tensor([math.log(2)]))


def test_r1_of_a_quadratic_discriminator():
    # D(x, y) = 0.5 a |x|^2 + b . y  ->  grad_x = a x, grad_y = b; penalty = a^2 |x|^2 + |b|^2 per sample.
    a = 3.0
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    y = torch.randn(4, 3, 2, 2, requires_grad=True)
    b = torch.randn(3, 2, 2)
    logits = (0.5 * a * x.square().flatten(1).sum(1) + (y * b).flatten(1).sum(1))[:, None]
    pen = losses.r1_penalty(logits, [x, y])
    want = a * a * x.detach().square().flatten(1).sum(1) + b.square().sum()
    assert pen.shape == (4,)
    assert torch.allclose(pen, want, rtol=1e-5)
    # Differentiable: d pen / d x = 2 a^2 x.
    (gx,) = torch.autograd.grad(pen.sum(), [x])
    assert torch.allclose(gx, 2 * a * a * x.detach(), rtol=1e-5)


def test_density_l1_on_a_known_field():
    # sigma(p) = 2 p_x: points jittered by d along x differ by 2 |d|.
    pts = torch.rand(2, 100, 3)
    d = torch.full((2, 100, 3), 0.0)
    d[..., 0] = torch.linspace(-0.01, 0.01, 100)
    field = lambda p: 2 * p[..., :1]  # noqa: E731
    val = losses.density_l1(field(pts), field(pts + d))
    assert abs(float(val) - 2 * float(d[..., 0].abs().mean())) < 1e-6


def test_gaussian_blur_is_normalised_and_eg3d_sized():
    img = torch.zeros(1, 1, 41, 41)
    img[0, 0, 20, 20] = 1.0
    out = losses.gaussian_blur(img, 2.0)
    assert abs(float(out.sum()) - 1.0) < 1e-5
    # EG3D's taps: exp2(-(x / sigma)^2) over |x| <= floor(3 sigma) = 6, separable.
    x = torch.arange(-6, 7, dtype=torch.float32)
    f = (-(x / 2.0) ** 2).exp2()
    f = f / f.sum()
    assert torch.allclose(out[0, 0, 20, 14:27], f * f[6], atol=1e-6)
    assert torch.equal(losses.gaussian_blur(img, 0.2), img)  # floor(0.6) = 0 taps: unchanged


def test_schedule_fades():
    cfg = TrainingConfig(batch=32, blur_init_sigma=10, blur_fade_kimg=200, gpc_reg_prob=0.5, gpc_reg_fade_kimg=1000,
                         neural_rendering_resolution_final=128, neural_rendering_resolution_fade_kimg=1000)
    s0 = losses.schedule_at(cfg, 0, 64)
    assert (s0.blur_sigma, s0.swap_prob, s0.neural_rendering_resolution) == (10.0, 1.0, 64)
    s = losses.schedule_at(cfg, 100_000, 64)
    assert s.blur_sigma == pytest.approx(5.0) and s.swap_prob == pytest.approx(0.95)
    assert s.neural_rendering_resolution == int(np.rint(64 * 0.9 + 128 * 0.1))
    s = losses.schedule_at(cfg, 5_000_000, 64)
    assert (s.blur_sigma, s.swap_prob, s.neural_rendering_resolution) == (0.0, 0.5, 128)


def test_swap_conditioning_probability():
    c = torch.arange(4000, dtype=torch.float32)[:, None].expand(-1, 25)
    torch.manual_seed(0)
    out = losses.swap_conditioning(c, 0.5)
    swapped = (out[:, 0] != c[:, 0]).float()
    assert abs(float(swapped.mean()) - 0.5) < 0.03
    rolled = torch.roll(c, 1, 0)
    assert torch.equal(out[swapped.bool()], rolled[swapped.bool()])  # a swap takes the neighbour's label
    assert torch.equal(losses.swap_conditioning(c, 0.0), c)


def test_ema_rampup_maths():
    # Published: batch 32, ema_kimg 10, ramp-up 0.05.
    assert ema_beta(32, 1000, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 50))  # ramp-up caps at nimg * 0.05
    assert ema_beta(32, 10_000_000, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 10_000))
    assert ema_beta(32, 1000, 10.0, None) == pytest.approx(0.5 ** (32 / 10_000))
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    a_w = a.weight.detach().clone()
    update_ema(a, b, 0.25)
    assert torch.allclose(a.weight, b.weight + (a_w - b.weight) * 0.25)


def test_lazy_regularisation_scaling():
    p = [torch.nn.Parameter(torch.zeros(3))]
    opt = lazy_adam(p, 0.0025, (0.0, 0.99), 1e-8, 4)
    g = opt.param_groups[0]
    assert g["lr"] == pytest.approx(0.0025 * 4 / 5)
    assert g["betas"][0] == 0.0 and g["betas"][1] == pytest.approx(0.99 ** (4 / 5))
    opt = lazy_adam(p, 0.002, (0.0, 0.99), 1e-8, 16)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.002 * 16 / 17)
    assert lazy_adam(p, 0.002, (0.0, 0.99), 1e-8, 0).param_groups[0]["lr"] == 0.002


def test_ffhq512_is_the_published_recipe():
    t = training_preset("ffhq512")
    assert (t.batch, t.glr, t.dlr, t.betas, t.r1_gamma, t.d_reg_interval) == (32, 0.0025, 0.002, (0.0, 0.99), 4.0, 16)
    assert (t.density_reg, t.g_reg_interval, t.density_reg_p_dist, t.density_reg_points) == (0.25, 4, 0.004, 1000)
    assert (t.gpc_reg_prob, t.gpc_reg_fade_kimg, t.blur_init_sigma, t.blur_fade_kimg) == (0.5, 1000, 10, 200)
    assert (t.ema_kimg, t.ema_rampup, t.c_noise) == (10.0, 0.05, 1.0)
    tiny = training_preset("tiny")
    assert tiny.ema_kimg == pytest.approx(tiny.batch * 10 / 32) and tiny.blur_fade_kimg == pytest.approx(tiny.batch * 200 / 32)
