"""Pins of the generator's data path against the published Next3D code (review fixes).

Published facts (MrTornado24/Next3D, training_avatar_texture/triplane_next3d.py): the
backbone is built with `mapping_ws = 2 * texture_backbone.num_ws` and
`TriPlaneGenerator.mapping` calls only `backbone.mapping`, so one w (and one w_avg)
drives all 28 ws; `texture_backbone.mapping` is never run.
"""

import torch

from helpers import assert_close
from next3d.networks.generator import Next3DGenerator
from next3d.presets import get_preset
from next3d.render.cameras import orbit_label


def _g():
    # The tiny preset with 32² planes and texture on the built-in head.
    cfg = get_preset("tiny").replace(**{
        "channel_base": 256, "channel_max": 16, "texture.resolution": 32, "static.resolution": 32,
        "mouth.out_resolution": 16, "blending.final_size": 8, "superres.input_resolution": 8,
        "superres.out_resolution": 32, "render.neural_resolution": 8})
    torch.manual_seed(1)
    return Next3DGenerator(cfg).eval()


@torch.no_grad()
def test_one_mapping_network_drives_all_ws():
    g = _g()
    z = torch.randn(3, g.z_dim)
    c = orbit_label(torch.linspace(-0.3, 0.3, 3), torch.zeros(3))
    ws = g.mapping(z, c)
    assert ws.shape == (3, g.num_ws, g.w_dim) and g.num_ws == 2 * g.num_ws_eg3d
    w = g.backbone.mapping(z, c)[:, 0]  # (B, w_dim), the backbone's single w
    assert_close(ws, w[:, None].expand_as(ws), name="every ws is backbone.mapping's w")
    # The texture backbone's own mapping has no say.
    for p in g.texture_backbone.mapping.parameters():
        p.add_(torch.randn_like(p))
    assert_close(g.mapping(z, c), ws, name="texture_backbone.mapping unused")


@torch.no_grad()
def test_truncation_cutoff_counts_over_all_ws_with_backbone_w_avg():
    g = _g()
    g.backbone.mapping.w_avg.copy_(torch.randn(g.w_dim))
    g.texture_backbone.mapping.w_avg.copy_(torch.randn(g.w_dim))
    z = torch.randn(2, g.z_dim)
    c = orbit_label(torch.zeros(2), torch.zeros(2))
    free = g.mapping(z, c)
    cut = g.num_ws_eg3d
    ws = g.mapping(z, c, truncation_psi=0.5, truncation_cutoff=cut)
    w_avg = g.backbone.mapping.w_avg
    assert_close(ws[:, :cut], w_avg + 0.5 * (free[:, :cut] - w_avg), name="eg3d ws truncated to backbone w_avg")
    assert_close(ws[:, cut:], free[:, cut:], name="texture ws untouched by cutoff 14")
    full = g.mapping(z, c, truncation_psi=0.0)
    assert_close(full, w_avg.expand_as(full), name="psi 0, no cutoff: every ws is w_avg")


def test_update_emas_tracks_backbone_w_avg_only():
    g = _g()
    before_tex = g.texture_backbone.mapping.w_avg.clone()
    z = torch.randn(4, g.z_dim)
    c = orbit_label(torch.zeros(4), torch.zeros(4))
    with torch.no_grad():
        g.mapping(z, c, update_emas=True)
        w = g.backbone.mapping(z, c)[:, 0]
    beta = g.config.mapping.w_avg_beta
    assert_close(g.backbone.mapping.w_avg, (1 - beta) * w.mean(0), atol=1e-6, name="w_avg after one update")
    assert torch.equal(g.texture_backbone.mapping.w_avg, before_tex)
