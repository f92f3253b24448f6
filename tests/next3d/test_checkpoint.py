import json
import zipfile

import pytest
import torch

from next3d.checkpoint import (CheckpointError, build_discriminator, build_generator, load_checkpoint, load_weights,
                               save_checkpoint)
from next3d.presets import get_discriminator_preset, get_preset


class TinyNet(torch.nn.Module):
    """Stand-in for the generator: built from a config, a parameter, a buffer, a submodule."""

    def __init__(self, config=None, width=4):
        super().__init__()
        self.config = config
        self.fc = torch.nn.Linear(3, width)
        self.scale = torch.nn.Parameter(torch.randn(width))
        self.register_buffer("w_avg", torch.randn(width))
        self.register_buffer("steps", torch.tensor(7, dtype=torch.int64))


@pytest.fixture
def cfg():
    return get_preset("tiny")


def test_round_trip_identical_tensors(tmp_path, cfg):
    G, G_ema = TinyNet(cfg), TinyNet(cfg)
    D = TinyNet(get_discriminator_preset("tiny"), width=2)
    path = save_checkpoint(tmp_path / "run" / "net.n3d", config=cfg, G=G, G_ema=G_ema, D=D,
                           extra={"kimg": 12.5, "note": "test"})
    assert zipfile.is_zipfile(path)
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg and ckpt.d_config == get_discriminator_preset("tiny")
    assert ckpt.meta["kind"] == "training" and ckpt.meta["extra"] == {"kimg": 12.5, "note": "test"}
    assert ckpt.meta["format_version"] == 1
    for name, net in (("G", G), ("G_ema", G_ema), ("D", D)):
        sd = net.state_dict()
        assert list(ckpt.state_dicts[name]) == list(sd)
        for key, value in sd.items():
            assert ckpt.state_dicts[name][key].dtype == value.dtype
            assert torch.equal(ckpt.state_dicts[name][key], value), key
    only = load_checkpoint(path, groups=["G_ema"])
    assert list(only.state_dicts) == ["G_ema"]
    # No pickles anywhere: every member is JSON or safetensors.
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["D.safetensors", "G.safetensors", "G_ema.safetensors", "config.json"]
        header = json.loads(zf.read("config.json"))
    assert header["format"] == "next3d-checkpoint" and header["generator"]["render"]["neural_resolution"] == 32
    assert header["groups"]["G"]["tensors"]["steps"] == ["int64", []]


def test_build_generator_loads_weights(tmp_path, cfg):
    G_ema = TinyNet(cfg)
    path = save_checkpoint(tmp_path / "g.n3d", config=cfg, G_ema=G_ema)
    built = build_generator(path, factory=TinyNet)
    assert built.config == cfg and not built.training
    assert torch.equal(built.scale, G_ema.scale) and torch.equal(built.fc.weight, G_ema.fc.weight)
    fresh = build_generator(cfg, factory=TinyNet, seed=3)
    again = build_generator(cfg, factory=TinyNet, seed=3)
    assert torch.equal(fresh.scale, again.scale) and not torch.equal(fresh.scale, G_ema.scale)


def test_fresh_modules_are_initialised_not_missing(tmp_path, cfg):
    sd = {k: v for k, v in TinyNet(cfg).state_dict().items() if not k.startswith("fc.")}
    path = save_checkpoint(tmp_path / "p.n3d", config=cfg, G=sd, fresh_modules={"G": ["fc."]})
    with pytest.warns(UserWarning, match="fc. not in the checkpoint; initialised freshly"):
        built = build_generator(path, factory=TinyNet)
    assert torch.equal(built.scale, sd["scale"])
    path2 = save_checkpoint(tmp_path / "q.n3d", config=cfg, G=sd)
    with pytest.raises(CheckpointError, match=r"missing tensors fc.weight, fc.bias"):
        build_generator(path2, factory=TinyNet)


