"""Published behaviours that no test used to pin (issue 16): each test computes the published
value by hand from the published formula (design.md, EG3D/Next3D/FLAME/StyleGAN2) and compares
it with the module's output, so changing the behaviour fails here. Tiny sizes; < 1 s each.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close


@pytest.fixture(autouse=True)
def _reference_ops(monkeypatch):
    """The pure-PyTorch ops (no compile step in these tests; the formulas are the same)."""
    monkeypatch.setenv("NEXT3D_OPS", "ref")


# ----------------------------------------------------------------------------- generator data path


def _tiny_generator():
    from next3d.networks.generator import Next3DGenerator
    from next3d.presets import get_preset

    cfg = get_preset("tiny").replace(**{
        "channel_base": 256, "channel_max": 16, "texture.resolution": 32, "static.resolution": 32,
        "mouth.out_resolution": 16, "blending.final_size": 8, "superres.input_resolution": 8,
        "superres.out_resolution": 32, "render.neural_resolution": 8, "render.samples_per_ray": 4,
        "render.importance_samples": 4})
    torch.manual_seed(3)
    return Next3DGenerator(cfg).eval()


@pytest.fixture(scope="module")
def tiny_g():
    return _tiny_generator()


def _distinct_ws(g, batch=1):
    """ws whose eg3d part and texture part differ (and every ws differs from the others)."""
    return torch.randn(batch, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(7))


@torch.no_grad()
def test_superresolution_and_mouth_are_styled_by_the_eg3d_ws(tiny_g):
    """Design §1.2/§1.6/§1.10: the mouth StyleUNet, the blending net and the super-resolution
    take ws[:, :14] (the eg3d ws), never the texture ws ws[:, 14:]."""
    from next3d.render.cameras import orbit_label

    g = tiny_g
    ws = _distinct_ws(g)
    seen = {}
    handles = []

    def spy(name, module):
        def hook(mod, args, kwargs):
            tensors = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor) and a.ndim == 3]
            seen[name] = tensors[-1].clone()
        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    spy("mouth", g.mouth_backbone.synthesis)
    spy("blending", g.neural_blending.synthesis)
    spy("sr", g.superresolution)
    spy("texture", g.texture_backbone.synthesis)
    try:
        g.synthesis(ws, orbit_label(0.0, 0.0), {"jaw": torch.zeros(1, 3)}, noise_mode="const")
    finally:
        for h in handles:
            h.remove()
    eg3d, texture = ws[:, :g.num_ws_eg3d], ws[:, g.num_ws_eg3d:]
    from next3d.networks.generator import fit_ws

    assert torch.equal(seen["mouth"], fit_ws(eg3d, g.mouth_backbone.num_ws))
    assert torch.equal(seen["blending"], fit_ws(eg3d, g.neural_blending.num_ws))
    assert torch.equal(seen["sr"], eg3d)
    assert torch.equal(seen["texture"], texture)


@torch.no_grad()
def test_superresolution_reads_only_the_last_eg3d_ws():
    """EG3D's SuperresolutionHybrid: ws[:, -1:] repeated; with the eg3d ws that is ws[:, 13]."""
    from next3d.networks.superresolution import SuperresolutionHybrid4X

    torch.manual_seed(0)
    sr = SuperresolutionHybrid4X(channels=4, img_resolution=16, w_dim=8, block_channels=(4, 4)).eval()
    feats = torch.randn(1, sr.channels, 4, 4)
    ws = torch.randn(1, 14, sr.w_dim)
    ref = sr(feats[:, :3], feats, ws, noise_mode="none")
    other = ws.clone()
    other[:, :13] = torch.randn(1, 13, sr.w_dim)
    assert_close(sr(feats[:, :3], feats, other, noise_mode="none"), ref, name="ws[:, :13] unused")
    last = ws.clone()
    last[:, 13] += 1.0
    assert (sr(feats[:, :3], feats, last, noise_mode="none") - ref).abs().max() > 1e-3


