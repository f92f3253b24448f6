"""FLAME folder loading: chumpy-free pickles, refusal of foreign globals, errors, real DECA assets."""

from __future__ import annotations

import pickle
import shutil
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch
from PIL import Image

from next3d.flame import FLAME, FlameFilesError, load_flame_model
from next3d.flame.files import load_flame_folder
from next3d.flame.obj_io import read_obj, write_obj
from next3d.flame.pickles import load_model_pickle, load_pickled_npy
from next3d.safe_pickle import UnsafePickleError


def _fake_chumpy_pickle(data: dict, protocol: int = 2) -> bytes:
    """Pickle `data` with ndarray values wrapped in a fake chumpy.ch.Ch (module exists only while pickling)."""
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    mod.Ch = Ch
    parent = types.ModuleType("chumpy")
    parent.ch = mod
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = parent, mod
    try:
        wrapped = {k: Ch(v) if k in ("v_template", "shapedirs", "posedirs") else v for k, v in data.items()}
        return pickle.dumps(wrapped, protocol=protocol)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _tiny_model(num_verts=8, num_shape=4, num_expr=3, seed=0):
    """A cube mesh in FLAME's pickle layout (arrays only)."""
    rng = np.random.default_rng(seed)
    v = np.array([[x, y, z] for x in (-0.05, 0.05) for y in (-0.05, 0.05) for z in (-0.05, 0.05)])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    reg = np.zeros((5, num_verts))
    for j in range(5):
        reg[j, [j, (j + 1) % num_verts]] = 0.5
    weights = rng.random((num_verts, 5))
    return {
        "v_template": v, "f": f.astype(np.uint32),
        "shapedirs": rng.normal(size=(num_verts, 3, num_shape + num_expr)) * 1e-3,
        "posedirs": rng.normal(size=(num_verts, 3, 36)) * 1e-4,
        "J_regressor": scipy.sparse.csc_matrix(reg),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
        "num_shape": num_shape, "num_expression": num_expr,
    }


def _write_folder(folder, model_bytes, faces, num_verts, num_faces_total=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "generic_model.pkl").write_bytes(model_bytes)
    v = np.zeros((num_verts, 3))
    uv = np.random.default_rng(1).random((num_verts, 2))
    write_obj(folder / "head_template.obj", v, faces, uv, faces)
    n = len(faces)
    lmk = {"full_lmk_faces_idx": (np.arange(68) % n)[None], "full_lmk_bary_coords": np.full((1, 68, 3), 1 / 3)}
    np.save(folder / "landmark_embedding.npy", np.array(lmk, dtype=object), allow_pickle=True)
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(folder / "uv_face_eye_mask.png")


def test_chumpy_pickle_loads_without_chumpy(tmp_path):
    assert "chumpy" not in sys.modules
    model = _tiny_model()
    raw = _fake_chumpy_pickle(model)
    assert b"chumpy.ch" in raw and b"csc_matrix" in raw
    loaded = load_model_pickle(_save(tmp_path / "m.pkl", raw))
    np.testing.assert_allclose(loaded["v_template"], model["v_template"])
    np.testing.assert_allclose(loaded["shapedirs"], model["shapedirs"])
    np.testing.assert_allclose(loaded["J_regressor"], model["J_regressor"].toarray())
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules


@pytest.mark.parametrize("protocol", [0, 2])
def test_flame_folder_with_chumpy_model_runs(tmp_path, protocol):
    model = _tiny_model()
    _write_folder(tmp_path / "flame", _fake_chumpy_pickle(model, protocol), model["f"].astype(np.int64), 8)
    data = load_flame_folder(tmp_path / "flame")
    assert (data.num_shape, data.num_expression, data.num_vertices) == (4, 3, 8)
    assert data.parents.tolist() == [-1, 0, 1, 1, 1]
    layer = FLAME(data)
    out = layer(shape=torch.ones(2, 4), expression=torch.ones(2, 3))
    expected = model["v_template"] + model["shapedirs"].sum(-1)
    np.testing.assert_allclose(out.vertices[0].numpy(), expected, atol=1e-6)
    assert out.landmarks.shape == (2, 68, 3) and out.joints.shape == (2, 5, 3)
    assert layer.uv_mask.shape == (1, 1, 16, 16) and float(layer.uv_mask.min()) == 1.0


def _save(path, raw):
    path.write_bytes(raw)
    return path


def test_foreign_global_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    raw = pickle.dumps({"v_template": Evil()}, protocol=2)
    with pytest.raises(UnsafePickleError, match="system"):
        load_model_pickle(_save(tmp_path / "evil.pkl", raw))
    # The same through the folder loader: the error names the file.
    model = _tiny_model()
    _write_folder(tmp_path / "flame", raw, model["f"].astype(np.int64), 8)
    with pytest.raises(FlameFilesError, match="generic_model.pkl"):
        load_flame_folder(tmp_path / "flame")


