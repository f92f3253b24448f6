import json
import os

import pytest
import torch
from click.testing import CliRunner

from next3d.checkpoint import build_generator, load_checkpoint
from next3d.cli import main
from next3d.config import topology_hash
from next3d.convert.legacy_pickle import load_published
from next3d.convert.name_map import (TOPOLOGY_BUFFERS, ConvertError, detect_flavour, generator_config_from_published,
                                     map_generator_weights)
from next3d.convert.published import convert_published


@pytest.fixture
def next3d_pkl(pub, tmp_path, marker):
    path = tmp_path / "next3d_tiny.pkl"
    path.write_bytes(pub.published_pickle_bytes(marker))
    return path


@pytest.fixture
def eg3d_pkl(pub, tmp_path, marker):
    path = tmp_path / "eg3d_tiny.pkl"
    path.write_bytes(pub.published_pickle_bytes(marker, eg3d=True))
    return path


class ShapedNet(torch.nn.Module):
    """Factory stand-in for the generator: holds exactly the given names and shapes."""

    def __init__(self, shapes):
        super().__init__()
        self._names = {}
        for i, (name, shape) in enumerate(shapes.items()):
            self.register_buffer(f"t{i}", torch.zeros(shape))
            self._names[name] = f"t{i}"

    def state_dict(self, *args, **kwargs):
        own = super().state_dict()
        return {name: own[buf] for name, buf in self._names.items()}

    def load_state_dict(self, sd, strict=True):
        for name, value in sd.items():
            getattr(self, self._names[name]).copy_(value)


def test_config_from_published_kwargs(next3d_pkl):
    G = load_published(next3d_pkl)["G_ema"]
    cfg, notes = generator_config_from_published(G, "next3d")
    assert (cfg.z_dim, cfg.w_dim, cfg.c_dim, cfg.channel_base, cfg.channel_max) == (16, 16, 25, 256, 8)
    assert cfg.mapping.num_layers == 1
    assert (cfg.texture.resolution, cfg.texture.channels) == (8, 4)
    assert (cfg.static.resolution, cfg.static.channels) == (16, 12)
    assert (cfg.mouth.crop_size, cfg.mouth.final_size, cfg.mouth.out_resolution) == (8, 4, 16)
    assert cfg.blending.final_size == 4
    assert (cfg.render.neural_resolution, cfg.render.samples_per_ray, cfg.render.importance_samples) == (16, 12, 4)
    assert cfg.render.avg_camera_pivot == (0.0, 0.0, 0.2)
    assert (cfg.superres.input_resolution, cfg.superres.out_resolution, cfg.superres.channels) == (8, 32, (8, 6))
    assert (cfg.decoder.hidden, cfg.decoder.features) == (8, 4)
    assert cfg.front_only_blending is True and cfg.head_model == "flame"
    assert cfg.head_topology == topology_hash([[0, 1, 2], [0, 2, 3]], [[0, 1, 2], [0, 2, 3]], 4)
    assert any("head topology" in n for n in notes)


def test_weights_map_by_name(next3d_pkl):
    G = load_published(next3d_pkl)["G_ema"]
    assert detect_flavour(G.state_dict) == "next3d"
    mapped = map_generator_weights(G.state_dict, "next3d")
    assert set(mapped.dropped) == set(TOPOLOGY_BUFFERS)
    assert set(mapped.tensors) == set(G.state_dict) - set(TOPOLOGY_BUFFERS)
    for name, tensor in mapped.tensors.items():
        assert torch.equal(tensor, G.state_dict[name])
    assert mapped.fresh_modules == []


