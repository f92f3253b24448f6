"""The Next3D generator: the composition of every stage in design §1.

    ws       = backbone.mapping(z, c)                (B, num_ws, w_dim): eg3d ws | texture ws
    mesh     = FLAME(flame parameters)               vertices (B, V, 3), landmarks (B, 68, 3)
    texture  = texture_backbone.synthesis(ws_tex)    (B, C, T, T) UV-space neural texture
    static   = backbone.synthesis(ws_eg3d)           (B, 3 * C, P, P) -> (B, 3, C, P, P)
    dynamic  = texture_planes(mesh, texture)         planes (B, 3, C, P, P), alphas (B, 3, 1, P, P)
    front    = paste(mouth_backbone(crop(front)))    lips re-synthesised (eg3d ws)
    front    = neural_blending(front)                (eg3d ws)
    planes   = dynamic * alpha + static * (1 - alpha)
    render   = renderer(planes, decoder, c, R)       features (B, F, R, R) in ~(-1, 1), depth
    image    = superresolution(features[:, :3], features, ws_eg3d)

The planes split in two public parts: `identity_planes(ws)` (texture and static planes,
once per latent) and `mesh_planes(identity, flame)` (rasterisation, mouth, blending, once
per expression / FLAME frame); `synthesize_planes` is their composition and
`synthesis(..., planes=...)` renders planes made earlier, so a camera-only orbit reuses
them entirely.

Shapes for the published FFHQ-512 model: C = 32, T = P = 256, R = 64, F = 32, output 512².
Top-level module names follow the published checkpoint (`backbone`, `texture_backbone`,
`mouth_backbone`, `neural_blending`, `superresolution`, `decoder`); `flame`,
`texture_planes` and `renderer` hold no state_dict entries.

FLAME input (`flame` arguments): a `FlameOutput` (vertices and landmarks), a mapping with
`vertices` (B, V, 3) and `landmarks` (B, 68, 3) in FLAME space, or a mapping of FLAME
parameters (`shape`, `expression`, `pose`, `neck`, `jaw`, `left_eye`, `right_eye`; see
`next3d.flame.layer.FLAME.forward`) that this generator's head model turns into a mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

from next3d.config import GeneratorConfig
from next3d.flame.files import FlameModelData, load_flame_model
from next3d.flame.layer import FLAME, FlameOutput
from next3d.networks.backbone import StyleGAN2Backbone
from next3d.networks.decoder import TriPlaneDecoder
from next3d.networks.style_unet import StyleUNet
from next3d.networks.superresolution import SuperresolutionHybrid4X
from next3d.render import mouth_region
from next3d.render.texture_planes import TexturePlaneBuilder
from next3d.render.volume_renderer import RenderOptions, VolumeRenderer
from torch_utils.misc import ShapeError, assert_shape
from torch_utils.ops.grid_sample_gradfix import grid_sample as grid_sample_gradfix

FLAME_PARAM_KEYS = ("shape", "expression", "pose", "neck", "jaw", "left_eye", "right_eye")
FlameInput = Union[FlameOutput, Mapping[str, torch.Tensor]]


@dataclass(frozen=True)
class IdentityPlanes:
    """What the planes take from the latent alone (`Next3DGenerator.identity_planes`)."""

    ws: torch.Tensor  # (B, num_ws, w_dim) the latents these were made from.
    texture: torch.Tensor  # (B, C, T, T) UV-space neural texture.
    static: torch.Tensor  # (B, 3, C, P, P) static tri-plane.

    def select(self, index: torch.Tensor) -> "IdentityPlanes":
        """Rows `index` (K,) int64 of every field -> IdentityPlanes of batch K."""
        return IdentityPlanes(ws=self.ws[index], texture=self.texture[index], static=self.static[index])

    @staticmethod
    def cat(parts: Sequence["IdentityPlanes"]) -> "IdentityPlanes":
        """Concatenate along the batch."""
        return IdentityPlanes(ws=torch.cat([p.ws for p in parts]), texture=torch.cat([p.texture for p in parts]),
                              static=torch.cat([p.static for p in parts]))


def fit_ws(ws: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` ws of (B, N, w_dim), repeating the last one when N < count.

    The eg3d ws drive networks whose synthesis may need a different number of ws than
    the static backbone (only in reduced configurations; all are 14 at 256²).
    """
    if ws.shape[1] >= count:
        return ws[:, :count]
    return torch.cat([ws, ws[:, -1:].expand(-1, count - ws.shape[1], -1)], dim=1)


