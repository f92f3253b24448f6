import json

import pytest

from next3d.config import (ConfigError, DiscriminatorConfig, GeneratorConfig, RenderConfig, apply_overrides,
                           check_head_topology, topology_hash, topology_hash_from_obj)
from next3d.presets import PRESET_NAMES, get_discriminator_preset, get_preset


def test_defaults_are_the_published_sizes():
    cfg = get_preset("ffhq512")
    assert (cfg.texture.resolution, cfg.texture.channels) == (256, 32)
    assert (cfg.static.resolution, cfg.static.channels) == (256, 96)
    assert (cfg.mouth.crop_size, cfg.mouth.out_resolution) == (64, 256)
    assert cfg.render.neural_resolution == 64
    assert (cfg.render.samples_per_ray, cfg.render.importance_samples) == (48, 48)
    assert (cfg.render.ray_start, cfg.render.ray_end, cfg.render.box_warp) == (2.25, 3.3, 1.0)
    assert cfg.render.density_shift == -1.0 and cfg.render.white_back is False
    assert cfg.img_resolution == 512 and cfg.superres.channels == (256, 128)
    assert (cfg.decoder.hidden, cfg.decoder.features) == (64, 32)
    assert (cfg.channel_base, cfg.channel_max, cfg.mapping.num_layers) == (32768, 512, 2)
    assert get_discriminator_preset("ffhq512").in_channels == 6


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_json_round_trip_of_every_preset(name):
    for cfg, cls in ((get_preset(name), GeneratorConfig), (get_discriminator_preset(name), DiscriminatorConfig)):
        text = json.dumps(cfg.to_dict())
        back = cls.from_dict(json.loads(text))
        assert back == cfg
        assert back.to_dict() == cfg.to_dict()


def test_tiny_preset_is_small():
    cfg = get_preset("tiny")
    assert cfg.img_resolution == 64 and cfg.render.neural_resolution == 32
    assert cfg.texture.resolution == 64 and cfg.channel_max <= 64
    assert cfg.render.samples_per_ray + cfg.render.importance_samples <= 16
    assert get_preset("small").img_resolution == 128


def test_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match="unknown preset 'ffhq1024'.*ffhq512, small, tiny"):
        get_preset("ffhq1024")


def test_unknown_key_is_named_with_valid_keys():
    data = GeneratorConfig().to_dict()
    data["render"]["neural_res"] = 32
    with pytest.raises(ConfigError, match=r"unknown config key 'render.neural_res' \(valid keys of RenderConfig: "
                                          r"neural_resolution, samples_per_ray"):
        GeneratorConfig.from_dict(data)
    with pytest.raises(ConfigError, match="unknown config key 'zdim'"):
        GeneratorConfig.from_dict({"zdim": 3})


@pytest.mark.parametrize("data, message", [
    ({"z_dim": "512"}, "config key 'z_dim': expected int, got str"),
    ({"z_dim": True}, "config key 'z_dim': expected int, got bool"),
    ({"front_only_blending": 1}, "expected bool"),
    ({"render": {"avg_camera_pivot": [0, 0]}}, "'render.avg_camera_pivot': expected list of 3 float, got 2 values"),
    ({"superres": {"noise_mode": "loud"}}, "'superres.noise_mode': expected one of 'none', 'const', 'random'"),
    ({"render": 3}, "config key 'render': expected object"),
])
def test_wrong_types_are_rejected(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GeneratorConfig.from_dict(data)


def test_ints_become_floats_and_lists_tuples():
    cfg = GeneratorConfig.from_dict({"render": {"ray_start": 2, "avg_camera_pivot": [0, 0, 1]}})
    assert isinstance(cfg.render.ray_start, float) and cfg.render.avg_camera_pivot == (0.0, 0.0, 1.0)


def test_semantic_checks():
    with pytest.raises(ConfigError, match="static: channels must be 3 x texture.channels = 48"):
        GeneratorConfig().replace(**{"texture.channels": 16})
    with pytest.raises(ConfigError, match="RenderConfig.neural_resolution: must be a power of two"):
        RenderConfig(neural_resolution=48)
    with pytest.raises(ConfigError, match="out_resolution: must be 4 x input_resolution"):
        GeneratorConfig().replace(**{"superres.out_resolution": 1024})
    with pytest.raises(ConfigError, match="samples_per_ray: needs at least 4 coarse samples"):
        RenderConfig(samples_per_ray=3, importance_samples=8)
    assert RenderConfig(samples_per_ray=3, importance_samples=0).samples_per_ray == 3


def test_replace_with_dotted_keys():
    cfg = get_preset("ffhq512")
    new = cfg.replace(**{"render.neural_resolution": 128, "front_only_blending": True, "superres.channels": [64, 32]})
    assert new.render.neural_resolution == 128 and new.front_only_blending and new.superres.channels == (64, 32)
    assert cfg.render.neural_resolution == 64  # frozen original unchanged
    assert new.render.ray_end == cfg.render.ray_end
    with pytest.raises(ConfigError, match="unknown config key 'render.nope'"):
        cfg.replace(**{"render.nope": 1})
    with pytest.raises(ConfigError, match="config key 'render.ray_end': expected float, got str"):
        cfg.replace(**{"render.ray_end": "far"})
    with pytest.raises(ConfigError, match="'z_dim' is a int, not a section"):
        cfg.replace(**{"z_dim.x": 1})


def test_command_line_overrides():
    cfg = apply_overrides(get_preset("tiny"), [
        "render.neural_resolution=16", "front_only_blending=true", "conv_clamp=256", "superres.channels=32,16",
        "flame_dir=/data/flame", "render.ray_end=3.5"])
    assert cfg.render.neural_resolution == 16 and cfg.front_only_blending is True and cfg.conv_clamp == 256
    assert cfg.superres.channels == (32, 16) and cfg.flame_dir == "/data/flame" and cfg.render.ray_end == 3.5
    assert apply_overrides(cfg, ["conv_clamp=null"]).conv_clamp is None
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(cfg, ["render.neural_resolution"])
    with pytest.raises(ConfigError, match="unknown config key 'rendr.x'"):
        apply_overrides(cfg, ["rendr.x=1"])
    with pytest.raises(ConfigError, match="expected true or false, got 'maybe'"):
        apply_overrides(cfg, ["front_only_blending=maybe"])


def test_topology_hash(tmp_path):
    obj = tmp_path / "quad.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
                   "f 1/1 2/2 3/3\nf 1/1 3/3 4/4\n")
    h = topology_hash_from_obj(obj)
    assert h == topology_hash([[0, 1, 2], [0, 2, 3]], [[0, 1, 2], [0, 2, 3]], 4)
    assert h.startswith("sha256:") and len(h) == 7 + 16
    assert h != topology_hash([[0, 1, 2], [0, 3, 2]], [[0, 1, 2], [0, 2, 3]], 4)
    cfg = GeneratorConfig(head_model="flame", head_topology=h)
    check_head_topology(cfg, h)
    with pytest.raises(ValueError, match="head model mismatch"):
        check_head_topology(cfg, "sha256:0000000000000000")
    with pytest.raises(ConfigError, match="head_model: must be 'builtin' or 'flame'"):
        GeneratorConfig(head_model="smpl")


def test_topology_hash_of_deca_template(flame_deca_dir):
    h = topology_hash_from_obj(flame_deca_dir / "head_template.obj")
    assert h.startswith("sha256:")
    assert h == topology_hash_from_obj(flame_deca_dir / "head_template.obj")