def test_superresolution_input_resize_is_antialiased():
    """Published sr_antialias=True: the feature image is resized to S with antialias (matters
    when R > S, e.g. R = 256 -> S = 128)."""
    from next3d.config import SuperresConfig
    from next3d.networks.superresolution import SuperresolutionHybrid4X

    assert SuperresConfig().antialias is True
    sr = SuperresolutionHybrid4X(channels=4, img_resolution=32, w_dim=8, block_channels=(4, 4))
    x = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    want = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=True)
    assert_close(sr._resize(x), want, name="antialiased resize")
    plain = F.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=False)
    assert (want - plain).abs().max() > 0.05  # the flag matters for this input


def test_torgb_is_modulated_not_demodulated():
    """StyleGAN2 ToRGB: y = conv1x1(x, W * s) + b with s = affine(w) / sqrt(I); no demodulation."""
    from next3d.networks.synthesis import ToRGBLayer

    torch.manual_seed(0)
    layer = ToRGBLayer(6, 3, w_dim=5)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        layer.affine.bias.copy_(torch.randn(6))
    x = torch.randn(2, 6, 4, 4)
    w = torch.randn(2, 5)
    a = layer.affine
    styles = (w @ (a.weight * a.weight_gain).T + a.bias * a.bias_gain) / math.sqrt(6)
    weight = layer.weight[:, :, 0, 0]  # (O, I)
    want = torch.einsum("oi,bi,bihw->bohw", weight, styles, x) + layer.bias[None, :, None, None]
    for fused in (True, False):
        assert_close(layer(x, w, fused_modconv=fused), want, rtol=1e-4, atol=1e-5, name=f"ToRGB fused={fused}")


def test_mapping_normalises_z_and_the_embedded_camera_then_lrelu_layers():
    """Design §1.2: z and FC(c) each normalised by their second moment, concatenated, FC layers
    with lrelu (gain sqrt 2) and lr multiplier 0.01, broadcast to num_ws."""
    from next3d.networks.mapping import MappingNetwork

    torch.manual_seed(0)
    m = MappingNetwork(z_dim=6, c_dim=5, w_dim=4, num_ws=3, num_layers=2, lr_multiplier=0.01)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 10)
    z, c = torch.randn(2, 6) * 3, torch.randn(2, 5)

    def fc(layer, x, act):
        y = x @ (layer.weight * layer.lr_multiplier / math.sqrt(layer.in_features)).T + layer.bias * layer.lr_multiplier
        return F.leaky_relu(y, 0.2) * math.sqrt(2) if act else y

    def norm(v):
        return v / torch.sqrt(v.square().mean(dim=1, keepdim=True) + 1e-8)

    e = fc(m.embed, c, act=False)
    x = torch.cat([norm(z), norm(e)], dim=1)
    x = fc(m.fc1, fc(m.fc0, x, True), True)
    assert_close(m(z, c), x[:, None].expand(-1, 3, -1), rtol=1e-4, atol=1e-5, name="mapping by hand")


# ----------------------------------------------------------------------------- decoder and compositing


def test_decoder_mean_of_planes_softplus_mlp_and_padded_sigmoid():
    """Design §1.8: mean of the 3 plane features -> FC -> softplus -> FC; features = sigmoid * 1.002 - 0.001."""
    from next3d.networks.decoder import TriPlaneDecoder

    torch.manual_seed(0)
    dec = TriPlaneDecoder(in_channels=4, hidden_channels=5, out_channels=3)
    with torch.no_grad():
        for p in dec.parameters():
            p.copy_(torch.randn_like(p))
    feats = torch.randn(2, 3, 7, 4) * 2
    l0, l1 = dec.net[0], dec.net[2]
    x = feats.mean(dim=1)
    h = F.softplus(x @ (l0.weight / math.sqrt(4)).T + l0.bias)
    y = h @ (l1.weight / math.sqrt(5)).T + l1.bias
    out = dec(feats)
    assert_close(out["sigma"], y[..., :1], rtol=1e-5, atol=1e-5, name="raw sigma")
    assert_close(out["features"], torch.sigmoid(y[..., 1:]) * 1.002 - 0.001, rtol=1e-5, atol=1e-6, name="features")