def test_mismatches_are_named(cfg):
    net = TinyNet(cfg)
    sd = dict(net.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected tensors extra.weight"):
        load_weights(net, sd)
    sd = dict(net.state_dict())
    sd["scale"] = torch.zeros(5)
    with pytest.raises(CheckpointError, match=r"shape mismatch scale \(5,\) vs model \(4,\)"):
        load_weights(net, sd)


def test_corrupt_and_truncated_files(tmp_path, cfg):
    path = save_checkpoint(tmp_path / "g.n3d", config=cfg, G=TinyNet(cfg, width=64))
    data = path.read_bytes()
    truncated = tmp_path / "truncated.n3d"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated.n3d: corrupt, truncated or not a next3d checkpoint"):
        load_checkpoint(truncated)
    # Flip bytes inside the stored weights: the zip CRC catches it.
    corrupt = tmp_path / "corrupt.n3d"
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("G.safetensors")
    pos = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    corrupt.write_bytes(data[:pos] + bytes(b ^ 0xFF for b in data[pos:pos + 16]) + data[pos + 16:])
    with pytest.raises(CheckpointError, match=r"corrupt.n3d: member 'G.safetensors' is corrupt"):
        load_checkpoint(corrupt)
    pickled = tmp_path / "net.pkl"
    pickled.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(CheckpointError, match="looks like a pickle.*next3d convert"):
        load_checkpoint(pickled)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.n3d")


def _rewrite_header(path, out, edit):
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json":
                header = json.loads(data)
                edit(header)
                data = json.dumps(header)
            dst.writestr(name, data)
    return out


def test_version_and_index_checks(tmp_path, cfg):
    path = save_checkpoint(tmp_path / "g.n3d", config=cfg, G=TinyNet(cfg))
    newer = _rewrite_header(path, tmp_path / "newer.n3d", lambda h: h.update(format_version=99))
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_checkpoint(newer)
    other = _rewrite_header(path, tmp_path / "other.n3d", lambda h: h.update(format="something"))
    with pytest.raises(CheckpointError, match="does not describe a next3d checkpoint"):
        load_checkpoint(other)
    lying = _rewrite_header(path, tmp_path / "lying.n3d",
                            lambda h: h["groups"]["G"]["tensors"].update(scale=["float32", [5]]))
    with pytest.raises(CheckpointError, match=r"tensor G\['scale'\] is float32 \(4,\), the index says float32 \(5,\)"):
        load_checkpoint(lying)
    bad_cfg = _rewrite_header(path, tmp_path / "badcfg.n3d", lambda h: h["generator"].update(zdim=3))
    with pytest.raises(CheckpointError, match="invalid configuration: unknown config key 'zdim'"):
        load_checkpoint(bad_cfg)
    with pytest.raises(CheckpointError, match="no tensor group 'D'"):
        load_checkpoint(path, groups=["D"])
    with pytest.raises(CheckpointError, match="holds no discriminator"):
        build_discriminator(path, factory=TinyNet)


def test_folder_layout_and_save_errors(tmp_path, cfg):
    path = save_checkpoint(tmp_path / "g.n3d", config=cfg, G=TinyNet(cfg))
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(path) as zf:
        zf.extractall(folder)
    assert torch.equal(load_checkpoint(folder).state_dicts["G"]["w_avg"], load_checkpoint(path).state_dicts["G"]["w_avg"])
    with pytest.raises(ValueError, match="nothing to save"):
        save_checkpoint(tmp_path / "x.n3d", config=cfg)
    with pytest.raises(ValueError, match="extra must be JSON-serialisable"):
        save_checkpoint(tmp_path / "x.n3d", config=cfg, G=TinyNet(cfg), extra={"t": torch.zeros(1)})
    with pytest.raises(ValueError, match="D was given without its DiscriminatorConfig"):
        save_checkpoint(tmp_path / "x.n3d", config=cfg, D=TinyNet(None))
    assert not (tmp_path / "x.n3d").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind


def test_discriminator_round_trip_with_the_real_network(tmp_path, cfg):
    d_cfg = get_discriminator_preset("tiny")
    D = build_discriminator(d_cfg, seed=1)
    assert D.img_channels == d_cfg.in_channels
    assert D.state_dict()["b64.fromrgb.weight"].shape[1] == 6
    path = save_checkpoint(tmp_path / "d.n3d", config=cfg, D=D, d_config=d_cfg)
    D2 = build_discriminator(path, seed=2)
    for key, value in D.state_dict().items():
        assert torch.equal(D2.state_dict()[key], value), key
    img = torch.randn(2, 3, 64, 64)
    raw = torch.randn(2, 3, 32, 32)
    c = torch.randn(2, 25)
    assert torch.equal(D(img, raw, c), D2(img, raw, c))


class HeadNet(TinyNet):
    """A stand-in generator with a head model inside (module.flame faces / UVs)."""

    def __init__(self, config=None):
        super().__init__(config)
        self.flame = torch.nn.Module()
        self.flame.faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
        self.flame.uv_faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
        self.flame.uv_coords = torch.rand(4, 2)


def test_head_topology_is_checked_on_build(tmp_path, cfg):
    from next3d.checkpoint import built_head_topology
    from next3d.config import topology_hash

    own = topology_hash([[0, 1, 2], [0, 2, 3]], [[0, 1, 2], [0, 2, 3]], 4)
    assert built_head_topology(HeadNet()) == own and built_head_topology(TinyNet()) is None
    good = save_checkpoint(tmp_path / "good.n3d", config=cfg.replace(head_topology=own), G=HeadNet())
    assert isinstance(build_generator(good, factory=HeadNet), HeadNet)
    other = cfg.replace(head_model="flame", head_topology="sha256:1e10b6214dbd031d")
    bad = save_checkpoint(tmp_path / "bad.n3d", config=other, G=HeadNet())
    with pytest.raises(CheckpointError, match=r"head model mismatch: .*sha256:1e10b6214dbd031d.*set flame_dir"):
        build_generator(bad, factory=HeadNet)
