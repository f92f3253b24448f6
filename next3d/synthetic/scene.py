"""One synthetic item's parameters (`SceneParams`, drawn by `sample_scene`) and its meshes (`build_meshes`).

`sample_scene(dist, assets, seed, index)` draws, from `item_rng(seed, index)` only: the camera,
the FLAME parameters (gaze may look at that camera), hair, skin and face appearance, mouth
colours, body, lighting, background and sensor noise. `build_meshes` poses the FLAME head and
every other part (hair and upper teeth on the head joint, lower teeth and tongue on the jaw, the
body on the root) and concatenates them into one mesh with per-face classes and materials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

import numpy as np
import torch

from next3d.flame.landmarks import vertices_to_landmarks
from next3d.render.cameras import split_label
from next3d.render.triplane_coords import world_to_flame
from next3d.synthetic import appearance as app_mod
from next3d.synthetic import background as bg_mod
from next3d.synthetic import body as body_mod
from next3d.synthetic import hair as hair_mod
from next3d.synthetic import lighting as light_mod
from next3d.synthetic import mouth as mouth_mod
from next3d.synthetic.distributions import SynthDistributions, item_rng, sample_camera, sample_flame, uniform
from next3d.synthetic.head import EYES, MOUTH, HeadAssets, blend_transforms
from next3d.synthetic.parts import Part

MAT_HEAD, MAT_HAIR, MAT_VERTEX = 0, 1, 2


@dataclass
class SceneParams:
    """flame: FLAME parameters (float32 arrays, FLAME.forward keyword names); camera: label (25,)
    float32; appearance: JSON-able dict with the sub-dicts skin, hair, body, mouth, lighting,
    background, camera (angles), flame_info and sensor_noise."""

    flame: Dict[str, np.ndarray]
    camera: np.ndarray
    appearance: Dict


def sample_scene(dist: SynthDistributions, assets: HeadAssets, seed: int, index: int) -> SceneParams:
    rng = item_rng(seed, index)
    cam = sample_camera(dist, rng)
    c2w, _ = split_label(torch.as_tensor(cam.label)[None])
    cam_flame = world_to_flame(c2w[0, :3, 3].double()).numpy()
    eye_centre = assets.template[np.concatenate(assets.eye_vertices)].mean(0)
    f = assets.flame
    builtin = assets.head_model == "builtin"
    num_shape = f.num_shape if builtin else min(dist.flame_num_shape, f.num_shape)
    num_expr = f.num_expression if builtin else min(dist.flame_num_expression, f.num_expression)
    flame, info = sample_flame(dist, rng, num_shape, num_expr, assets.expression_names, cam_flame, eye_centre)
    hair_colour, hair_rgb = app_mod.sample_hair_colour(dist, rng)
    hair = hair_mod.sample_hair(dist, rng, hair_colour, hair_rgb)
    skin = app_mod.sample_appearance(dist, rng, hair_rgb)
    mouth = {"teeth_rgb": [float(v) for v in app_mod.srgb_to_linear(np.clip([225, 212, 190] + rng.normal(0, 10, 3), 0, 255))],
             "tongue_rgb": [float(v) for v in app_mod.srgb_to_linear(np.clip([178, 86, 86] + rng.normal(0, 12, 3), 0, 255))]}
    body = body_mod.sample_body(dist, rng)
    light = light_mod.sample_lighting(dist, rng)
    bg = bg_mod.sample_background(dist, rng)
    appearance = {"skin": skin, "hair": hair, "body": body, "mouth": mouth, "lighting": light, "background": bg,
                  "camera": {"yaw_deg": cam.yaw_deg, "pitch_deg": cam.pitch_deg, "roll_deg": cam.roll_deg},
                  "flame_info": info, "sensor_noise": uniform(rng, dist.sensor_noise_range),
                  "noise_seed": int(rng.integers(0, 2 ** 31 - 1))}
    return SceneParams(flame=flame, camera=cam.label, appearance=appearance)


@dataclass
class SceneMeshes:
    """The posed scene in FLAME space: vertices (N, 3); faces (M, 3); face_cls (M,) uint8; face_part (M,); face_mat (M,)
    int64 (MAT_*); face_shininess (M,); face_backdim (M,); vertex attributes albedo (N, 3), specular (N,),
    tangent (N, 3) (zero where none); uv_corners (M, 3, 2); textures per material; flame_vertices (V, 3)
    and flame_landmarks (68, 3) of the posed FLAME head; num_flame_faces."""

    vertices: torch.Tensor
    faces: torch.Tensor
    face_cls: torch.Tensor
    face_part: torch.Tensor  # (M,) int64: 0 the FLAME head, 1.. the parts in order (hair, body, mouth parts)
    face_mat: torch.Tensor
    face_shininess: torch.Tensor
    face_backdim: torch.Tensor
    albedo: torch.Tensor
    specular: torch.Tensor
    tangent: torch.Tensor
    eye_local: torch.Tensor  # (N, 3) eyeball points in their eyeball's rest frame (0 elsewhere)
    uv_corners: torch.Tensor
    head_texture: torch.Tensor  # (4, S, S): albedo RGB + specular
    hair_texture: torch.Tensor  # (4, h, w)
    flame_vertices: torch.Tensor
    flame_landmarks: torch.Tensor
    num_flame_faces: int


def texture_size(resolution: int) -> int:
    """Side of the head's UV texture for an output resolution (about one texel per output pixel)."""
    return int(min(512, max(128, resolution)))


