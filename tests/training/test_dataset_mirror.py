"""Horizontal flips: camera, FLAME parameters and landmarks mirror consistently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from next3d.render.cameras import orbit_label, project
from training.dataset import DatasetError, ImageDataset, mirror_camera, mirror_flame, project_landmarks
from training.dataset_mirror import IBUG_MIRROR, mirror_landmarks_2d


def test_ibug_permutation_is_an_involution():
    assert sorted(IBUG_MIRROR.tolist()) == list(range(68))
    assert (IBUG_MIRROR[IBUG_MIRROR] == np.arange(68)).all()
    assert IBUG_MIRROR[36] == 45 and IBUG_MIRROR[48] == 54 and IBUG_MIRROR[8] == 8 and IBUG_MIRROR[30] == 30


def test_mirror_camera_flips_the_image():
    c = orbit_label(torch.tensor([0.4, -0.3]), torch.tensor([0.1, -0.2]))
    cm = mirror_camera(c)
    torch.testing.assert_close(mirror_camera(cm), c)
    torch.testing.assert_close(cm, orbit_label(torch.tensor([-0.4, 0.3]), torch.tensor([0.1, -0.2])), atol=1e-6,
                               rtol=0)  # an orbit camera mirrors to the opposite yaw
    pts = torch.randn(2, 50, 3) * 0.3
    uv = project(pts, c)
    uvm = project(pts * torch.tensor([-1.0, 1.0, 1.0]), cm)
    torch.testing.assert_close(uvm[..., 0], 1 - uv[..., 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(uvm[..., 1:], uv[..., 1:], atol=1e-5, rtol=0)
    np.testing.assert_allclose(mirror_camera(c.numpy()), cm.numpy(), atol=1e-7)


def test_mirror_flame_pose_and_eyes(mirror_op):
    flame = {"neck": np.array([0.1, 0.2, 0.3]), "left_eye": np.array([1.0, 2, 3]), "right_eye": np.array([4.0, 5, 6]),
             "shape": np.ones(3), "expression": torch.ones(2, 5)}
    m = mirror_flame(flame, mirror_op)
    np.testing.assert_allclose(m["neck"], [0.1, -0.2, -0.3])
    np.testing.assert_allclose(m["left_eye"], [4, -5, -6])
    np.testing.assert_allclose(m["right_eye"], [1, -2, -3])
    assert m["shape"].shape == (60,) and m["expression"].shape == (2, 24) and isinstance(m["expression"], torch.Tensor)
    twice = mirror_flame(mirror_flame({"shape": np.eye(60)[:14]}, mirror_op), mirror_op)["shape"]
    np.testing.assert_allclose(twice, np.eye(60)[:14], atol=1e-4)  # mirroring twice is the identity


def test_mirror_operator_builtin(mirror_op, head_data):
    assert mirror_op.template_error < 1e-9
    v = mirror_op.vertex_map
    assert (v[v] == np.arange(len(v))).mean() > 0.999  # a pairing of left and right vertices
    tmpl = head_data.v_template
    np.testing.assert_allclose(tmpl[v] * [-1, 1, 1], tmpl, atol=1e-6)
    # Every component of the built-in head is symmetric, antisymmetric or has its partner: the
    # bases are closed, and mirroring twice is the identity.
    assert mirror_op.open_components()["shape"].size == 0 and mirror_op.open_components()["expression"].size == 0
    assert float(mirror_op.residual_shape.max()) < 1e-3 and float(mirror_op.residual_expression.max()) < 1e-3
    for m in (mirror_op.shape, mirror_op.expression):
        np.testing.assert_allclose(m @ m, np.eye(len(m)), atol=1e-3)
    names = __import__("next3d.flame.builtin.blendshapes", fromlist=["x"]).EXPRESSION_NAMES
    smile_l, smile_r = names.index("smile_left"), names.index("smile_right")
    assert mirror_op.expression[smile_r, smile_l] == pytest.approx(1.0, abs=1e-3)  # partners swap


@pytest.fixture(scope="module")
def one_sided_head(head_data):
    """The built-in head with shape component 0 replaced by a field on the subject's left side only
    (no mirror partner in the basis)."""
    from dataclasses import replace

    shapedirs = np.array(head_data.shapedirs, copy=True)
    left = head_data.v_template[:, 0] > 0.01
    shapedirs[:, :, 0] = 0.0
    shapedirs[left, 2, 0] = 0.003
    return replace(head_data, shapedirs=shapedirs)


def test_flipped_landmarks_match_reprojection(folder_set, head_data, flame_layer):
    """A flipped item's landmarks (the image-mirrored ones, iBUG-permuted) are where FLAME with
    the mirrored parameters, seen by the mirrored camera, puts them; images mirror too."""
    ds = ImageDataset(folder_set, split=None, xflip=True, head_data=head_data, load_ground_truth=True)
    assert len(ds) == 16 and ds.cameras.shape == (16, 25)
    errors = []
    for i in range(8):
        a, b = ds[i], ds[i + 8]
        assert b["flipped"] and not a["flipped"] and b["index"] == i + 8
        assert torch.equal(b["image"], a["image"].flip(-1))
        np.testing.assert_allclose(b["landmarks_2d"].numpy(), mirror_landmarks_2d(a["landmarks_2d"].numpy(), 64))
        with torch.no_grad():
            out = flame_layer(**{k: v[None] for k, v in b["flame"].items()})
        lmk = project_landmarks(out.landmarks[0].numpy(), b["camera"].numpy(), 64)
        errors.append(np.abs(lmk - b["landmarks_2d"].numpy()).max())
        np.testing.assert_allclose(out.vertices[0].numpy(), b["ground_truth"]["vertices"].numpy(), atol=1e-5)
        assert torch.equal(b["ground_truth"]["mask"], a["ground_truth"]["mask"].flip(-1))
        assert torch.equal(b["ground_truth"]["normals"][..., 0], -a["ground_truth"]["normals"][..., 0].flip(-1))
    assert max(errors) < 0.1, errors  # pixels at 64 px
    np.testing.assert_allclose(ds.cameras[8:], mirror_camera(ds.cameras[:8]))


def test_flip_refused_for_open_components(tmp_path, make_items, write_set, one_sided_head):
    from next3d.flame import FLAME
    from training.dataset_mirror import build_mirror_operator

    assert build_mirror_operator(one_sided_head).open_components()["shape"].tolist() == [0]
    layer = FLAME(one_sided_head)
    items = make_items(layer, 2, 32, seed=3, shape_ids=[1], expr_ids=[0])
    items[1]["flame"]["shape"][0] = 1.0  # 3 mm forward on one side: asymmetry the basis cannot mirror
    path = write_set(tmp_path / "asym", items, one_sided_head, 32, ground_truth=False)
    with pytest.raises(DatasetError, match=r"cannot flip: item 1 \(images/00000001.png\) would mirror with an RMS "
                                           r"vertex error of .* mm .*shape components \[0\] .*use xflip=False"):
        ImageDataset(path, split=None, xflip=True, head_data=one_sided_head)
    assert len(ImageDataset(path, split=None)) == 2


def test_flip_needs_matching_head(folder_set, head_data):
    from dataclasses import replace

    other = replace(head_data, faces=head_data.faces[::-1].copy())
    with pytest.raises(DatasetError, match=r"cannot flip: the set's head topology sha256:\w+ differs"):
        ImageDataset(folder_set, xflip=True, head_data=other)


def test_flip_needs_the_same_builtin_version(broken_version, head_data):
    with pytest.raises(DatasetError, match=r"made with built-in head v2-000000000000, the loaded one is v\d+-"):
        ImageDataset(broken_version, xflip=True, head_data=head_data)


@pytest.fixture
def broken_version(tmp_path, folder_set):
    import json
    import shutil

    dst = tmp_path / "v"
    shutil.copytree(folder_set, dst)
    doc = json.loads((dst / "dataset.json").read_text())
    doc["head_version"] = "v2-000000000000"
    (dst / "dataset.json").write_text(json.dumps(doc))
    return dst
