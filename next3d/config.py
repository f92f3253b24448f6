"""Typed configurations of the generator and the discriminator.

A configuration is a tree of frozen dataclasses. Every field has a docstring (the string
literal under it), a default that matches the published FFHQ-512 model, and a type that
is checked on construction. Configurations travel as plain JSON:

    cfg.to_dict()            -> dict of str/int/float/bool/None/list/dict only
    GeneratorConfig.from_dict(d)   rejects unknown keys (naming the valid ones) and wrong types
    cfg.replace(**{"render.neural_resolution": 32})   dotted keys reach nested fields
    apply_overrides(cfg, ["render.neural_resolution=32"])   the same from command-line text

Named presets live in `next3d.presets`. A generator is tied to the mesh topology and UV
layout of the head model it was built for: `GeneratorConfig.head_model` names the kind of
head and `head_topology` holds `topology_hash(...)` of its faces and UV faces.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Literal, Optional, Tuple, Union

import numpy as np

from next3d.errors import Next3DError


class ConfigError(Next3DError, ValueError):
    """A configuration value or key is invalid."""


def _is_pow2(value: int) -> bool:
    return value >= 1 and (value & (value - 1)) == 0


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{_type_name(args[0])} or null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, Tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return f"list of {len(args)} {_type_name(args[0])}"
    if dataclasses.is_dataclass(tp):
        return f"object ({tp.__name__})"
    return {int: "int", float: "float", bool: "bool", str: "string"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against annotation `tp`; return it normalised (lists -> tuples, int -> float)."""
    def bad():
        return ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")

    origin = typing.get_origin(tp)
    if origin is Union:
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is Literal:
        if value not in typing.get_args(tp) or type(value) is not type(typing.get_args(tp)[0]):
            raise bad()
        return value
    if origin in (tuple, Tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise bad()
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {len(value)} values ({value!r})")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return tp.from_dict(value, _prefix=key + ".")
        raise bad()
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise bad()
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad()
        if not math.isfinite(float(value)):
            raise ConfigError(f"config key '{key}': expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise TypeError(f"config key '{key}': unsupported annotation {tp!r}")  # programming error


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


class _Config:
    """Shared behaviour of every configuration dataclass (type checks, JSON, replace)."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self), include_extras=False)
        for f in dataclasses.fields(self):
            value = _coerce(getattr(self, f.name), hints[f.name], f.name)
            object.__setattr__(self, f.name, value)
        self._check()

    def _check(self) -> None:
        """Semantic checks of one dataclass (ranges, powers of two, agreement of fields)."""

    def _require(self, ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{type(self).__name__}.{key}: {message} (got {getattr(self, key.split('.')[0])!r})")

    def _at_most(self, key: str, bound: Union[int, float], why: str = "") -> None:
        """Upper sanity bound of a size: a configuration asking for more is refused before anything is built."""
        self._require(getattr(self, key) <= bound, key, f"must be at most {bound}" + (f" ({why})" if why else ""))

    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> Dict[str, Any]:
        """The configuration as plain JSON types (nested dicts, lists, numbers, strings, None)."""
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], _prefix: str = ""):
        """Build from `to_dict()` output. Unknown keys and wrong types raise ConfigError;
        missing keys take their defaults (configs written before a field existed still load)."""
        if not isinstance(data, dict):
            raise ConfigError(f"config '{_prefix.rstrip('.') or cls.__name__}': expected an object, got {type(data).__name__}")
        names = cls.field_names()
        for key in data:
            if key not in names:
                raise ConfigError(f"unknown config key '{_prefix}{key}' (valid keys of {cls.__name__}: {', '.join(names)})")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(v, hints[k], _prefix + k) for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str):
        """Parse JSON text (size and nesting bounded by `next3d.safe_json`) and `from_dict` it."""
        from next3d.safe_json import JsonLimitError, loads_limited

        try:
            data = loads_limited(text, f"{cls.__name__} JSON")
        except JsonLimitError as exc:
            raise ConfigError(str(exc)) from None
        return cls.from_dict(data)

    def replace(self, **overrides: Any):
        """A copy with fields replaced. Keys may be dotted (`render.neural_resolution`) to
        reach nested configurations; pass them as `replace(**{"a.b": v})`."""
        return self._replace(overrides, "")

    def _replace(self, overrides: Dict[str, Any], prefix: str):
        direct: Dict[str, Any] = {}
        nested: Dict[str, Dict[str, Any]] = {}
        names = self.field_names()
        hints = typing.get_type_hints(type(self))
        for key, value in overrides.items():
            head, _, rest = key.partition(".")
            if head not in names:
                raise ConfigError(f"unknown config key '{prefix}{key}' (valid keys of {type(self).__name__}: "
                                  f"{', '.join(names)})")
            if rest:
                if not dataclasses.is_dataclass(hints[head]):
                    raise ConfigError(f"config key '{prefix}{key}': '{head}' is a {_type_name(hints[head])}, "
                                      f"not a section")
                nested.setdefault(head, {})[rest] = value
            else:
                direct[head] = _coerce(value, hints[head], prefix + key)
        for head, sub in nested.items():
            direct[head] = direct.get(head, getattr(self, head))._replace(sub, f"{prefix}{head}.")
        return dataclasses.replace(self, **direct)


# ---------------------------------------------------------------------------------------
# Sanity bounds: far above every published and sensible setting, far below what exhausts memory.

MAX_PLANE_RESOLUTION = 4096
"""Largest side of a texture, tri-plane, mouth or image (published: 256 planes, 512 images)."""
MAX_NEURAL_RESOLUTION = 1024
"""Largest volume-rendering resolution and super-resolution input (published: 64/128 and 128)."""
MAX_SAMPLES_PER_RAY = 1024
"""Largest number of stratified or importance samples per ray (published: 48 + 48)."""
MAX_CHANNELS = 4096
"""Largest channel count of any layer (published: 512)."""
MAX_CHANNEL_BASE = 1 << 22
"""Largest StyleGAN2 channel budget (published: 32768)."""
MAX_LATENT = 8192
"""Largest z, w or label dimension (published: 512, 512, 25)."""
MAX_LAYERS = 64
"""Largest depth of a mapping network (published: 2 for G, 8 for D)."""


def _synthesis_parameters(resolution: int, channel_base: int, channel_max: int, w_dim: int) -> int:
    """Rough parameter count of a StyleGAN2 synthesis network up to `resolution` (two 3x3
    modulated convolutions per block plus their affines)."""
    total, r = 0, 4
    while r <= resolution:
        c = min(channel_base // r, channel_max) + 1
        total += 2 * (9 * c * c + w_dim * c)
        r *= 2
    return total


def estimate_generator_parameters(cfg: "GeneratorConfig") -> int:
    """About how many parameters `Next3DGenerator(cfg)` has (within a factor of ~2): the
    texture and static synthesis networks, the mouth and blending StyleUNets (encoder +
    decoder, about twice a synthesis network each) and the super-resolution blocks.
    Used to refuse configurations whose weights alone would not fit in memory."""
    base, cmax, w = cfg.channel_base, cfg.channel_max, cfg.w_dim
    sr = sum(2 * (9 * c * c + w * c) for c in cfg.superres.channels)
    return (_synthesis_parameters(cfg.texture.resolution, base, cmax, w)
            + _synthesis_parameters(cfg.static.resolution, base, cmax, w)
            + 2 * _synthesis_parameters(cfg.mouth.out_resolution, base, cmax, w)
            + 2 * _synthesis_parameters(cfg.static.resolution, base, cmax, w)
            + sr + (cfg.mapping.num_layers + 1) * w * w)


# ---------------------------------------------------------------------------------------
# Generator sections


@dataclass(frozen=True)
class MappingConfig(_Config):
    num_layers: int = 2
    """Fully connected layers after concatenating the z and camera embeddings."""
    lr_multiplier: float = 0.01
    """Learning-rate multiplier of the mapping layers (equalised learning rate)."""
    w_avg_beta: float = 0.998
    """Decay of the tracked average w used for truncation."""
    c_scale: float = 1.0
    """Scale applied to the camera label before it is embedded (EG3D `c_scale`)."""
    c_zero: bool = False
    """Condition the mapping on a zero camera label (EG3D `c_gen_conditioning_zero`)."""

    def _check(self):
        self._require(self.num_layers >= 1, "num_layers", "needs at least 1 layer")
        self._at_most("num_layers", MAX_LAYERS)
        self._require(0.0 <= self.w_avg_beta <= 1.0, "w_avg_beta", "must lie in [0, 1]")


@dataclass(frozen=True)
class TextureConfig(_Config):
    resolution: int = 256
    """Side of the UV-space neural texture (a StyleGAN2 synthesis network's output)."""
    channels: int = 32
    """Feature channels of the neural texture; equal to the channels of one tri-plane."""

    def _check(self):
        self._require(_is_pow2(self.resolution) and self.resolution >= 8, "resolution", "must be a power of two >= 8")
        self._at_most("resolution", MAX_PLANE_RESOLUTION, "published: 256")
        self._require(self.channels >= 3, "channels", "needs at least 3 channels")
        self._at_most("channels", MAX_CHANNELS)


@dataclass(frozen=True)
class StaticPlaneConfig(_Config):
    resolution: int = 256
    """Side of each tri-plane; the mesh is rasterised into the planes at this size."""
    channels: int = 96
    """Output channels of the static backbone: 3 planes x texture channels."""

    def _check(self):
        self._require(_is_pow2(self.resolution) and self.resolution >= 8, "resolution", "must be a power of two >= 8")
        self._at_most("resolution", MAX_PLANE_RESOLUTION, "published: 256")
        self._require(self.channels % 3 == 0 and self.channels >= 3, "channels", "must be 3 x the per-plane channels")
        self._at_most("channels", 3 * MAX_CHANNELS)


@dataclass(frozen=True)
class MouthConfig(_Config):
    crop_size: int = 64
    """Side the front-plane crop around the lips is resized to before the mouth StyleUNet."""
    final_size: int = 4
    """Spatial size at the bottom of the StyleUNet encoder (crop_size -> final_size)."""
    out_resolution: int = 256
    """Resolution of the synthesised mouth features (resized back into the crop)."""
    crop_scale: float = 1.2
    """Side of the square crop as a multiple of the larger extent of lip landmarks 48-59."""

    def _check(self):
        for key in ("crop_size", "final_size", "out_resolution"):
            self._require(_is_pow2(getattr(self, key)) and getattr(self, key) >= 4, key, "must be a power of two >= 4")
            self._at_most(key, MAX_PLANE_RESOLUTION)
        self._require(self.final_size < self.crop_size, "final_size", f"must be smaller than crop_size {self.crop_size}")
        self._require(self.crop_scale > 0, "crop_scale", "must be positive")
        self._at_most("crop_scale", 10.0)


@dataclass(frozen=True)
class BlendingConfig(_Config):
    final_size: int = 32
    """Spatial size at the bottom of the blending StyleUNet encoder (plane resolution -> final_size)."""

    def _check(self):
        self._require(_is_pow2(self.final_size) and self.final_size >= 4, "final_size", "must be a power of two >= 4")
        self._at_most("final_size", MAX_PLANE_RESOLUTION)


@dataclass(frozen=True)
class RenderConfig(_Config):
    neural_resolution: int = 64
    """Side R of the volume-rendered feature image (published: 64, optionally 128)."""
    samples_per_ray: int = 48
    """Stratified depth samples per ray."""
    importance_samples: int = 48
    """Additional importance samples per ray (0 disables the second pass)."""
    ray_start: float = 2.25
    """Near bound of the depth range (world units from the camera)."""
    ray_end: float = 3.3
    """Far bound of the depth range."""
    box_warp: float = 1.0
    """Side of the world cube the tri-planes span; planes are sampled at 2 * world / box_warp."""
    density_shift: float = -1.0
    """Added to raw density before softplus: sigma = softplus(raw + density_shift)."""
    white_back: bool = False
    """Composite onto white instead of black."""
    disparity_space_sampling: bool = False
    """Sample stratified depths uniformly in disparity (1/depth) instead of depth."""
    avg_camera_radius: float = 2.7
    """Orbit radius of the average camera (for default and interpolated views)."""
    avg_camera_pivot: Tuple[float, float, float] = (0.0, 0.0, 0.2)
    """World point the average camera looks at."""

    def _check(self):
        self._require(_is_pow2(self.neural_resolution) and self.neural_resolution >= 4, "neural_resolution",
                      "must be a power of two >= 4")
        self._at_most("neural_resolution", MAX_NEURAL_RESOLUTION, "published: 64 or 128")
        self._require(self.samples_per_ray >= 1, "samples_per_ray", "needs at least 1 sample")
        self._at_most("samples_per_ray", MAX_SAMPLES_PER_RAY, "published: 48")
        self._require(self.importance_samples >= 0, "importance_samples", "cannot be negative")
        self._at_most("importance_samples", MAX_SAMPLES_PER_RAY, "published: 48")
        self._require(self.importance_samples == 0 or self.samples_per_ray >= 4, "samples_per_ray",
                      "needs at least 4 coarse samples when importance_samples > 0 (EG3D's importance "
                      "sampler smooths the coarse weights and drops the two end bins)")
        self._require(0.0 < self.ray_start < self.ray_end, "ray_start", f"must satisfy 0 < ray_start < ray_end ({self.ray_end})")
        self._require(self.box_warp > 0, "box_warp", "must be positive")
        self._require(self.avg_camera_radius > 0, "avg_camera_radius", "must be positive")


@dataclass(frozen=True)
class SuperresConfig(_Config):
    input_resolution: int = 128
    """The feature image is resized to this side before two 2x-upsampling StyleGAN2 blocks."""
    out_resolution: int = 512
    """Side of the final image (4 x input_resolution)."""
    channels: Tuple[int, ...] = (256, 128)
    """Channels of the two blocks (block0 at 2 x input, block1 at 4 x input)."""
    num_fp16_res: int = 4
    """Run this many highest resolutions of the module in float16 on CUDA (0 = none)."""
    antialias: bool = True
    """Antialias when resizing the feature image to input_resolution."""
    noise_mode: Literal["none", "const", "random"] = "none"
    """Per-pixel noise inputs of the blocks at inference."""

    def _check(self):
        self._require(_is_pow2(self.input_resolution) and self.input_resolution >= 4, "input_resolution",
                      "must be a power of two >= 4")
        self._at_most("input_resolution", MAX_NEURAL_RESOLUTION, "published: 128")
        self._require(self.out_resolution == 4 * self.input_resolution, "out_resolution",
                      f"must be 4 x input_resolution ({4 * self.input_resolution}): two 2x blocks")
        self._require(len(self.channels) == 2 and all(c >= 1 for c in self.channels), "channels",
                      "must be two positive channel counts (block0, block1)")
        self._require(all(c <= MAX_CHANNELS for c in self.channels), "channels", f"must be at most {MAX_CHANNELS}")
        self._require(self.num_fp16_res >= 0, "num_fp16_res", "cannot be negative")


@dataclass(frozen=True)
class DecoderConfig(_Config):
    hidden: int = 64
    """Hidden width of the tri-plane decoder MLP (FC -> softplus -> FC)."""
    features: int = 32
    """Feature channels the decoder outputs beside density; the first 3 are the raw RGB."""
    lr_multiplier: float = 1.0
    """Learning-rate multiplier of the decoder layers."""

    def _check(self):
        self._require(self.hidden >= 1, "hidden", "must be positive")
        self._at_most("hidden", MAX_CHANNELS)
        self._require(self.features >= 3, "features", "needs at least 3 (raw RGB)")
        self._at_most("features", MAX_CHANNELS)


# ---------------------------------------------------------------------------------------
# Whole networks


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    z_dim: int = 512
    """Dimensionality of the input latent z."""
    w_dim: int = 512
    """Dimensionality of the intermediate latent w."""
    c_dim: int = 25
    """Camera label size: 16 cam2world + 9 normalised intrinsics."""
    channel_base: int = 32768
    """StyleGAN2 channel budget: a block at resolution r has min(channel_base // r, channel_max) channels."""
    channel_max: int = 512
    """Upper bound on the channels of any StyleGAN2 block."""
    num_fp16_res: int = 0
    """Float16 in this many highest resolutions of the StyleGAN2 synthesis networks (CUDA only)."""
    conv_clamp: Optional[int] = None
    """Clamp convolution outputs to +-conv_clamp (null = no clamping)."""
    img_channels: int = 3
    """Channels of the output image."""
    front_only_blending: bool = False
    """Blend the rasterised texture into the front plane only (side and top alpha zero)."""
    head_model: str = "builtin"
    """Which head model the generator was built for: "builtin" (the procedural head shipped
    with next3d) or "flame" (a FLAME folder). The generator is tied to its UV layout."""
    head_topology: Optional[str] = None
    """`topology_hash` of the head model's faces and UV faces (null = not recorded)."""
    flame_dir: Optional[str] = None
    """FLAME folder used to build the generator (null = the built-in head)."""
    mapping: MappingConfig = field(default_factory=MappingConfig)
    """Mapping network (z, c) -> ws."""
    texture: TextureConfig = field(default_factory=TextureConfig)
    """Neural texture generator (UV space)."""
    static: StaticPlaneConfig = field(default_factory=StaticPlaneConfig)
    """Static tri-plane backbone; its resolution is also the rasterisation resolution."""
    mouth: MouthConfig = field(default_factory=MouthConfig)
    """Mouth StyleUNet."""
    blending: BlendingConfig = field(default_factory=BlendingConfig)
    """Neural blending StyleUNet over the front plane."""
    render: RenderConfig = field(default_factory=RenderConfig)
    """Volume rendering."""
    superres: SuperresConfig = field(default_factory=SuperresConfig)
    """Super-resolution module."""
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    """Tri-plane feature decoder."""

    def _check(self):
        for key in ("z_dim", "w_dim", "c_dim", "channel_base", "channel_max", "img_channels"):
            self._require(getattr(self, key) >= 1, key, "must be positive")
        for key, bound in (("z_dim", MAX_LATENT), ("w_dim", MAX_LATENT), ("c_dim", MAX_LATENT),
                           ("channel_base", MAX_CHANNEL_BASE), ("channel_max", MAX_CHANNELS), ("img_channels", 64)):
            self._at_most(key, bound)
        self._require(self.num_fp16_res >= 0, "num_fp16_res", "cannot be negative")
        self._require(self.conv_clamp is None or self.conv_clamp > 0, "conv_clamp", "must be positive or null")
        self._require(self.head_model in ("builtin", "flame"), "head_model", "must be 'builtin' or 'flame'")
        self._require(self.static.channels == 3 * self.texture.channels, "static",
                      f"channels must be 3 x texture.channels = {3 * self.texture.channels}")
        self._require(self.blending.final_size < self.static.resolution, "blending",
                      f"final_size must be below static.resolution {self.static.resolution}")
        self._require(self.mouth.crop_size <= self.static.resolution, "mouth",
                      f"crop_size must not exceed static.resolution {self.static.resolution}")
        self._require(self.img_channels <= self.decoder.features, "img_channels",
                      f"cannot exceed decoder.features {self.decoder.features}")
        from next3d.limits import memory_budget

        params = estimate_generator_parameters(self)
        self._require(4 * params <= memory_budget(), "channel_base",
                      f"with these sizes the generator would have about {params / 1e9:.3g} G parameters "
                      f"({4 * params / 2 ** 30:.3g} GiB), more than this machine's memory (NEXT3D_MEMORY_LIMIT)")

    @property
    def plane_channels(self) -> int:
        """Channels of one tri-plane (= texture channels = decoder input)."""
        return self.texture.channels

    @property
    def img_resolution(self) -> int:
        """Side of the final image."""
        return self.superres.out_resolution


@dataclass(frozen=True)
class DiscriminatorConfig(_Config):
    c_dim: int = 25
    """Camera label size used for projection conditioning."""
    img_resolution: int = 512
    """Side of the (super-resolved) images it judges."""
    img_channels: int = 3
    """Channels of one image; the input has 2 x img_channels (image and upsampled image_raw)
    plus mesh_channels."""
    mesh_channels: int = 0
    """Channels of the rendered FLAME mesh concatenated to the input (0 = the published dual
    discriminator; e.g. 3 for the deformation-aware discriminator's normals)."""
    architecture: Literal["resnet", "skip", "orig"] = "resnet"
    """Block architecture."""
    channel_base: int = 32768
    """Channel budget: min(channel_base // r, channel_max) channels at resolution r."""
    channel_max: int = 512
    """Upper bound on the channels of any block."""
    num_fp16_res: int = 4
    """Float16 in this many highest resolutions (CUDA only)."""
    conv_clamp: Optional[int] = 256
    """Clamp convolution outputs to +-conv_clamp (null = no clamping)."""
    mapping_layers: int = 8
    """Layers of the label-embedding mapping network (projection conditioning)."""
    cmap_dim: Optional[int] = None
    """Dimensionality of the embedded label (null = channels at 4x4)."""
    mbstd_group_size: int = 4
    """Minibatch standard deviation group size."""
    mbstd_num_channels: int = 1
    """Minibatch standard deviation feature channels."""

    def _check(self):
        self._require(_is_pow2(self.img_resolution) and self.img_resolution >= 8, "img_resolution",
                      "must be a power of two >= 8")
        for key in ("c_dim", "img_channels", "channel_base", "channel_max", "mbstd_num_channels"):
            self._require(getattr(self, key) >= 1, key, "must be positive")
        for key, bound in (("img_resolution", MAX_PLANE_RESOLUTION), ("c_dim", MAX_LATENT), ("img_channels", 64),
                           ("channel_base", MAX_CHANNEL_BASE), ("channel_max", MAX_CHANNELS),
                           ("mesh_channels", 64), ("mapping_layers", MAX_LAYERS), ("mbstd_num_channels", 64),
                           ("mbstd_group_size", 1024)):
            self._at_most(key, bound)
        self._require(self.cmap_dim is None or 1 <= self.cmap_dim <= MAX_LATENT, "cmap_dim",
                      f"must be null or in [1, {MAX_LATENT}]")
        self._require(self.mesh_channels >= 0, "mesh_channels", "cannot be negative")
        self._require(self.mapping_layers >= 1, "mapping_layers", "needs at least 1 layer")
        self._require(self.conv_clamp is None or self.conv_clamp > 0, "conv_clamp", "must be positive or null")

    @property
    def in_channels(self) -> int:
        return 2 * self.img_channels + self.mesh_channels


# ---------------------------------------------------------------------------------------
# Command-line overrides


def _parse_text(text: str, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:
        if text.strip().lower() in ("null", "none"):
            return None
        tp = [a for a in typing.get_args(tp) if a is not type(None)][0]
        origin = typing.get_origin(tp)
    if tp is str or (origin is Literal and isinstance(typing.get_args(tp)[0], str)):
        return text
    if tp is bool:
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"config key '{key}': expected true or false, got '{text}'")
    if origin in (tuple, Tuple) and not text.strip().startswith("["):
        text = "[" + text + "]"  # allow "256,128"
    from next3d.safe_json import JsonLimitError, loads_limited

    try:
        return loads_limited(text, f"config key '{key}'", max_bytes=1 << 16, max_depth=4)
    except JsonLimitError:
        raise ConfigError(f"config key '{key}': cannot read '{text}' as {_type_name(tp)}") from None


def _annotation_of(config: _Config, dotted: str) -> Any:
    cls: Any = type(config)
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls) or part not in cls.field_names():
            owner = ".".join(parts[:i]) or cls.__name__
            valid = ", ".join(cls.field_names()) if dataclasses.is_dataclass(cls) else "(not a section)"
            raise ConfigError(f"unknown config key '{dotted}' (valid keys of {owner}: {valid})")
        cls = typing.get_type_hints(cls)[part]
    return cls


def apply_overrides(config: _Config, items: Iterable[str]) -> _Config:
    """Apply command-line overrides `KEY=VALUE` (dotted keys; values parsed by the field's type)."""
    overrides: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override '{item}': expected KEY=VALUE, e.g. render.neural_resolution=32")
        overrides[key] = _parse_text(text, _annotation_of(config, key), key)
    return config.replace(**overrides)


# ---------------------------------------------------------------------------------------
# Head-model identity


def topology_hash(faces: Any, uv_faces: Any, num_uvs: int) -> str:
    """Identity of a mesh topology and UV layout: sha256 over the face and UV-face index
    arrays (F, 3) (0-based) and the number of UV coordinates. Vertex and UV positions are
    left out so that float formatting of a re-saved file does not change the identity."""
    f = np.ascontiguousarray(np.asarray(faces, dtype=np.int64).reshape(-1, 3))
    ft = np.ascontiguousarray(np.asarray(uv_faces, dtype=np.int64).reshape(-1, 3))
    if f.shape != ft.shape:
        raise ValueError(f"topology_hash: faces {f.shape} and uv_faces {ft.shape} must have the same shape (F, 3)")
    digest = hashlib.sha256()
    digest.update(f"next3d-topology-v1 F={f.shape[0]} T={int(num_uvs)}\n".encode())
    digest.update(f.astype("<i8").tobytes())
    digest.update(ft.astype("<i8").tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def topology_hash_from_obj(path: Union[str, Path]) -> str:
    """`topology_hash` of a triangle mesh with UVs in an .obj file (e.g. `head_template.obj`)."""
    faces, uv_faces, num_uvs = [], [], 0
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            if line.startswith("vt "):
                num_uvs += 1
            elif line.startswith("f "):
                corners = line.split()[1:]
                if len(corners) != 3 or any(c.count("/") < 1 for c in corners):
                    raise ValueError(f"{path}:{line_no}: expected a triangle with UV indices 'f v/vt v/vt v/vt'")
                faces.append([int(c.split("/")[0]) - 1 for c in corners])
                uv_faces.append([int(c.split("/")[1]) - 1 for c in corners])
    if not faces:
        raise ValueError(f"{path}: no faces found (expected an .obj mesh with 'f v/vt ...' lines)")
    return topology_hash(faces, uv_faces, num_uvs)


def check_head_topology(config: GeneratorConfig, head_topology: Optional[str]) -> None:
    """Raise ValueError when a generator built for one head topology meets another."""
    if config.head_topology is None or head_topology is None or config.head_topology == head_topology:
        return
    raise ValueError(
        f"head model mismatch: the generator was built for topology {config.head_topology} "
        f"({config.head_model}), but the head model in use has {head_topology}; "
        f"use the head model (UV layout) it was trained with")
