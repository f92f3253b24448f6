"""Named configurations: the published FFHQ-512 model and small CPU-sized ones for tests.

    get_preset("ffhq512")                -> GeneratorConfig of the published sizes
    get_discriminator_preset("tiny")     -> DiscriminatorConfig matching the tiny generator

`ffhq512` renders features at 64² (`render.neural_resolution=128` for the fine-tuned
variant). `tiny` (64² output) and `small` (128² output) keep the same structure with few
channels and samples so that a forward pass takes well under a second on a CPU.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

from next3d.config import (BlendingConfig, DecoderConfig, DiscriminatorConfig, GeneratorConfig, MappingConfig,
                           MouthConfig, RenderConfig, StaticPlaneConfig, SuperresConfig, TextureConfig)


def _ffhq512() -> Tuple[GeneratorConfig, DiscriminatorConfig]:
    return GeneratorConfig(), DiscriminatorConfig()


def _small() -> Tuple[GeneratorConfig, DiscriminatorConfig]:
    g = GeneratorConfig(
        z_dim=64, w_dim=64, channel_base=4096, channel_max=64,
        mapping=MappingConfig(num_layers=2),
        texture=TextureConfig(resolution=128, channels=16),
        static=StaticPlaneConfig(resolution=128, channels=48),
        mouth=MouthConfig(crop_size=32, final_size=4, out_resolution=64),
        blending=BlendingConfig(final_size=16),
        render=RenderConfig(neural_resolution=32, samples_per_ray=16, importance_samples=16),
        superres=SuperresConfig(input_resolution=32, out_resolution=128, channels=(32, 16), num_fp16_res=0),
        decoder=DecoderConfig(hidden=32, features=16),
    )
    d = DiscriminatorConfig(img_resolution=128, channel_base=4096, channel_max=64, num_fp16_res=0,
                            mapping_layers=2, mbstd_group_size=2)
    return g, d


def _demo() -> Tuple[GeneratorConfig, DiscriminatorConfig]:
    # The shipped model: tiny's backbone widths with a 128-px image (features rendered at 32,
    # super-resolved 4x), so that it trains on two CPU cores in hours and a face detector can read it.
    g = GeneratorConfig(
        z_dim=64, w_dim=64, channel_base=2048, channel_max=32,
        mapping=MappingConfig(num_layers=2),
        texture=TextureConfig(resolution=64, channels=8),
        static=StaticPlaneConfig(resolution=64, channels=24),
        mouth=MouthConfig(crop_size=16, final_size=4, out_resolution=32),
        blending=BlendingConfig(final_size=16),
        render=RenderConfig(neural_resolution=32, samples_per_ray=12, importance_samples=12),
        superres=SuperresConfig(input_resolution=32, out_resolution=128, channels=(16, 8), num_fp16_res=0),
        decoder=DecoderConfig(hidden=16, features=8),
    )
    d = DiscriminatorConfig(img_resolution=128, channel_base=1024, channel_max=32, num_fp16_res=0,
                            mapping_layers=2, mbstd_group_size=2)
    return g, d


def _tiny() -> Tuple[GeneratorConfig, DiscriminatorConfig]:
    g = GeneratorConfig(
        z_dim=32, w_dim=32, channel_base=1024, channel_max=32,
        mapping=MappingConfig(num_layers=2),
        texture=TextureConfig(resolution=64, channels=8),
        static=StaticPlaneConfig(resolution=64, channels=24),
        mouth=MouthConfig(crop_size=16, final_size=4, out_resolution=32),
        blending=BlendingConfig(final_size=16),
        render=RenderConfig(neural_resolution=32, samples_per_ray=8, importance_samples=8),
        superres=SuperresConfig(input_resolution=16, out_resolution=64, channels=(16, 8), num_fp16_res=0),
        decoder=DecoderConfig(hidden=16, features=8),
    )
    d = DiscriminatorConfig(img_resolution=64, channel_base=1024, channel_max=32, num_fp16_res=0,
                            mapping_layers=2, mbstd_group_size=2)
    return g, d


_PRESETS: Dict[str, Callable[[], Tuple[GeneratorConfig, DiscriminatorConfig]]] = {
    "ffhq512": _ffhq512,
    "small": _small,
    "tiny": _tiny,
    "demo": _demo,
}
PRESET_NAMES = tuple(_PRESETS)


def _lookup(name: str) -> Tuple[GeneratorConfig, DiscriminatorConfig]:
    if name not in _PRESETS:
        raise ValueError(f"unknown preset '{name}' (available: {', '.join(PRESET_NAMES)})")
    return _PRESETS[name]()


def get_preset(name: str) -> GeneratorConfig:
    """The generator configuration of preset `name` (one of PRESET_NAMES)."""
    return _lookup(name)[0]


def get_discriminator_preset(name: str) -> DiscriminatorConfig:
    """The discriminator configuration that goes with generator preset `name`."""
    return _lookup(name)[1]
