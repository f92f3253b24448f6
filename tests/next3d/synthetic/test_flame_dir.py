"""`--flame-dir` with the real FLAME topology (../shared/flame_deca; skips without it).

That folder holds DECA's template (5023 vertices, its UV layout), landmark embedding and UV mask,
but no FLAME model pickle (licensed separately). So: (1) the command refuses the folder itself with
a one-line error naming the missing model file; (2) the renderer runs on the real topology with a
stand-in model written by the test: the real template, UVs and landmark embedding, a rig whose
joints and skinning weights are placed from the template's geometry (eyeballs are FLAME's vertices
3931..5022), a few smooth shape/expression fields and no pose correctives. It checks what is
topology-specific in the synthetic renderer (face classes, UV bake, hair, mouth parts, ground
truth), not FLAME's bases.
"""

from __future__ import annotations

import pickle

import numpy as np
import torch
from click.testing import CliRunner

from next3d.render.cameras import project
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from next3d.synthetic.head import EYES, HAIR, SKIN, load_head_assets
from next3d.synthetic.render import render_item

FLAME_EYES = ((3931, 4477), (4477, 5023))  # left (+x), right eyeball vertex ranges of FLAME


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _vertices_and_faces(obj_path):
    """(V, 3) vertices and (F, 3) 0-based faces of an OBJ's `v` and `f v/vt` lines (a quick parse)."""
    verts, faces = [], []
    for line in obj_path.read_text().splitlines():
        if line.startswith("v "):
            verts.append(line.split()[1:4])
        elif line.startswith("f "):
            faces.append([int(tok.split("/")[0]) - 1 for tok in line.split()[1:4]])
    return np.asarray(verts, np.float64), np.asarray(faces, np.int64)


def _stand_in_folder(src, dst, builtin):
    """A FLAME folder in dst: links to src's template, embedding and mask plus a stand-in model pickle."""
    dst.mkdir()
    for name in ("head_template.obj", "landmark_embedding.npy", "uv_face_eye_mask.png"):
        (dst / name).symlink_to(src / name)
    v, faces = _vertices_and_faces(src / "head_template.obj")
    eyes = [np.arange(a, b) for a, b in FLAME_EYES]
    # DECA's template sits 1.5 m up; move it so its eyeballs are where the built-in head's are.
    ref_eye = builtin.template[np.concatenate(builtin.eye_vertices)].mean(0)
    v = v - v[np.concatenate(eyes)].mean(0) + ref_eye
    x, y, z = v.T
    eye_c = [v[e].mean(0) for e in eyes]
    y_eye, y_low = eye_c[0][1], y.min()
    y_mouth = y_eye - 0.065
    w = np.zeros((len(v), 5))
    root = _sig((y_low + 0.03 - y) / 0.008)
    jaw = _sig((y_mouth - y) / 0.006) * _sig((z - 0.0) / 0.01) * (1 - root)
    w[:, 0], w[:, 2] = root, jaw
    w[:, 1] = 1 - root - jaw
    for k, e in enumerate(eyes):
        w[e] = 0.0
        w[e, 3 + k] = 1.0
    centres = [v[y < y_low + 0.01].mean(0), np.array([0.0, y_mouth - 0.02, -0.03]),
               np.array([0.0, y_mouth + 0.005, -0.02]), eye_c[0], eye_c[1]]
    j_reg = np.zeros((5, len(v)))
    for k, c in enumerate(centres):  # each joint: the mean of the 8 vertices nearest to its place
        near = np.argsort(np.linalg.norm(v - c, axis=1))[:8]
        j_reg[k, near] = 1.0 / 8
    shape_fields = [v - v.mean(0), np.stack([x, 0 * y, 0 * z], 1), np.stack([0 * x, y - y_eye, 0 * z], 1)]
    expr_fields = [np.stack([0 * x, -0.004 * np.exp(-((x / 0.03) ** 2 + ((y - y_mouth) / 0.02) ** 2)), 0 * z], 1)]
    shapedirs = np.stack([f * 0.05 for f in shape_fields] + expr_fields, axis=2)  # metres per unit
    model = {"v_template": v, "f": faces, "shapedirs": shapedirs,
             "num_shape": len(shape_fields), "num_expression": len(expr_fields),
             "posedirs": np.zeros((len(v), 3, 36)), "J_regressor": j_reg, "weights": w,
             "kintree_table": np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]])}
    with open(dst / "generic_model.pkl", "wb") as fh:
        pickle.dump(model, fh)
    return dst


def test_the_folder_without_a_model_is_a_one_line_error(flame_deca_dir, tmp_path):
    from next3d.cli import main

    out = tmp_path / "set"
    result = CliRunner().invoke(main, ["dataset", "synth", "--out", str(out), "--count", "2", "--resolution", "64",
                                       "--flame-dir", str(flame_deca_dir)])
    assert result.exit_code == 1
    assert "no model file" in result.output and "generic_model.pkl" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob("set*"))


def test_renders_on_the_real_flame_topology(flame_deca_dir, tmp_path, assets):
    folder = _stand_in_folder(flame_deca_dir, tmp_path / "flame", assets)
    flame_assets = load_head_assets(folder)
    assert flame_assets.head_model == "flame" and flame_assets.num_vertices == 5023
    assert flame_assets.faces.shape == (9976, 3)
    assert (flame_assets.face_class == EYES).sum() > 1000  # both eyeballs
    res = 64
    item = render_item(None, 1, 5, res, assets=flame_assets)
    assert item.vertices.shape == (5023, 3) and item.image.shape == (res, res, 3)
    assert (item.segmentation == SKIN).sum() > 0.1 * res * res
    assert item.appearance["hair"]["style"] == "bald" or (item.segmentation == HAIR).sum() > 20
    # Ground truth against a re-render of the stored parameters on the FLAME mesh alone.
    f = flame_assets.flame
    with torch.no_grad():
        out = f(**{k: torch.as_tensor(val)[None] for k, val in item.flame.items()})
    assert np.allclose(out.vertices[0].numpy(), item.vertices, atol=1e-6)
    c = torch.as_tensor(item.camera)[None]
    lmk = project(flame_to_world(out.landmarks), c)[0, :, :2].numpy() * res
    assert np.abs(lmk - item.landmarks_2d).max() < 1e-3
    assert (lmk > 0).all() and (lmk < res).all()  # the face is in the frame
    ndc, w = perspective_from_label(flame_to_world(out.vertices), c)
    frags = rasterize(ndc, f.faces, res, clip_w=w, perspective_correct=True)
    on_head = np.isin(item.segmentation, [SKIN, EYES])
    assert frags.mask[0].numpy()[on_head].all()
    assert np.allclose(frags.depth[0].numpy()[on_head], item.depth[on_head], rtol=0, atol=1e-5)
    # The skin is painted from the UV texture: skin pixels are not one flat colour.
    skin_px = item.image[item.segmentation == SKIN].astype(float)
    assert skin_px.std(0).mean() > 2.0