def test_convert_writes_a_checkpoint(next3d_pkl, tmp_path):
    out = tmp_path / "out.n3d"
    report = convert_published(next3d_pkl, out, training_nets=True, verify=False,
                               overrides=["render.neural_resolution=32"])
    assert report.out == out and report.flavour == "next3d"
    ckpt = load_checkpoint(out)
    assert set(ckpt.state_dicts) == {"G_ema", "G", "D"}
    assert ckpt.config.render.neural_resolution == 32 and ckpt.config.static.channels == 12
    assert ckpt.d_config.img_resolution == 32 and ckpt.d_config.mesh_channels == 0
    assert ckpt.d_config.mbstd_group_size == 2 and ckpt.d_config.mapping_layers == 1
    src = load_published(next3d_pkl)
    for name in ("G_ema", "G", "D"):
        expected = {k: v for k, v in src[name].state_dict.items() if k not in TOPOLOGY_BUFFERS}
        assert list(ckpt.state_dicts[name]) == list(expected)
        for key, value in expected.items():
            assert torch.equal(ckpt.state_dicts[name][key], value), (name, key)
    info = ckpt.meta["extra"]["converted_from"]
    assert info["file"] == "next3d_tiny.pkl" and info["flavour"] == "next3d" and len(info["sha256"]) == 64
    assert sorted(info["dropped"]) == sorted(TOPOLOGY_BUFFERS)
    assert info["training_set_kwargs"]["resolution"] == 32


def test_verification_against_the_generator(next3d_pkl, tmp_path):
    G = load_published(next3d_pkl)["G_ema"]
    shapes = {k: tuple(v.shape) for k, v in G.state_dict.items() if k not in TOPOLOGY_BUFFERS}
    out = tmp_path / "v.n3d"
    report = convert_published(next3d_pkl, out, factory=lambda cfg: ShapedNet(shapes))
    assert report.verified
    built = build_generator(out, factory=lambda cfg: ShapedNet(shapes))
    assert torch.equal(built.state_dict()["decoder.net.0.weight"], G.state_dict["decoder.net.0.weight"])
    def with_other_head(cfg):
        net = ShapedNet(shapes)
        net.flame = torch.nn.Module()
        net.flame.faces, net.flame.uv_faces = torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2]])
        net.flame.uv_coords = torch.rand(3, 2)
        return net

    report = convert_published(next3d_pkl, None, factory=with_other_head)
    assert any("set flame_dir" in n and report.config.head_topology in n for n in report.notes)
    wrong = dict(shapes, **{"decoder.net.0.weight": (9, 4)})
    with pytest.raises(ConvertError, match=r"shape mismatch decoder.net.0.weight \(8, 4\) vs model \(9, 4\)"):
        convert_published(next3d_pkl, None, factory=lambda cfg: ShapedNet(wrong))
    fewer = {k: v for k, v in shapes.items() if not k.startswith("neural_blending.")}
    with pytest.raises(ConvertError, match="unexpected tensors neural_blending.synthesis"):
        convert_published(next3d_pkl, None, factory=lambda cfg: ShapedNet(fewer))


def test_eg3d_initialises_only_the_static_parts(eg3d_pkl, next3d_pkl, tmp_path):
    G = load_published(eg3d_pkl)["G_ema"]
    assert detect_flavour(G.state_dict) == "eg3d"
    out = tmp_path / "eg3d.n3d"
    report = convert_published(eg3d_pkl, out, verify=False)
    assert report.flavour == "eg3d"
    assert report.fresh_modules == ["texture_backbone.", "mouth_backbone.", "neural_blending."]
    assert any("freshly initialised" in n and "texture_backbone" in n for n in report.notes)
    ckpt = load_checkpoint(out)
    assert {k.split(".")[0] for k in ckpt.state_dicts["G_ema"]} == {"backbone", "superresolution", "decoder"}
    assert ckpt.meta["fresh_modules"]["G_ema"] == report.fresh_modules
    assert ckpt.config.head_topology is None and ckpt.config.texture.channels == 4
    # A Next3D pickle forced through --eg3d keeps only the EG3D networks.
    forced = convert_published(next3d_pkl, None, flavour="eg3d", verify=False)
    assert "texture_backbone.synthesis.b4.const" in forced.dropped
    with pytest.raises(ConvertError, match="is an EG3D generator"):
        convert_published(eg3d_pkl, None, flavour="next3d", verify=False)


