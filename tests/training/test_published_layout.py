"""The published Next3D layout (images + per-image .obj + 68x3 landmarks + dataset_mead.json)."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import helpers
from next3d.config import topology_hash
from next3d.flame.obj_io import write_obj
from next3d.render.cameras import orbit_label
from training.dataset import DatasetError, ImageDataset, mirror_camera, project_landmarks
from training.dataset_mirror import IBUG_MIRROR


def _write_published(root, meshes, landmarks, cameras, faces, uv_coords, uv_faces, kpt_suffix="_kpt.txt"):
    root.mkdir(parents=True)
    labels = []
    for i, (verts, lmk, cam) in enumerate(zip(meshes, landmarks, cameras)):
        name = f"{i:05d}.png"
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(root / name)
        write_obj(root / f"{i:05d}.obj", verts, faces, uv_coords, uv_faces)
        np.savetxt(root / f"{i:05d}{kpt_suffix}", lmk)
        labels.append([name, [float(x) for x in cam]])
    (root / "dataset_mead.json").write_text(json.dumps({"labels": labels}))
    return root


@pytest.fixture(scope="module")
def published(tmp_path_factory, flame_layer, head_data):
    rng = np.random.RandomState(0)
    meshes, lmks = [], []
    for _ in range(3):
        with torch.no_grad():
            out = flame_layer(expression=torch.from_numpy(rng.randn(1, 24).astype(np.float32) * 0.5))
        meshes.append(out.vertices[0].numpy())
        lmks.append(out.landmarks[0].numpy())
    cams = orbit_label(torch.tensor([0.0, 0.3, -0.4]), torch.tensor([0.0, 0.1, -0.1])).numpy()
    root = _write_published(tmp_path_factory.mktemp("pub") / "mead", meshes, lmks, cams, head_data.faces,
                            head_data.uv_coords, head_data.uv_faces)
    return root, meshes, lmks, cams


def test_reads_meshes_and_labels(published, head_data):
    root, meshes, lmks, cams = published
    ds = ImageDataset(root)
    assert len(ds) == 3 and ds.resolution == 32 and ds.layout == "published" and not ds.has_flame_params
    assert ds.head_topology == topology_hash(head_data.faces, head_data.uv_faces, head_data.uv_coords.shape[0])
    np.testing.assert_allclose(ds.cameras, cams, atol=1e-6)
    item = ds[1]
    assert "flame" not in item and item["vertices"].shape == (head_data.num_vertices, 3)
    np.testing.assert_allclose(item["vertices"].numpy(), meshes[1], atol=2e-6)
    np.testing.assert_allclose(item["landmarks_3d"].numpy(), lmks[1], atol=1e-6)
    np.testing.assert_allclose(item["landmarks_2d"].numpy(), project_landmarks(lmks[1], cams[1], 32), atol=1e-4)
    assert int(item["image"][0, 0, 0]) == 40
    with pytest.raises(DatasetError, match="published Next3D layout has meshes, not FLAME parameters"):
        ds.flame_params(0)


def test_zip_and_flip(published, tmp_path, head_data):
    root = published[0]
    zpath = tmp_path / "mead.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(root.iterdir()):
            zf.write(p, p.name)
    a, b = ImageDataset(root), ImageDataset(zpath)
    for i in range(3):
        for k in ("image", "vertices", "landmarks_3d", "landmarks_2d", "camera"):
            assert torch.equal(a[i][k], b[i][k]), k
    f = ImageDataset(root, xflip=True, head_data=head_data)
    assert len(f) == 6
    item, flipped = f[2], f[5]
    np.testing.assert_allclose(flipped["camera"].numpy(), mirror_camera(item["camera"].numpy()))
    np.testing.assert_allclose(flipped["landmarks_3d"].numpy(), item["landmarks_3d"].numpy()[IBUG_MIRROR] * [-1, 1, 1])
    # The flipped landmarks project to the mirrored pixel positions.
    np.testing.assert_allclose(flipped["landmarks_2d"][:, 0].numpy(), 32 - item["landmarks_2d"][IBUG_MIRROR, 0].numpy(),
                               atol=1e-3)
    assert torch.equal(flipped["image"], item["image"].flip(-1))


def test_bad_published(published, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(published[0], root)
    (root / "00001_kpt.txt").write_text("1 2 3\n")
    with pytest.raises(DatasetError, match=r"00001_kpt.txt: expected 68 rows of x y z, got shape \(1, 3\)"):
        ImageDataset(root)[1]
    (root / "00002.obj").unlink()
    with pytest.raises(DatasetError, match=r"00002.obj: missing \(every image needs its FLAME mesh\)"):
        ImageDataset(root)
    doc = json.loads((root / "dataset_mead.json").read_text())
    doc["labels"][0][1] = doc["labels"][0][1][:16]
    (root / "dataset_mead.json").write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"labels\[0\] \(00000.png\): the camera must be 25 finite numbers, got 16"):
        ImageDataset(root)


def test_real_flame_demo_mesh(tmp_path):
    """Next3D's own demo mesh and landmarks (../shared/flame_deca), read as a one-item set."""
    if not helpers.FLAME_DECA.is_dir():
        pytest.skip("../shared/flame_deca is not present")
    from next3d.flame.obj_io import read_obj

    mesh = read_obj(helpers.FLAME_DECA / "demo_next3d.obj")
    lmk = np.loadtxt(helpers.FLAME_DECA / "demo_next3d_kpt.txt")
    root = _write_published(tmp_path / "demo", [mesh.vertices], [lmk], orbit_label(0.0, 0.0).numpy(), mesh.faces,
                            mesh.uv_coords, mesh.uv_faces)
    ds = ImageDataset(root)
    assert ds[0]["vertices"].shape == (5023, 3)
    px = ds[0]["landmarks_2d"].numpy()
    assert (px > 0).all() and (px < 32).all()  # the face sits inside a frontal FFHQ-camera image
    assert abs(px[:, 0].mean() - 16) < 3