def test_landmark_npy_refuses_foreign_global(tmp_path):
    class Evil:
        def __reduce__(self):
            return (shutil.rmtree, ("/nonexistent",))

    np.save(tmp_path / "x.npy", np.array({"a": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(UnsafePickleError, match="rmtree"):
        load_pickled_npy(tmp_path / "x.npy", "landmarks")


def test_missing_and_malformed_files_are_named(tmp_path):
    model = _tiny_model()
    folder = tmp_path / "flame"
    _write_folder(folder, _fake_chumpy_pickle(model), model["f"].astype(np.int64), 8)
    (folder / "uv_face_eye_mask.png").unlink()
    with pytest.raises(FlameFilesError, match=r"uv_face_eye_mask\.png is missing.*layout is documented"):
        load_flame_folder(folder)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "uv_face_eye_mask.png")
    (folder / "landmark_embedding.npy").unlink()
    with pytest.raises(FlameFilesError, match=r"landmark_embedding\.npy is missing"):
        load_flame_folder(folder)
    bad = dict(model)
    bad["weights"] = bad["weights"][:, :4]
    (folder / "generic_model.pkl").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(FlameFilesError, match=r"'weights' has shape \(8, 4\), expected \(8, 5\)"):
        load_flame_folder(folder)
    (folder / "generic_model.pkl").unlink()
    with pytest.raises(FlameFilesError, match="generic_model.pkl, flame2023_Open.pkl"):
        load_flame_folder(folder)
    with pytest.raises(FlameFilesError, match="does not exist"):
        load_flame_model(tmp_path / "nowhere")


def test_env_var_selects_folder(tmp_path, monkeypatch):
    model = _tiny_model()
    _write_folder(tmp_path / "flame", _fake_chumpy_pickle(model), model["f"].astype(np.int64), 8)
    monkeypatch.setenv("NEXT3D_FLAME_DIR", str(tmp_path / "flame"))
    assert load_flame_model().num_vertices == 8


def test_deca_landmark_embedding_with_torch_tensors(flame_deca_dir):
    d = load_pickled_npy(flame_deca_dir / "landmark_embedding.npy", "deca")
    assert d["dynamic_lmk_faces_idx"].shape == (79, 17) and d["dynamic_lmk_faces_idx"].dtype == np.int64
    assert d["dynamic_lmk_bary_coords"].shape == (79, 17, 3)
    np.testing.assert_allclose(d["dynamic_lmk_bary_coords"].sum(-1), 1.0, atol=1e-5)
    assert d["full_lmk_faces_idx"].shape == (1, 68)
    assert 0 <= d["dynamic_lmk_faces_idx"].min() and d["dynamic_lmk_faces_idx"].max() < 9976


def test_real_flame_topology_folder(flame_deca_dir, tmp_path):
    """DECA template + embedding + mask with a synthetic model: the layer's landmarks keep their meaning."""
    tmpl = read_obj(flame_deca_dir / "head_template.obj")
    v = tmpl.vertices
    num_verts = len(v)
    assert num_verts == 5023
    rng = np.random.default_rng(0)
    order = np.argsort(v[:, 1])
    reg = np.zeros((5, num_verts))
    for j, group in enumerate(np.array_split(order, 5)):
        reg[j, group] = 1.0 / len(group)
    weights = np.zeros((num_verts, 5))
    weights[:, 1] = 1.0
    model = {
        "v_template": v, "f": tmpl.faces.astype(np.uint32),
        "shapedirs": rng.normal(size=(num_verts, 3, 400)) * 1e-5,
        "posedirs": np.zeros((num_verts, 3, 36)), "J_regressor": scipy.sparse.csc_matrix(reg),
        "weights": weights, "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]]),
    }
    folder = tmp_path / "flame"
    folder.mkdir()
    (folder / "generic_model.pkl").write_bytes(_fake_chumpy_pickle(model))
    for name in ("head_template.obj", "landmark_embedding.npy", "uv_face_eye_mask.png"):
        shutil.copy(flame_deca_dir / name, folder / name)
    data = load_flame_folder(folder)
    assert (data.num_shape, data.num_expression) == (300, 100)
    layer = FLAME(data)
    out = layer(batch_size=1)
    lmk = out.landmarks[0].numpy()
    nose_tip_vertex = v[np.argmax(v[:, 2])]
    assert np.linalg.norm(lmk[30] - nose_tip_vertex) < 0.015
    # Same semantics as Next3D's demo landmarks (a different expression): compare after centring.
    demo = np.loadtxt(flame_deca_dir / "demo_next3d_kpt.txt")
    err = np.linalg.norm((lmk - lmk.mean(0)) - (demo - demo.mean(0)), axis=1)
    assert np.median(err) < 0.01 and err.max() < 0.03
    # The mask is white at the nose tip's UV (row 0 = top = v 1) and black at a corner of the face region.
    corner = np.where(tmpl.faces == np.argmax(v[:, 2]))
    uv = data.uv_coords[data.uv_faces[corner][0]]
    size = data.uv_mask.shape[0]
    assert data.uv_mask[int((1 - uv[1]) * size), int(uv[0] * size)] > 0.5
    # Yaw picks another contour row: landmarks 0..16 move, 17.. do not.
    turned = layer(neck=torch.tensor([[0.0, 0.4, 0.0]]))
    still = layer(neck=torch.tensor([[0.0, 0.0, 0.0]]))
    assert turned.landmarks.shape == (1, 68, 3)
    static_out = FLAME(data, dynamic_contour=False)(neck=torch.tensor([[0.0, 0.4, 0.0]]))
    assert not torch.allclose(turned.landmarks[0, :17], static_out.landmarks[0, :17])
    torch.testing.assert_close(turned.landmarks[0, 17:], static_out.landmarks[0, 17:])
    torch.testing.assert_close(still.landmarks, out.landmarks)