def build_meshes(assets: HeadAssets, scene: SceneParams, resolution: int) -> SceneMeshes:
    f = assets.flame
    p = {k: torch.as_tensor(v, dtype=torch.float32)[None] for k, v in scene.flame.items()}
    out = f(**p)
    verts = out.vertices[0]
    transforms = assets.pose_transforms(p["shape"], p["expression"], p)[0]
    rest = assets.rest_vertices(p["shape"])  # (1, V, 3) shape only: hair, teeth, body are bone/skull-bound
    rest_lmk = vertices_to_landmarks(rest, f.faces, f.lmk_faces[None], f.lmk_bary[None])[0].double().numpy()
    rest_np = rest[0].double().numpy()
    app = scene.appearance
    skin_vertices = np.ones(len(rest_np), bool)
    skin_vertices[np.concatenate(assets.eye_vertices)] = False
    mouth_faces = assets.faces.numpy()[assets.face_class == MOUTH]
    skin_vertices[np.unique(mouth_faces)] = False
    parts: List[Part] = []
    hair = hair_mod.hair_part(rest_np, skin_vertices, rest_lmk, app["hair"], texture_size=128)
    if hair is not None:
        parts.append(hair)
    parts.append(body_mod.body_part(rest_np, app["skin"]["skin_rgb"], app["body"]))
    parts += mouth_mod.mouth_parts(rest_lmk, app["mouth"])

    num_v = verts.shape[0]
    num_f = f.faces.shape[0]
    all_v, all_f = [verts], [f.faces]
    cls = [torch.as_tensor(assets.face_class, dtype=torch.uint8)]
    part_id = [torch.zeros(num_f, dtype=torch.long)]
    mat = [torch.full((num_f,), MAT_HEAD)]
    shin = [torch.where(torch.as_tensor(assets.face_class == EYES), 300.0, 12.0 / (0.2 + app["skin"]["roughness"]))]
    backdim = [torch.ones(num_f)]
    albedo, spec, tangent = [torch.zeros(num_v, 3)], [torch.zeros(num_v)], [torch.zeros(num_v, 3)]
    uvs = [assets.uv_corners]
    eye_local = torch.zeros(num_v, 3)
    for ids in assets.eye_vertices:
        if len(ids):
            t = torch.as_tensor(assets.template[ids], dtype=torch.float32)
            eye_local[torch.as_tensor(ids)] = t - t.mean(0)
    offset = num_v
    hair_tex = torch.zeros(4, 2, 2)
    for k, part in enumerate(parts):
        n, m = part.vertices.shape[0], part.faces.shape[0]
        part_id.append(torch.full((m,), k + 1, dtype=torch.long))
        all_v.append(blend_transforms(transforms, part.weights, part.vertices))
        all_f.append(part.faces + offset)
        cls.append(torch.full((m,), part.cls, dtype=torch.uint8))
        shin.append(torch.full((m,), part.shininess))
        backdim.append(torch.full((m,), part.backface_dim))
        if part.texture is not None:
            mat.append(torch.full((m,), MAT_HAIR))
            uvs.append(part.uv_corners)
            albedo.append(torch.zeros(n, 3))
            hair_tex = torch.cat([part.texture, torch.zeros(1, *part.texture.shape[1:])], 0)
        else:
            mat.append(torch.full((m,), MAT_VERTEX))
            uvs.append(torch.zeros(m, 3, 2))
            albedo.append(part.albedo)
        spec.append(part.specular if part.specular is not None else torch.zeros(n))
        if part.tangent is not None:
            rot = transforms[1, :3, :3]
            tangent.append(part.tangent @ rot.T)
        else:
            tangent.append(torch.zeros(n, 3))
        offset += n
    tex_rgb, tex_spec = app_mod.skin_texture(assets, app["skin"], texture_size(resolution))
    return SceneMeshes(
        vertices=torch.cat(all_v), faces=torch.cat(all_f).long(), face_cls=torch.cat(cls), face_part=torch.cat(part_id), face_mat=torch.cat(mat),
        face_shininess=torch.cat(shin).float(), face_backdim=torch.cat(backdim), albedo=torch.cat(albedo),
        specular=torch.cat(spec), tangent=torch.cat(tangent),
        eye_local=torch.cat([eye_local, torch.zeros(offset - num_v, 3)]), uv_corners=torch.cat(uvs),
        head_texture=torch.cat([tex_rgb, tex_spec[None]], 0), hair_texture=hair_tex,
        flame_vertices=verts, flame_landmarks=out.landmarks[0], num_flame_faces=num_f)
