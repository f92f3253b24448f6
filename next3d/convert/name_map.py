"""Published EG3D/Next3D weights -> this project's generator and discriminator, by name.

The project's modules carry the published names (`texture_backbone`, `mouth_backbone`,
`backbone`, `superresolution`, `decoder`, `neural_blending`; the discriminator's
`b512 ... b4`, `mapping`), so the map is the identity except:

* topology buffers of the published generator (`dense_faces`, `faces`, `raw_uvcoords`,
  `uvcoords`, `uvfaces`, `face_uvcoords`) are dropped: the head model's FLAME layer
  provides them (they still give the topology hash recorded in the configuration);
* EG3D generators have no texture, mouth or blending networks: only `backbone`,
  `superresolution` and `decoder` are taken, the rest is initialised freshly;
* `RENAMES` holds prefix renames should a project module ever be named differently.

`generator_config_from_published` rebuilds a `GeneratorConfig` from the constructor
arguments stored in the pickle and the tensor shapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch

from next3d.config import ConfigError, DiscriminatorConfig, GeneratorConfig, topology_hash
from next3d.errors import Next3DError
from next3d.convert.legacy_pickle import PublishedNetwork
from next3d.presets import get_preset

TOPOLOGY_BUFFERS = ("dense_faces", "faces", "raw_uvcoords", "uvcoords", "uvfaces", "face_uvcoords")
NEXT3D_MODULES = ("texture_backbone", "mouth_backbone", "backbone", "superresolution", "decoder", "neural_blending")
EG3D_MODULES = ("backbone", "superresolution", "decoder")
# Published prefix -> project prefix; empty while the project keeps the published names.
RENAMES: Dict[str, str] = {}
SUPPORTED_SUPERRES = ("SuperresolutionHybrid8XDC", "SuperresolutionHybrid8X")


class ConvertError(Next3DError, ValueError):
    """A published network cannot be converted."""


@dataclass
class MappedWeights:
    """Tensors renamed for the project, and what was left out and why."""

    tensors: Dict[str, torch.Tensor]
    dropped: Dict[str, str] = field(default_factory=dict)   # published name -> reason
    fresh_modules: List[str] = field(default_factory=list)  # project prefixes initialised freshly
    flavour: str = "next3d"


def _rename(name: str) -> str:
    for old, new in RENAMES.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return name


def detect_flavour(state_dict: Dict[str, torch.Tensor]) -> str:
    """'next3d' when the texture generator is present, 'eg3d' for a plain EG3D tri-plane generator."""
    tops = {k.split(".")[0] for k in state_dict}
    if "texture_backbone" in tops:
        return "next3d"
    if "backbone" in tops and "decoder" in tops:
        return "eg3d"
    raise ConvertError(f"not an EG3D/Next3D generator: top-level modules {sorted(tops)} "
                       f"(expected {', '.join(EG3D_MODULES)} and for Next3D also texture_backbone)")


def map_generator_weights(state_dict: Dict[str, torch.Tensor], flavour: str) -> MappedWeights:
    """Rename a published generator state_dict for the project ('next3d' or 'eg3d' flavour)."""
    if flavour not in ("next3d", "eg3d"):
        raise ValueError(f"flavour must be 'next3d' or 'eg3d', got {flavour!r}")
    keep = NEXT3D_MODULES if flavour == "next3d" else EG3D_MODULES
    out = MappedWeights(tensors={}, flavour=flavour)
    for name, tensor in state_dict.items():
        top = name.split(".")[0]
        if name in TOPOLOGY_BUFFERS:
            out.dropped[name] = "topology buffer (taken from the head model instead)"
        elif top not in keep:
            out.dropped[name] = (f"not part of an {flavour.upper()} generator's networks "
                                 f"({', '.join(keep)})")
        else:
            out.tensors[_rename(name)] = tensor.detach().clone().contiguous()
    if flavour == "eg3d":
        out.fresh_modules = [_rename(m) + "." for m in NEXT3D_MODULES if m not in EG3D_MODULES]
    missing = [m for m in keep if not any(k.startswith(_rename(m) + ".") for k in out.tensors)]
    if missing:
        raise ConvertError(f"published {flavour} generator lacks the networks {', '.join(missing)}")
    return out


def map_discriminator_weights(state_dict: Dict[str, torch.Tensor]) -> MappedWeights:
    """The published dual discriminator's names are the project's: identity (cloned)."""
    return MappedWeights(tensors={_rename(k): v.detach().clone().contiguous() for k, v in state_dict.items()},
                         flavour="discriminator")


def _max_block_resolution(state_dict: Dict[str, torch.Tensor], prefix: str) -> Optional[int]:
    res = [int(m.group(1)) for k in state_dict for m in [re.match(re.escape(prefix) + r"\.b(\d+)\.", k)] if m]
    return max(res) if res else None


def _shape(state_dict: Dict[str, torch.Tensor], key: str) -> Optional[Tuple[int, ...]]:
    t = state_dict.get(key)
    return tuple(t.shape) if t is not None else None


def generator_config_from_published(G: PublishedNetwork, flavour: str,
                                    front_only_blending: bool = True) -> Tuple[GeneratorConfig, List[str]]:
    """A GeneratorConfig for a published generator, and notes on what was inferred.

    Starts from the `ffhq512` preset and takes every size the pickle states (constructor
    kwargs, rendering kwargs, tensor shapes)."""
    kw, sd = G.init_kwargs, G.state_dict
    rk = kw.get("rendering_kwargs") or {}
    mk = kw.get("mapping_kwargs") or {}
    notes: List[str] = []
    o: Dict[str, Any] = {}

    def take(key: str, value: Any):
        if value is not None:
            o[key] = value

    for key in ("z_dim", "w_dim", "c_dim", "channel_base", "channel_max", "num_fp16_res", "img_channels"):
        take(key, kw.get(key))
    o["conv_clamp"] = kw.get("conv_clamp")
    take("mapping.num_layers", mk.get("num_layers"))
    take("mapping.lr_multiplier", mk.get("lr_multiplier"))
    take("mapping.c_scale", rk.get("c_scale"))
    take("mapping.c_zero", rk.get("c_gen_conditioning_zero"))

    for ours, theirs in (("samples_per_ray", "depth_resolution"), ("importance_samples", "depth_resolution_importance"),
                         ("ray_start", "ray_start"), ("ray_end", "ray_end"), ("box_warp", "box_warp"),
                         ("white_back", "white_back"), ("disparity_space_sampling", "disparity_space_sampling"),
                         ("avg_camera_radius", "avg_camera_radius"), ("avg_camera_pivot", "avg_camera_pivot")):
        take(f"render.{ours}", rk.get(theirs))
    if rk.get("ray_start") == "auto" or rk.get("ray_end") == "auto":
        raise ConvertError("rendering_kwargs ray_start/ray_end 'auto' (ShapeNet-style depth bounds) is not supported")
    if rk.get("clamp_mode", "softplus") != "softplus":
        raise ConvertError(f"rendering_kwargs clamp_mode {rk.get('clamp_mode')!r} is not supported "
                           f"(next3d implements softplus(sigma - 1))")
    take("render.neural_resolution", G.attribute("neural_rendering_resolution"))

    img_res = kw.get("img_resolution")
    sr_module = str(rk.get("superresolution_module", ""))
    if sr_module and not sr_module.endswith(SUPPORTED_SUPERRES):
        raise ConvertError(f"superresolution module {sr_module} is not supported "
                           f"(next3d implements {' / '.join(SUPPORTED_SUPERRES)}: two upsampling blocks)")
    b0, b1 = _shape(sd, "superresolution.block0.conv0.weight"), _shape(sd, "superresolution.block1.conv0.weight")
    if b0 is None or b1 is None:
        raise ConvertError("the generator has no superresolution.block0/block1 weights")
    o["superres.channels"] = (b0[0], b1[0])
    noise0 = _shape(sd, "superresolution.block0.conv0.noise_const")
    if img_res is not None:
        o["superres.out_resolution"] = int(img_res)
        o["superres.input_resolution"] = int(img_res) // 4
        if noise0 is not None and noise0[-1] * 2 != int(img_res):
            raise ConvertError(f"superresolution block0 runs at {noise0[-1]}, expected {int(img_res) // 2} for "
                               f"output {img_res}")
    take("superres.num_fp16_res", kw.get("sr_num_fp16_res"))
    take("superres.antialias", rk.get("sr_antialias"))
    take("superres.noise_mode", rk.get("superresolution_noise_mode"))

    dec0, dec2 = _shape(sd, "decoder.net.0.weight"), _shape(sd, "decoder.net.2.weight")
    if dec0 is None or dec2 is None:
        raise ConvertError("the generator has no decoder.net.0/net.2 weights")
    o["decoder.hidden"], o["decoder.features"] = dec0[0], dec2[0] - 1
    take("decoder.lr_multiplier", rk.get("decoder_lr_mul"))

    static_res = _max_block_resolution(sd, "backbone.synthesis")
    static_ch = _shape(sd, "backbone.synthesis.b4.torgb.weight")
    if static_res is None or static_ch is None:
        raise ConvertError("the generator has no backbone.synthesis blocks")
    o["static.resolution"], o["static.channels"] = static_res, static_ch[0]

    if flavour == "next3d":
        tex_res = _max_block_resolution(sd, "texture_backbone.synthesis")
        tex_ch = _shape(sd, "texture_backbone.synthesis.b4.torgb.weight")
        o["texture.resolution"], o["texture.channels"] = tex_res, tex_ch[0]
        mouth = G.child_kwargs("mouth_backbone")
        take("mouth.crop_size", mouth.get("in_size"))
        take("mouth.final_size", mouth.get("final_size"))
        take("mouth.out_resolution", mouth.get("img_resolution"))
        take("blending.final_size", G.child_kwargs("neural_blending").get("final_size"))
        o["head_model"] = "flame"
        if all(k in sd for k in ("faces", "uvfaces", "raw_uvcoords")):
            o["head_topology"] = topology_hash(sd["faces"][0].numpy(), sd["uvfaces"][0].numpy(),
                                               sd["raw_uvcoords"].shape[1])
            notes.append(f"head topology {o['head_topology']} (from the published topology buffers)")
        o["front_only_blending"] = bool(front_only_blending)
    else:
        # No texture, mouth or blending networks: size them like ffhq512 relative to the planes
        # (256² planes give exactly the published sizes).
        o["texture.resolution"] = static_res
        o["texture.channels"] = static_ch[0] // 3
        o["mouth.crop_size"] = max(8, static_res // 4)
        o["mouth.final_size"] = 4
        o["mouth.out_resolution"] = static_res
        o["blending.final_size"] = max(4, static_res // 8)
        notes.append("EG3D generator: texture, mouth and blending sizes follow ffhq512, scaled to its planes")

    try:
        config = get_preset("ffhq512").replace(**o)
    except ConfigError as exc:
        raise ConvertError(f"the published generator does not fit a next3d configuration: {exc}") from None
    return config, notes


def discriminator_config_from_published(D: PublishedNetwork) -> DiscriminatorConfig:
    """A DiscriminatorConfig for the published dual discriminator."""
    kw, sd = D.init_kwargs, D.state_dict
    ek = kw.get("epilogue_kwargs") or {}
    mk = kw.get("mapping_kwargs") or {}
    o: Dict[str, Any] = {}
    for key in ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                "num_fp16_res", "cmap_dim"):
        if kw.get(key) is not None:
            o[key] = kw[key]
    if "conv_clamp" in kw:
        o["conv_clamp"] = kw["conv_clamp"]
    fc_layers = {int(m.group(1)) for k in sd for m in [re.match(r"mapping\.fc(\d+)\.", k)] if m}
    o["mapping_layers"] = int(mk.get("num_layers", len(fc_layers) or 8))
    for key in ("mbstd_group_size", "mbstd_num_channels"):
        if ek.get(key) is not None:
            o[key] = ek[key]
    res = o.get("img_resolution")
    fromrgb = _shape(sd, f"b{res}.fromrgb.weight") if res else None
    if fromrgb is not None:
        rgb = int(o.get("img_channels", 3))
        extra = fromrgb[1] - 2 * rgb
        if extra < 0:
            raise ConvertError(f"discriminator input has {fromrgb[1]} channels, fewer than 2 x img_channels {rgb}")
        o["mesh_channels"] = extra
    try:
        return DiscriminatorConfig().replace(**o)
    except ConfigError as exc:
        raise ConvertError(f"the published discriminator does not fit a next3d configuration: {exc}") from None