def test_composite_uses_softplus_of_sigma_minus_one_on_midpoints():
    """EG3D ray marcher: deltas between samples, midpoint colours and densities,
    density softplus(σ - 1), alpha = 1 - exp(-density δ), T = cumprod(1 - alpha + 1e-10),
    depth = Σ w z_mid / Σ w clamped to [min, max] of the sample depths."""
    from next3d.render.compositor import composite

    depths = torch.tensor([2.3, 2.6, 2.8, 3.2]).view(1, 1, 4, 1)
    sigma = torch.tensor([0.5, 4.0, -1.0, 9.0]).view(1, 1, 4, 1)
    feats = torch.tensor([[0.1, 0.9], [0.4, 0.2], [0.8, 0.5], [0.3, 0.7]]).view(1, 1, 4, 2)
    out = composite(feats, sigma, depths)

    z = depths.flatten().tolist()
    s = sigma.flatten().tolist()
    c = feats.view(4, 2)
    weights, T = [], 1.0
    for i in range(3):
        density = math.log1p(math.exp(0.5 * (s[i] + s[i + 1]) - 1.0))
        alpha = 1 - math.exp(-density * (z[i + 1] - z[i]))
        weights.append(alpha * T)
        T *= 1 - alpha + 1e-10
    w = torch.tensor(weights)
    mid_c = 0.5 * (c[:-1] + c[1:])
    mid_z = torch.tensor([0.5 * (z[i] + z[i + 1]) for i in range(3)])
    assert_close(out.weights.flatten(), w, rtol=1e-5, atol=1e-6, name="weights")
    assert_close(out.features.view(2), (w[:, None] * mid_c).sum(0), rtol=1e-5, atol=1e-6, name="features")
    depth = float((w * mid_z).sum() / w.sum())
    assert abs(float(out.depth) - min(max(depth, 2.3), 3.2)) < 1e-5


def test_published_depth_range_and_sample_counts():
    from next3d.config import RenderConfig
    from next3d.render.samplers import stratified_depths

    r = RenderConfig()
    assert (r.ray_start, r.ray_end, r.samples_per_ray, r.importance_samples, r.density_shift) == (2.25, 3.3, 48, 48, -1.0)
    d = stratified_depths(1, 1, 48, r.ray_start, r.ray_end, perturb=False).flatten()
    assert_close(d, torch.linspace(2.25, 3.3, 48), name="evenly spaced coarse depths")


# ----------------------------------------------------------------------------- cameras and planes


def test_orbit_camera_convention():
    """Design §3: cam2world OpenCV (x right, y down, z forward), radius 2.7 about (0, 0, 0.2),
    intrinsics fx = fy = 4.2647, cx = cy = 0.5; yaw > 0 shows the subject's left cheek (+x)."""
    from next3d.render.cameras import orbit_label, split_label

    c = orbit_label(torch.tensor([0.0, 0.4]), torch.tensor([0.0, 0.2]))
    c2w, intr = split_label(c)
    pivot = torch.tensor([0.0, 0.0, 0.2])
    pos = c2w[:, :3, 3]
    assert_close((pos - pivot).norm(dim=-1), torch.full((2,), 2.7), name="radius")
    assert_close(pos[0], torch.tensor([0.0, 0.0, 2.9]), atol=1e-5, name="frontal camera on +z")
    forward = c2w[:, :3, 2]
    assert_close(forward, -(pos - pivot) / 2.7, atol=1e-5, name="z axis looks at the pivot")
    assert float(pos[1, 0]) > 0.5 and float(pos[1, 1]) > 0.3  # yaw + -> +x side, pitch + -> from above
    assert float(c2w[0, 1, 1]) < -0.99  # camera y (down in the image) is world -y
    assert float(c2w[0, 0, 0]) > 0.99  # camera x (right in the image) is world +x: the subject's left
    assert_close(intr[0], torch.tensor([[4.2647, 0, 0.5], [0, 4.2647, 0.5], [0, 0, 1.0]]), atol=1e-4,
                 name="FFHQ intrinsics")


