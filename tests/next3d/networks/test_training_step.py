"""A tiny generator + dual discriminator: gradients, one Adam step, R1 double backward."""

import torch
import torch.nn.functional as F


def _gan_loss(G, D, z, c):
    img = G(z, c)
    return F.softplus(-D(img, F.avg_pool2d(img, 2), c)).mean()


def test_gradients_reach_every_parameter(make_backbone, make_dual_d, zc):
    G, D = make_backbone(), make_dual_d()
    z, c = zc(4)
    _gan_loss(G, D, z, c).backward()
    for net_name, net in [("G", G), ("D", D)]:
        for name, p in net.named_parameters():
            assert p.grad is not None, f"{net_name}.{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{net_name}.{name}: non-finite gradient"
            assert p.grad.abs().max() > 0, f"{net_name}.{name}: zero gradient"


def test_one_adam_step_changes_every_parameter(make_backbone, make_dual_d, zc):
    G, D = make_backbone(), make_dual_d()
    z, c = zc(4)
    before = {f"G.{k}": v.detach().clone() for k, v in G.named_parameters()}
    before.update({f"D.{k}": v.detach().clone() for k, v in D.named_parameters()})
    opt = torch.optim.Adam(list(G.parameters()) + list(D.parameters()), lr=1e-3, betas=(0.0, 0.99))
    opt.zero_grad()
    _gan_loss(G, D, z, c).backward()
    opt.step()
    after = {f"G.{k}": v for k, v in G.named_parameters()}
    after.update({f"D.{k}": v for k, v in D.named_parameters()})
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, f"parameters not updated: {unchanged}"


def test_r1_penalty_double_backward(make_dual_d, zc):
    D = make_dual_d()
    _, c = zc(4)
    image = torch.randn(4, 3, 16, 16, requires_grad=True)
    image_raw = torch.randn(4, 3, 8, 8, requires_grad=True)
    logits = D(image, image_raw, c)
    g_img, g_raw = torch.autograd.grad(logits.sum(), [image, image_raw], create_graph=True)
    assert g_img.shape == image.shape and g_raw.shape == image_raw.shape
    assert g_raw.abs().max() > 0
    penalty = g_img.square().sum([1, 2, 3]) + g_raw.square().sum([1, 2, 3])
    # `logits * 0` keeps every parameter in the graph (as StyleGAN2's training loop does).
    (penalty.mean() * 2 + logits.mean() * 0).backward()
    zero = []
    for name, p in D.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient"
        if p.grad.abs().max() == 0:
            zero.append(name)
    # The input gradient depends on a bias only through a non-piecewise-linear function
    # (the minibatch stddev); biases after it have exactly zero R1 gradient.
    assert zero == ["b4.conv.bias", "b4.fc.bias", "b4.out.bias"]


def test_w_avg_tracks_in_training(make_backbone, zc):
    G = make_backbone()
    z, c = zc(4)
    G(z, c, update_emas=True)
    assert G.mapping.w_avg.abs().max() > 0
    ws = G.mapping(z, c, truncation_psi=0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