def test_cli_convert(next3d_pkl, eg3d_pkl, tmp_path, marker):
    out = tmp_path / "cli.n3d"
    runner = CliRunner()
    res = runner.invoke(main, ["convert", str(next3d_pkl), str(out), "--no-verify"])
    assert res.exit_code == 0, res.output
    assert "TriPlaneGenerator" in res.output and "dropped 6 published tensors" in res.output
    assert f"wrote {out}" in res.output
    assert load_checkpoint(out).config.front_only_blending is True
    res = runner.invoke(main, ["convert", str(next3d_pkl), str(out), "--no-verify"])
    assert res.exit_code != 0 and "exists; pass --force" in res.output
    res = runner.invoke(main, ["convert", str(next3d_pkl), str(out), "--no-verify", "--force",
                               "--all-planes-blending", "--set", "render.samples_per_ray=6"])
    assert res.exit_code == 0, res.output
    cfg = load_checkpoint(out).config
    assert cfg.front_only_blending is False and cfg.render.samples_per_ray == 6
    res = runner.invoke(main, ["convert", str(eg3d_pkl), str(tmp_path / "dry.n3d"), "--no-verify", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "freshly initialised" in res.output and not (tmp_path / "dry.n3d").exists()
    assert json.loads(res.output[res.output.index("{"):])["static"]["channels"] == 12
    res = runner.invoke(main, ["convert", str(next3d_pkl), str(tmp_path / "x.n3d"), "--no-verify", "--set", "rendr=1"])
    assert res.exit_code != 0 and "unknown config key 'rendr'" in res.output


def test_cli_refuses_malicious_pickle(pub, tmp_path, marker):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pub.published_pickle_bytes(marker, extra={"x": Payload()}))
    res = CliRunner().invoke(main, ["convert", str(evil), str(tmp_path / "e.n3d")])
    assert res.exit_code != 0
    assert "refused" in res.output and f"'{os.system.__module__}.system'" in res.output
    assert not (tmp_path / "e.n3d").exists()
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pub.published_pickle_bytes(marker)[:5000])
    res = CliRunner().invoke(main, ["convert", str(cut), str(tmp_path / "c.n3d")])
    assert res.exit_code != 0 and "cut.pkl: not a readable pickle" in res.output


def _published_shapes(name):
    from helpers import SHARED

    path = SHARED / "reference" / name
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    shapes = {}
    for line in path.read_text().splitlines():
        key, shape = line.split("\t")
        shapes[key] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
    return shapes


