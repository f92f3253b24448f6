"""Sanity bounds of the configuration: absurd sizes are refused before anything is built."""

import pytest

from next3d.config import ConfigError, GeneratorConfig, estimate_generator_parameters
from next3d.presets import get_preset


@pytest.mark.parametrize("key,value,needle", [
    ("render.neural_resolution", 1 << 17, "neural_resolution: must be at most 1024"),
    ("render.samples_per_ray", 10 ** 6, "samples_per_ray: must be at most 1024"),
    ("render.importance_samples", 10 ** 6, "importance_samples: must be at most 1024"),
    ("static.resolution", 1 << 14, "resolution: must be at most 4096"),
    ("texture.resolution", 1 << 14, "resolution: must be at most 4096"),
    ("superres.input_resolution", 2048, "input_resolution: must be at most 1024"),
    ("z_dim", 10 ** 6, "z_dim: must be at most 8192"),
    ("channel_max", 10 ** 5, "channel_max: must be at most 4096"),
    ("mapping.num_layers", 1000, "num_layers: must be at most 64"),
    ("render.ray_start", float("nan"), "finite"),
    ("render.box_warp", float("inf"), "finite"),
    ("mouth.crop_scale", 1e9, "crop_scale: must be at most 10"),
])
def test_absurd_sizes_are_refused(key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        get_preset("tiny").replace(**{key: value})


def test_parameter_estimate_tracks_the_real_count():
    from next3d.networks.generator import Next3DGenerator

    cfg = get_preset("tiny")
    real = sum(p.numel() for p in Next3DGenerator(cfg).parameters())
    assert 0.8 < estimate_generator_parameters(cfg) / real < 1.25
    assert 0.9 < estimate_generator_parameters(GeneratorConfig()) / 173e6 < 1.1  # published: about 173 M


def test_configs_too_large_for_memory_are_refused(monkeypatch):
    monkeypatch.setenv("NEXT3D_MEMORY_LIMIT", "1G")
    GeneratorConfig()  # ~172 M parameters = 0.64 GiB of weights: fits
    with pytest.raises(ConfigError, match="G parameters"):
        get_preset("tiny").replace(channel_max=4096, channel_base=1 << 22)


def test_json_config_nesting_and_constants():
    with pytest.raises(ConfigError, match="nested"):
        GeneratorConfig.from_json("[" * 50000 + "]" * 50000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        GeneratorConfig.from_json('{"render": {"ray_start": NaN}}')