def test_top_plane_sees_the_head_from_above():
    """Design §1.5: the top plane (slot 1, XZ) rasterises the mesh seen from above (+y):
    the nearest surface is the crown, so the smallest depth is -(highest world y)."""
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.texture_planes import render_views
    from next3d.render.triplane_coords import flame_to_world

    flame = FLAME(load_flame_model(None))
    with torch.no_grad():
        verts = flame().vertices
    texture = torch.zeros(1, 2, 8, 8)
    out = render_views(verts, flame.faces, flame.uv_coords, flame.uv_faces, None, None, texture, 64, views=("top",))
    world = flame_to_world(verts[0])
    covered = torch.isfinite(out.depth)
    assert covered.any()
    nearest = float(out.depth[covered].min())
    assert abs(nearest - (-float(world[:, 1].max()))) < 0.02, (nearest, float(world[:, 1].max()))


# ----------------------------------------------------------------------------- FLAME


def _model_with_posedirs():
    from next3d.flame import load_flame_model

    data = load_flame_model(None)
    rng = np.random.default_rng(0)
    posedirs = (rng.standard_normal(data.posedirs.shape) * 0.01).astype(np.float32)
    return dataclasses.replace(data, posedirs=posedirs)


def _rodrigues_x(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=np.float64)


def test_pose_correctives_are_added():
    """FLAME/SMPL: v_posed = v_shaped + posedirs · (R_j - I) over joints 1..4. With only the
    jaw rotated, the correctives move vertex i by (Σ_{j≠jaw} w_ij I + w_i,jaw R_jaw) offset_i."""
    from next3d.flame import FLAME

    data = _model_with_posedirs()
    zero = dataclasses.replace(data, posedirs=np.zeros_like(data.posedirs))
    theta = 0.3
    jaw = torch.tensor([[theta, 0.0, 0.0]])
    with torch.no_grad():
        with_c = FLAME(data)(jaw=jaw).vertices[0].double().numpy()
        without = FLAME(zero)(jaw=jaw).vertices[0].double().numpy()
    r_jaw = _rodrigues_x(theta)
    feature = np.zeros((4, 3, 3))
    feature[1] = r_jaw - np.eye(3)  # joints neck, jaw, left eye, right eye
    offsets = np.einsum("vkp,p->vk", data.posedirs.astype(np.float64), feature.reshape(-1))
    w = data.weights.astype(np.float64)
    moved = (1 - w[:, 2:3]) * offsets + w[:, 2:3] * offsets @ r_jaw.T
    np.testing.assert_allclose(with_c - without, moved, atol=2e-6)
    assert np.abs(moved).max() > 1e-3  # the test can see the correctives


def test_negative_yaw_uses_rows_39_minus_yaw_of_the_contour_table():
    """DECA: yaw in degrees, rounded, clamped to ±39; row yaw for yaw >= 0, row 39 - yaw
    (40..78) for yaw < 0."""
    from next3d.flame.landmarks import yaw_bins

    def rot_y(deg):
        a = math.radians(deg)
        return torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])

    degs = [0, 10, 38.6, 50, -1, -10, -39, -80]
    got = yaw_bins(torch.stack([rot_y(d) for d in degs])).tolist()
    assert got == [0, 10, 39, 39, 40, 49, 78, 78]
    bad = torch.full((1, 3, 3), float("nan"))
    assert 0 <= int(yaw_bins(bad)) < 79  # never an index outside the table


# ----------------------------------------------------------------------------- ops


def test_upfirdn2d_is_a_true_convolution_and_flip_filter_correlates():
    """upfirdn2d convolves (the filter is flipped before torch's correlation) unless
    flip_filter=True; an asymmetric filter and an impulse show which."""
    from torch_utils.ops import upfirdn2d

    x = torch.zeros(1, 1, 1, 8)
    x[..., 3] = 1.0
    f = torch.tensor([[1.0, 2.0, 4.0]])
    conv = upfirdn2d.upfirdn2d(x, f, padding=[1, 1, 0, 0], impl="ref").flatten()
    corr = upfirdn2d.upfirdn2d(x, f, padding=[1, 1, 0, 0], flip_filter=True, impl="ref").flatten()
    assert conv.tolist() == [0, 0, 1, 2, 4, 0, 0, 0]
    assert corr.tolist() == [0, 0, 4, 2, 1, 0, 0, 0]
    filt = upfirdn2d.setup_filter([1, 2, 4], normalize=False, separable=True)
    y = upfirdn2d.filter2d(x.expand(1, 1, 3, 8).contiguous(), filt, impl="ref")[0, 0, 1]
    assert y.tolist() == [0, 0, 7, 14, 28, 0, 0, 0]  # rows sum to 7 (separable), columns convolve


