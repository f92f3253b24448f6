"""DatasetWriter: atomic output, deterministic bytes, validation of what is added."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from training.dataset import DatasetError, DatasetWriter, ImageDataset, head_identity


def _writer(out, head_data, **kw):
    return DatasetWriter(out, resolution=16, **head_identity(head_data), **kw)


def _add(writer, value=100, **kw):
    img = np.full((16, 16, 3), value, np.uint8)
    return writer.add(img, camera=np.eye(5).reshape(-1), flame={"expression": np.ones(4)},
                      landmarks_2d=np.zeros((68, 2)), **kw)


@pytest.mark.parametrize("name", ["set", "set.zip"])
def test_atomic_replace_and_crash(tmp_path, head_data, name):
    out = tmp_path / name
    with _writer(out, head_data) as w:
        assert _add(w) == 0 and _add(w, 50) == 1
        assert not out.exists() and (tmp_path / f"{name}.partial-{os.getpid()}").exists()
    assert len(ImageDataset(out, verify_images=True)) == 2
    with pytest.raises(RuntimeError):
        with _writer(out, head_data) as w:
            _add(w)
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no partial left, old set intact
    ds = ImageDataset(out)
    assert len(ds) == 2 and int(ds[1]["image"][0, 0, 0]) == 50
    with _writer(out, head_data) as w:
        _add(w, 7, name="seven")
    ds = ImageDataset(out)
    assert len(ds) == 1 and ds.image_name(0) == "images/seven.png" and int(ds[0]["image"].max()) == 7
    assert ds[0]["flame"]["expression"].tolist() == [1, 1, 1, 1] + [0] * 20  # zero-padded to the counts


def test_deterministic_bytes(tmp_path, head_data):
    for out in (tmp_path / "a.zip", tmp_path / "b.zip"):
        with _writer(out, head_data, source={"seed": 3}) as w:
            _add(w, ground_truth={"depth": np.arange(256, dtype=np.float32).reshape(16, 16)})
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    doc = json.loads(ImageDataset(tmp_path / "a.zip")._storage.read("dataset.json"))
    assert doc["format"] == "next3d-dataset" and doc["version"] == 1 and doc["source"] == {"seed": 3}
    assert doc["items"][0]["ground_truth"] == "gt/00000000.npz"


def test_jpeg(tmp_path, head_data):
    with _writer(tmp_path / "j", head_data, image_format="jpg") as w:
        _add(w, 120)
    ds = ImageDataset(tmp_path / "j")
    assert ds.image_name(0).endswith(".jpg") and abs(int(ds[0]["image"].float().mean()) - 120) <= 1


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(image=np.zeros((16, 15, 3), np.uint8)), r"image must be \(16, 16, 3\) uint8, got \(16, 15, 3\)"),
    (dict(image=np.zeros((16, 16, 3), np.float32)), r"uint8, got \(16, 16, 3\) float32"),
    (dict(camera=np.zeros(24)), r"camera must be 25 finite numbers"),
    (dict(flame={"jaw": np.zeros(2)}), r"flame.jaw must have shape \(3,\)"),
    (dict(flame={"shape": np.zeros(61)}), r"flame.shape must have shape \(<= 60,\)"),
    (dict(flame={"pose": np.zeros(15)}), r"unknown flame key\(s\) pose"),
    (dict(flame={"neck": [np.nan, 0, 0]}), r"flame.neck holds NaN"),
    (dict(landmarks_2d=np.zeros((68, 3))), r"landmarks_2d must be \(68, 2\)"),
    (dict(split="val"), r"split must be one of train, test"),
    (dict(name="a/b"), r"name must be a plain file stem"),
])
def test_add_rejects(tmp_path, head_data, kwargs, pattern):
    args = dict(image=np.zeros((16, 16, 3), np.uint8), camera=np.zeros(25), flame={}, landmarks_2d=np.zeros((68, 2)))
    args.update(kwargs)
    w = _writer(tmp_path / "x", head_data)
    with pytest.raises(DatasetError, match=r"x: item 0 .*" + pattern):
        w.add(args.pop("image"), **args)
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_empty_and_bad_head(tmp_path, head_data):
    w = _writer(tmp_path / "e", head_data)
    with pytest.raises(DatasetError, match="no items were added"):
        w.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="head_model must be one of builtin, flame"):
        DatasetWriter(tmp_path / "y", resolution=16, head_model="bfm", head_version=None, head_topology=None,
                      num_shape=1, num_expression=1)
