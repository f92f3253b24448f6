"""Module names and shapes match the published Next3D checkpoints (built on the meta device)."""

import ast

import torch

from next3d.networks.backbone import StyleGAN2Backbone
from next3d.networks.discriminator import DualDiscriminator
from next3d.networks.mapping import MappingNetwork
from next3d.networks.style_unet import blending_style_unet, mouth_style_unet
from next3d.networks.superresolution import SuperresolutionHybrid4X
from next3d.networks.synthesis import SynthesisNetwork


def _read_tsv(path):
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            name, shape = line.split("\t")
            out[name] = tuple(ast.literal_eval(shape))
    return out


def _compare(module, reference, prefix=""):
    ours = {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}
    ref = {k: v for k, v in reference.items() if k.startswith(prefix)}
    assert sorted(set(ref) - set(ours)) == [], "missing"
    assert sorted(set(ours) - set(ref)) == [], "unexpected"
    wrong = {k: (ours[k], ref[k]) for k in ref if ours[k] != ref[k]}
    assert wrong == {}
    assert list(ours) == list(ref)  # same order, too


def test_generator_backbones(reference_dir):
    ref = _read_tsv(reference_dir / "official_G_state_dict.tsv")
    for prefix, channels in [("backbone.", 96), ("texture_backbone.", 32)]:
        with torch.device("meta"):
            syn = SynthesisNetwork(w_dim=512, img_resolution=256, img_channels=channels)
            mapping = MappingNetwork(z_dim=512, c_dim=25, w_dim=512, num_ws=14, num_layers=2)
            full = StyleGAN2Backbone(512, 25, 512, img_resolution=256, img_channels=channels,
                                     mapping_kwargs=dict(num_layers=2))
        _compare(syn, ref, prefix + "synthesis.")
        _compare(mapping, ref, prefix + "mapping.")
        _compare(full, ref, prefix)
        assert syn.num_ws == 14
    n = sum(p.numel() for p in full.parameters())
    assert 28.7e6 < n < 28.9e6  # texture generator: 28.8 M parameters


def test_style_unets_and_superresolution(reference_dir):
    ref = _read_tsv(reference_dir / "official_G_state_dict.tsv")
    with torch.device("meta"):
        mouth = mouth_style_unet(mapping_kwargs=dict(num_layers=2))
        blend = blending_style_unet(mapping_kwargs=dict(num_layers=2))
        sr = SuperresolutionHybrid4X(channels=32, img_resolution=512, sr_num_fp16_res=4)
    _compare(mouth, ref, "mouth_backbone.")
    _compare(blend, ref, "neural_blending.")
    _compare(sr, ref, "superresolution.")
    counts = [sum(p.numel() for p in m.parameters()) / 1e6 for m in (mouth, blend, sr)]
    assert [round(x, 2) for x in counts] == [69.0, 44.33, 1.65]


def test_dual_discriminator(reference_dir):
    ref = _read_tsv(reference_dir / "official_D_state_dict.tsv")
    with torch.device("meta"):
        d = DualDiscriminator(c_dim=25, img_resolution=512, img_channels=3)
    _compare(d, ref)
    assert d.mapping.num_layers == 8 and d.cmap_dim == 512