# ----------------------------------------------------------------------------- checkpoints and pickles


def test_checkpoint_tensor_of_the_wrong_dtype_is_refused(tmp_path):
    from next3d.checkpoint import CheckpointError, load_weights

    module = torch.nn.Linear(2, 2)
    sd = {k: v.double() for k, v in module.state_dict().items()}
    with pytest.raises(CheckpointError, match="dtype mismatch .*float64 vs model float32"):
        load_weights(module, sd, "test weights")
    sd = {k: v.clone() for k, v in module.state_dict().items()}
    sd["weight"][0, 0] = float("nan")
    with pytest.raises(CheckpointError, match="non-finite"):
        load_weights(module, sd, "test weights")


def test_published_storage_bytes_are_read_weights_only(tmp_path):
    """The storage bytes inside a published pickle go through torch.load(weights_only=True):
    a payload hidden there is refused and never runs."""
    from hardening.corpus import evil_pickle_bytes
    from next3d.convert.legacy_pickle import _load_storage_from_bytes
    from next3d.safe_pickle import UnsafePickleError

    marker = tmp_path / "ran"
    with pytest.raises(UnsafePickleError):
        _load_storage_from_bytes(evil_pickle_bytes(marker))
    assert not marker.exists()


@torch.no_grad()
def test_blending_is_dynamic_alpha_plus_static_one_minus_alpha(tiny_g):
    """Design §1.7: planes = dynamic * alpha + static * (1 - alpha), where dynamic's front plane
    is the mouth-pasted, neurally blended front plane and static = backbone planes reshaped
    (B, 3, C, P, P) in slot order."""
    g = tiny_g
    ws = _distinct_ws(g)
    seen = {}
    hooks = [
        g.texture_planes.register_forward_hook(lambda m, a, out: seen.__setitem__("dyn", out)),
        g.neural_blending.synthesis.register_forward_hook(lambda m, a, out: seen.__setitem__("front", out.clone())),
        g.backbone.synthesis.register_forward_hook(lambda m, a, out: seen.__setitem__("static", out.clone())),
    ]
    try:
        planes = g.synthesize_planes(ws, {"jaw": torch.tensor([[0.3, 0.0, 0.0]])}, noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    c, p = g.config.plane_channels, g.config.static.resolution
    alpha = seen["dyn"].alphas
    dynamic = torch.cat([seen["front"][:, None], seen["dyn"].planes[:, 1:]], dim=1)
    static = seen["static"].reshape(1, 3, c, p, p)
    assert 0.05 < float(alpha.mean()) < 0.95  # both parts take part
    assert_close(planes, dynamic * alpha + static * (1 - alpha), rtol=1e-5, atol=1e-6, name="blended planes")


def test_noise_modes_const_random_none():
    """StyleGAN2 noise: 'none' adds nothing, 'const' adds noise_const * strength, 'random'
    adds N(0, 1) (B, 1, r, r) * strength, all before bias and activation."""
    from next3d.networks.synthesis import SynthesisLayer

    torch.manual_seed(0)
    layer = SynthesisLayer(3, 2, w_dim=4, resolution=4)
    with torch.no_grad():
        layer.noise_strength.fill_(0.7)
    x, w = torch.randn(2, 3, 4, 4), torch.randn(2, 4)

    def pre_activation(y):  # invert lrelu(., 0.2) * sqrt(2) and the bias
        y = y / math.sqrt(2)
        return torch.where(y > 0, y, y / 0.2) - layer.bias[None, :, None, None]

    none = pre_activation(layer(x, w, noise_mode="none"))
    const = pre_activation(layer(x, w, noise_mode="const"))
    assert_close(const - none, (layer.noise_const * 0.7).expand_as(none), rtol=1e-4, atol=1e-5, name="const noise")
    torch.manual_seed(5)
    rand = pre_activation(layer(x, w, noise_mode="random"))
    torch.manual_seed(5)
    want = torch.randn(2, 1, 4, 4) * 0.7
    assert_close(rand - none, want.expand_as(none), rtol=1e-4, atol=1e-5, name="random noise")