def test_published_names_give_the_ffhq512_config(pub):
    """The real published G's names and shapes (reference TSV, meta tensors) map to ffhq512."""
    from next3d.convert.legacy_pickle import PersistentRecord, PublishedNetwork
    from next3d.presets import get_preset

    shapes = _published_shapes("official_G_state_dict.tsv")
    sd = {k: (torch.zeros(s, dtype=torch.int64) if k in ("faces", "uvfaces") else torch.empty(s, device="meta"))
          for k, s in shapes.items()}
    rk = dict(pub.rendering_kwargs, depth_resolution=48, depth_resolution_importance=48,
              image_resolution=512)
    kwargs = dict(z_dim=512, c_dim=25, w_dim=512, img_resolution=512, img_channels=3, sr_num_fp16_res=4,
                  mapping_kwargs={"num_layers": 2}, rendering_kwargs=rk, channel_base=32768, channel_max=512,
                  num_fp16_res=0, conv_clamp=None)
    state = {"neural_rendering_resolution": 64, "_modules": {
        "mouth_backbone": PersistentRecord("Generator", (), dict(in_size=64, final_size=4, img_resolution=256), {}),
        "neural_blending": PersistentRecord("Generator", (), dict(in_size=256, final_size=32, img_resolution=256), {})}}
    G = PublishedNetwork("G_ema", "TriPlaneGenerator", kwargs, sd, PersistentRecord("TriPlaneGenerator", (), kwargs, state))
    assert detect_flavour(sd) == "next3d"
    cfg, _ = generator_config_from_published(G, "next3d", front_only_blending=False)
    assert cfg.replace(head_model="builtin", head_topology=None) == get_preset("ffhq512")
    mapped = map_generator_weights(sd, "next3d")
    assert len(mapped.tensors) == len(shapes) - 6 and set(mapped.dropped) == set(TOPOLOGY_BUFFERS)
    counts = {}
    for key, t in mapped.tensors.items():
        if key.rsplit(".", 1)[-1] in ("noise_const", "resample_filter", "w_avg"):
            continue  # buffers; the design's counts are parameters
        counts[key.split(".")[0]] = counts.get(key.split(".")[0], 0) + t.numel()
    # design.md: texture 28.8 M, static 29.0 M, mouth 69.0 M, blending 44.3 M, SR 1.65 M, decoder 4.3 K.
    assert abs(counts["decoder"] - 4.3e3) < 0.1e3 and abs(counts["superresolution"] - 1.65e6) < 0.1e6
    assert abs(counts["texture_backbone"] - 28.8e6) < 0.5e6 and abs(counts["backbone"] - 29.0e6) < 0.5e6
    assert abs(counts["mouth_backbone"] - 69.0e6) < 1.5e6 and abs(counts["neural_blending"] - 44.3e6) < 1.5e6


def test_round_trip_through_the_real_generator(pub, tmp_path, marker):
    """A published-format pickle of the project's own tiny generator converts back to the
    tiny preset, verifies against the real generator and loads with identical tensors."""
    pytest.importorskip("next3d.networks.generator")
    from next3d.presets import get_preset

    cfg = get_preset("tiny")
    G = build_generator(cfg, seed=4)
    tensors = dict(G.state_dict())
    # Topology buffers of the head model the generator uses, as the published G carries them.
    tensors.update({k: v for k, v in pub.tiny_next3d_tensors().items() if k in TOPOLOGY_BUFFERS})
    tensors.update(faces=G.flame.faces[None], uvfaces=G.flame.uv_faces[None], raw_uvcoords=G.flame.uv_coords[None])
    rk = dict(pub.rendering_kwargs, depth_resolution=8, depth_resolution_importance=8,
              image_resolution=64)
    kwargs = dict(z_dim=32, c_dim=25, w_dim=32, img_resolution=64, img_channels=3, sr_num_fp16_res=0,
                  mapping_kwargs=pub.EasyDict(num_layers=2), rendering_kwargs=rk, channel_base=1024, channel_max=32,
                  num_fp16_res=0, conv_clamp=None, topology_path="head_template.obj")
    children = {"mouth_backbone": dict(in_size=16, final_size=4, img_resolution=32),
                "neural_blending": dict(in_size=64, final_size=16, img_resolution=64)}
    with pub.fake_training_modules():
        net = pub.build_network(
            "TriPlaneGenerator", tensors, pub.module_src(marker), kwargs, children,
            attributes={"neural_rendering_resolution": 32})
        import pickle

        (tmp_path / "own.pkl").write_bytes(pickle.dumps({"G_ema": net}))
    out = tmp_path / "own.n3d"
    report = convert_published(tmp_path / "own.pkl", out)
    assert report.verified
    ckpt = load_checkpoint(out)
    assert ckpt.config.replace(head_model="builtin", head_topology=None, front_only_blending=False) == cfg
    from next3d.checkpoint import built_head_topology

    assert ckpt.config.head_topology == built_head_topology(G)
    G2 = build_generator(out, seed=9)
    for key, value in G.state_dict().items():
        assert torch.equal(G2.state_dict()[key], value), key