class Next3DGenerator(torch.nn.Module):
    """Next3D generator built from a `GeneratorConfig` (see the module docstring)."""

    def __init__(self,
                 config: Optional[GeneratorConfig] = None,  # Sizes; default = published FFHQ-512.
                 head: Optional[FlameModelData] = None,  # Head model; None = load config.flame_dir / built-in.
                 ):
        super().__init__()
        cfg = config if config is not None else GeneratorConfig()
        self.config = cfg
        if head is None:
            head = load_flame_model(cfg.flame_dir)
        channels = cfg.plane_channels
        mapping_kwargs = dict(num_layers=cfg.mapping.num_layers, lr_multiplier=cfg.mapping.lr_multiplier,
                              w_avg_beta=cfg.mapping.w_avg_beta)
        style_kwargs = dict(channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                            num_fp16_res=cfg.num_fp16_res, conv_clamp=cfg.conv_clamp)

        self.backbone = StyleGAN2Backbone(cfg.z_dim, cfg.c_dim, cfg.w_dim, img_resolution=cfg.static.resolution,
                                          img_channels=cfg.static.channels, mapping_kwargs=mapping_kwargs,
                                          **style_kwargs)
        self.texture_backbone = StyleGAN2Backbone(cfg.z_dim, cfg.c_dim, cfg.w_dim,
                                                  img_resolution=cfg.texture.resolution, img_channels=channels,
                                                  mapping_kwargs=mapping_kwargs, **style_kwargs)
        # The StyleUNets' own mappings are never run (they take the eg3d ws) but are part of
        # the published state_dict.
        self.mouth_backbone = StyleUNet(cfg.z_dim, cfg.c_dim, cfg.w_dim, img_resolution=cfg.mouth.out_resolution,
                                        img_channels=channels, mapping_kwargs=mapping_kwargs, cond_channels=channels,
                                        in_size=cfg.mouth.crop_size, final_size=cfg.mouth.final_size,
                                        num_cond_res=cfg.mouth.crop_size, **style_kwargs)
        self.neural_blending = StyleUNet(cfg.z_dim, cfg.c_dim, cfg.w_dim, img_resolution=cfg.static.resolution,
                                         img_channels=channels, mapping_kwargs=mapping_kwargs, cond_channels=channels,
                                         in_size=cfg.static.resolution, final_size=cfg.blending.final_size,
                                         num_cond_res=cfg.static.resolution, **style_kwargs)
        self.superresolution = SuperresolutionHybrid4X(channels=cfg.decoder.features,
                                                       img_resolution=cfg.superres.out_resolution, w_dim=cfg.w_dim,
                                                       block_channels=cfg.superres.channels,
                                                       sr_num_fp16_res=cfg.superres.num_fp16_res,
                                                       sr_antialias=cfg.superres.antialias,
                                                       img_channels=cfg.img_channels)
        self.decoder = TriPlaneDecoder(in_channels=channels, hidden_channels=cfg.decoder.hidden,
                                       out_channels=cfg.decoder.features, lr_multiplier=cfg.decoder.lr_multiplier)
        self.flame = FLAME(head)
        # The head's arrays as loaded (numpy; not in the state_dict): a checkpoint records their
        # version and content hash and, when exported for shipping, embeds them (next3d/flame/head_record.py).
        self.head_data = head
        self._head_record = None
        self.texture_planes = TexturePlaneBuilder(self.flame.faces, self.flame.uv_coords, self.flame.uv_faces,
                                                  self.flame.uv_mask, resolution=cfg.static.resolution,
                                                  box_warp=cfg.render.box_warp,
                                                  front_only=cfg.front_only_blending)
        r = cfg.render
        self.renderer = VolumeRenderer(RenderOptions(
            ray_start=r.ray_start, ray_end=r.ray_end, num_coarse=r.samples_per_ray, num_fine=r.importance_samples,
            box_warp=r.box_warp, density_shift=r.density_shift, white_back=r.white_back,
            disparity_space=r.disparity_space_sampling))
        # Plain attribute: training fades it from 64 to 128 in the fine-tuned variant.
        self.neural_rendering_resolution = r.neural_resolution
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.img_resolution, cfg.img_channels
        self.num_ws_eg3d = self.backbone.num_ws
        self.num_ws = self.backbone.num_ws + self.texture_backbone.num_ws

    @property
    def head_record(self):
        """`next3d.flame.head_record.HeadRecord` of the head model this generator was built with."""
        if self._head_record is None:
            from next3d.flame.head_record import describe_head

            self._head_record = describe_head(self.head_data)
        return self._head_record

    # ------------------------------------------------------------------ mapping

    def mapping(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False) -> torch.Tensor:
        """z (B, z_dim), c (B, 25) -> ws (B, num_ws, w_dim): eg3d ws, then texture ws.

        As published, one network (`backbone.mapping`, its `w_avg`) maps z to a single w
        broadcast to all num_ws (28) ws; `texture_backbone.mapping` is in the state_dict
        but never runs. `truncation_cutoff` counts over all ws: 14 truncates the eg3d ws
        and leaves the texture ws as they are.
        """
        assert_shape(z, [None, self.z_dim], "z")
        assert_shape(c, [z.shape[0], self.c_dim], "c")
        if self.config.mapping.c_zero:
            c = torch.zeros_like(c)
        c = c * self.config.mapping.c_scale
        return self.backbone.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                     update_emas=update_emas, num_ws=self.num_ws)

    # ------------------------------------------------------------------ mesh

    def head_mesh(self, flame: FlameInput) -> Tuple[torch.Tensor, torch.Tensor]:
        """Resolve a FLAME input (module docstring) -> vertices (B, V, 3), landmarks (B, 68, 3)."""
        if isinstance(flame, FlameOutput):
            vertices, landmarks = flame.vertices, flame.landmarks
        elif isinstance(flame, Mapping):
            if "vertices" in flame or "landmarks" in flame:
                if "vertices" not in flame or "landmarks" not in flame:
                    raise ValueError("flame: a mesh input needs both 'vertices' (B, V, 3) and 'landmarks' (B, 68, 3)")
                vertices, landmarks = flame["vertices"], flame["landmarks"]
            else:
                unknown = sorted(set(flame) - set(FLAME_PARAM_KEYS))
                if unknown or not flame:
                    raise ValueError(f"flame: unknown keys {unknown or '(none given)'}; expected FLAME parameters "
                                     f"{', '.join(FLAME_PARAM_KEYS)} or 'vertices' + 'landmarks'")
                out = self.flame(**dict(flame))
                vertices, landmarks = out.vertices, out.landmarks
        else:
            raise ShapeError(f"flame: expected a FlameOutput or a mapping of tensors, got {type(flame).__name__}")
        assert_shape(vertices, [None, self.flame.num_vertices, 3], "flame vertices")
        assert_shape(landmarks, [vertices.shape[0], mouth_region.NUM_LANDMARKS, 3], "flame landmarks")
        return vertices, landmarks

    # ------------------------------------------------------------------ planes

    def mouth_front(self, front: torch.Tensor, landmarks: torch.Tensor, ws_eg3d: torch.Tensor,
                    **synthesis_kwargs) -> torch.Tensor:
        """Re-synthesise the lip region of the front plane: front (B, C, P, P), landmarks
        (B, 68, 3) FLAME space, ws_eg3d (B, num_ws_eg3d, w_dim) -> front (B, C, P, P)."""
        box = mouth_region.lip_box(landmarks, self.config.render.box_warp)
        scale = self.config.mouth.crop_scale / mouth_region.LIP_BOX_SCALE
        if scale != 1.0:
            box = torch.cat([box[:, :2], box[:, 2:] * scale], dim=1)
        crop_size = self.config.mouth.crop_size
        crop = mouth_region.crop_mouth(front, box, size=crop_size)
        mouth = self.mouth_backbone.synthesis(crop, fit_ws(ws_eg3d, self.mouth_backbone.num_ws), **synthesis_kwargs)
        # As published: the network's full-size output is resized once, straight to the box.
        return mouth_region.paste_mouth(front, mouth, box)

    def identity_planes(self, ws: torch.Tensor, update_emas: bool = False, **synthesis_kwargs) -> IdentityPlanes:
        """The part of the planes that depends on the latent only (computed once per ws):
        ws (B, num_ws, w_dim) -> IdentityPlanes(ws, texture (B, C, T, T) UV space,
        static (B, 3, C, P, P))."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        batch, channels, res = ws.shape[0], self.config.plane_channels, self.config.static.resolution
        kwargs = dict(synthesis_kwargs, update_emas=update_emas)
        texture = self.texture_backbone.synthesis(ws[:, self.num_ws_eg3d:], **kwargs)
        static = self.backbone.synthesis(ws[:, :self.num_ws_eg3d], **kwargs).reshape(batch, 3, channels, res, res)
        return IdentityPlanes(ws=ws, texture=texture, static=static)

    def mesh_planes(self, identity: IdentityPlanes, flame: FlameInput, update_emas: bool = False,
                    **synthesis_kwargs) -> torch.Tensor:
        """The per-mesh part (per expression / FLAME frame) on top of `identity_planes`:
        texture rasterisation, mouth, neural blending, alpha blend -> planes (B, 3, C, P, P).

        `identity` rows pair with the mesh rows (batch B each); the result equals
        `synthesize_planes(identity.ws, flame)`.
        """
        ws = identity.ws
        assert_shape(ws, [None, self.num_ws, self.w_dim], "identity ws")
        batch = ws.shape[0]
        assert_shape(identity.texture, [batch, self.config.plane_channels, None, None], "identity texture")
        assert_shape(identity.static, [batch, 3, self.config.plane_channels, None, None], "identity static")
        vertices, landmarks = self.head_mesh(flame)
        if vertices.shape[0] != batch:
            raise ShapeError(f"flame: batch {vertices.shape[0]} differs from the ws batch {batch}")
        kwargs = dict(synthesis_kwargs, update_emas=update_emas)
        ws_eg3d = ws[:, :self.num_ws_eg3d]
        texture = identity.texture
        dynamic = self.texture_planes(vertices.to(texture.dtype), landmarks.to(texture.dtype), texture)
        front = self.mouth_front(dynamic.planes[:, 0], landmarks, ws_eg3d, **kwargs)
        front = self.neural_blending.synthesis(front, fit_ws(ws_eg3d, self.neural_blending.num_ws), **kwargs)
        dynamic_planes = torch.cat([front.unsqueeze(1), dynamic.planes[:, 1:]], dim=1)
        alpha = dynamic.alphas
        return dynamic_planes * alpha + identity.static * (1.0 - alpha)

    def synthesize_planes(self, ws: torch.Tensor, flame: FlameInput, update_emas: bool = False,
                          **synthesis_kwargs) -> torch.Tensor:
        """ws (B, num_ws, w_dim) and FLAME input -> blended tri-planes (B, 3, C, P, P):
        `mesh_planes(identity_planes(ws), flame)`."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        vertices, landmarks = self.head_mesh(flame)  # bad FLAME input fails before any network runs
        if vertices.shape[0] != ws.shape[0]:
            raise ShapeError(f"flame: batch {vertices.shape[0]} differs from the ws batch {ws.shape[0]}")
        identity = self.identity_planes(ws, update_emas=update_emas, **synthesis_kwargs)
        return self.mesh_planes(identity, {"vertices": vertices, "landmarks": landmarks}, update_emas=update_emas,
                                **synthesis_kwargs)

    # ------------------------------------------------------------------ rendering

    def synthesis(self, ws: torch.Tensor, c: torch.Tensor, flame: FlameInput,
                  neural_rendering_resolution: Optional[int] = None, update_emas: bool = False,
                  return_planes: bool = False, planes: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None, **synthesis_kwargs) -> Dict[str, torch.Tensor]:
        """ws (B, num_ws, w_dim), camera labels c (B, 25), FLAME input ->
        dict(image (B, 3, H, H) in ~[-1, 1], image_raw (B, 3, R, R), image_depth (B, 1, R, R)
        [, planes (B, 3, C, P, P)]). `planes` reuses planes from an earlier call (same ws
        and FLAME input); `generator` seeds the ray samples."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        assert_shape(c, [ws.shape[0], self.c_dim], "c")
        res = int(neural_rendering_resolution or self.neural_rendering_resolution)
        if planes is None:
            planes = self.synthesize_planes(ws, flame, update_emas=update_emas, **synthesis_kwargs)
        else:
            assert_shape(planes, [ws.shape[0], 3, self.config.plane_channels, None, None], "planes")
        rendered = self.renderer(planes, self.decoder, c[:, :25].to(planes.dtype), res,
                                 grid_sample=grid_sample_gradfix, generator=generator)
        features = rendered["features"]
        image_raw = features[:, :self.img_channels]
        sr_kwargs = {k: v for k, v in synthesis_kwargs.items() if k != "noise_mode"}
        image = self.superresolution(image_raw, features, ws[:, :self.num_ws_eg3d],
                                     noise_mode=self.config.superres.noise_mode, **sr_kwargs)
        out = {"image": image, "image_raw": image_raw, "image_depth": rendered["depth"]}
        if return_planes:
            out["planes"] = planes
        return out

    def forward(self, z: torch.Tensor, c: torch.Tensor, flame: FlameInput, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, neural_rendering_resolution: Optional[int] = None,
                update_emas: bool = False, return_planes: bool = False, **synthesis_kwargs) -> Dict[str, torch.Tensor]:
        """z (B, z_dim), c (B, 25), FLAME input -> `synthesis` outputs (mapping conditioned on c)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, c, flame, neural_rendering_resolution=neural_rendering_resolution,
                              update_emas=update_emas, return_planes=return_planes, **synthesis_kwargs)

    # ------------------------------------------------------------------ density queries

    def sample_mixed(self, points: torch.Tensor, ws: torch.Tensor, flame: FlameInput,
                     planes: Optional[torch.Tensor] = None, update_emas: bool = False,
                     **synthesis_kwargs) -> Dict[str, torch.Tensor]:
        """Decode world points (B, M, 3) for given ws -> dict(sigma (B, M, 1) raw, features (B, M, F)).

        Used by the density regulariser and mesh export; `planes` skips the synthesis.
        """
        if planes is None:
            planes = self.synthesize_planes(ws, flame, update_emas=update_emas, **synthesis_kwargs)
        assert_shape(points, [planes.shape[0], None, 3], "points")
        return self.renderer.query(planes, self.decoder, points, grid_sample=grid_sample_gradfix)

    def sample(self, points: torch.Tensor, z: torch.Tensor, c: torch.Tensor, flame: FlameInput,
               truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None, update_emas: bool = False,
               **synthesis_kwargs) -> Dict[str, torch.Tensor]:
        """`sample_mixed` from z and c (mapping first)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.sample_mixed(points, ws, flame, update_emas=update_emas, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
                f"img_resolution={self.img_resolution}, neural_rendering_resolution={self.neural_rendering_resolution}")


def parameter_counts(module: Next3DGenerator) -> Dict[str, Any]:
    """Parameter counts per top-level module and in total."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()}
    counts["total"] = sum(counts.values())
    return counts
