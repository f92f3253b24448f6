"""ImageDataset: round trip through the writer, folder == zip, workers, subsets, bad input."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
import torch

from training.dataset import DatasetError, ImageDataset


def _same(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), path
    else:
        assert a == b, path


def test_round_trip_values(folder_set, items64):
    ds = ImageDataset(folder_set, split=None, load_ground_truth=True)
    assert len(ds) == 8 and ds.resolution == 64 and ds.head_model == "builtin"
    assert ds.num_shape == 60 and ds.num_expression == 24 and ds.has_flame_params
    assert ds.head_topology.startswith("sha256:") and ds.head_version.startswith("v3-")
    assert ds.cameras.shape == (8, 25) and ds.cameras.dtype == np.float32
    for i in (0, 5):
        item, src = ds[i], items64[i]
        assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.uint8
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).numpy(), src["image"])  # PNG is lossless
        np.testing.assert_allclose(item["camera"].numpy(), src["camera"], atol=1e-6)
        np.testing.assert_allclose(item["landmarks_2d"].numpy(), src["landmarks_2d"], atol=1e-4)
        for k, v in src["flame"].items():
            assert item["flame"][k].dtype == torch.float32
            np.testing.assert_allclose(item["flame"][k].numpy(), v, atol=1e-6, err_msg=k)
        assert item["index"] == i and item["flipped"] is False
        gt = item["ground_truth"]
        assert gt["mask"].dtype == torch.uint8 and gt["depth"].shape == (64, 64)
        np.testing.assert_array_equal(gt["vertices"].numpy(), src["vertices"])


def test_splits_and_subset(folder_set):
    train, test = ImageDataset(folder_set), ImageDataset(folder_set, split="test")
    assert (len(train), len(test)) == (6, 2)
    names = {ImageDataset(folder_set, split=None).image_name(i) for i in range(8)}
    assert {train.image_name(i) for i in range(6)} | {test.image_name(i) for i in range(2)} == names
    a = ImageDataset(folder_set, max_size=3, subset_seed=1)
    b = ImageDataset(folder_set, max_size=3, subset_seed=1)
    c = ImageDataset(folder_set, max_size=3, subset_seed=2)
    pick = [a.image_name(i) for i in range(3)]
    assert len(a) == 3 and pick == [b.image_name(i) for i in range(3)]
    assert pick != [c.image_name(i) for i in range(3)]  # another seed, another subset (for these seeds)
    assert set(pick) <= {train.image_name(i) for i in range(6)}  # the subset stays inside the split
    assert len(ImageDataset(folder_set, max_size=100)) == 6


def test_zip_equals_folder(folder_set, zip_set):
    a = ImageDataset(folder_set, split=None, load_ground_truth=True)
    b = ImageDataset(zip_set, split=None, load_ground_truth=True)
    np.testing.assert_array_equal(a.cameras, b.cameras)
    for i in range(len(a)):
        _same(a[i], b[i])


def test_dataloader_workers_zip(zip_set, folder_set):
    ds = ImageDataset(zip_set, split=None)
    ds[0]  # opens the zip in this process; workers must open their own
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert len(batches) == 2 and batches[0]["image"].shape == (4, 3, 64, 64)
    ref = ImageDataset(folder_set, split=None)
    assert torch.equal(torch.cat([b["image"] for b in batches]), torch.stack([ref[i]["image"] for i in range(8)]))
    assert torch.equal(torch.cat([b["flame"]["expression"] for b in batches]),
                       torch.stack([ref[i]["flame"]["expression"] for i in range(8)]))


def test_resolution_and_topology_checks(folder_set):
    with pytest.raises(DatasetError, match=r"images are 64x64, expected 128x128"):
        ImageDataset(folder_set, resolution=128)
    assert ImageDataset(folder_set, resolution=64).resolution == 64
    with pytest.raises(DatasetError, match=r"head topology is sha256:\w+ \(builtin\), but sha256:0000 is expected"):
        ImageDataset(folder_set, expected_topology="sha256:0000")
    ds = ImageDataset(folder_set)
    ds.check_topology(ds.head_topology)
    with pytest.raises(DatasetError, match="labels of one head model do not fit another"):
        ds.check_topology("sha256:1234")


# -- bad input: every one a DatasetError at construction, naming the file --------------------


@pytest.fixture
def broken(tmp_path, folder_set):
    dst = tmp_path / "broken"
    shutil.copytree(folder_set, dst)
    return dst


def _edit_labels(path, fn):
    doc = json.loads((path / "dataset.json").read_text())
    fn(doc)
    (path / "dataset.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("edit, pattern", [
    (lambda d: d.update(version=2), r"dataset.json: format version 2 is not supported"),
    (lambda d: d.update(format="other"), r"'format' must be 'next3d-dataset'"),
    (lambda d: d["items"][2].update(camera=[0.0] * 24), r"items\[2\] \(images/00000002.png\): 'camera' must have 25"),
    (lambda d: d["items"][1]["flame"].update(jaw=[0.0, 0.0]), r"items\[1\] .*'flame.jaw' must have 3 numbers"),
    (lambda d: d["items"][1]["flame"].update(shape=[0.0] * 61), r"'flame.shape' must have at most 60 numbers"),
    (lambda d: d["items"][0]["flame"].update(pose=[0.0] * 3), r"unknown 'flame' key\(s\) pose"),
    (lambda d: d["items"][3].update(landmarks_2d=[[0, 0]] * 67), r"items\[3\] .*'landmarks_2d' must have shape \(68, 2\), got \(67, 2\)"),
    (lambda d: d["items"][0].update(split="val"), r"'split' must be one of train, test, got 'val'"),
    (lambda d: d["items"].append(dict(d["items"][0], image="images/00000099.png")), r"images/00000099.png: missing"),
    (lambda d: d["items"].append(dict(d["items"][0])), r"image images/00000000.png is listed twice"),
    (lambda d: d.update(resolution=128), r"00000000.png: 64x64 image, but dataset.json says 128x128"),
    (lambda d: d.update(head_model="bfm"), r"'head_model' must be one of builtin, flame"),
])
def test_bad_labels(broken, edit, pattern):
    _edit_labels(broken, edit)
    with pytest.raises(DatasetError, match=pattern):
        ImageDataset(broken, split=None)


def test_missing_and_corrupt_labels(broken, tmp_path):
    (broken / "dataset.json").write_text('{"format": "next3d-dataset", "version": 1,')
    with pytest.raises(DatasetError, match=r"broken/dataset.json: not valid JSON"):
        ImageDataset(broken)
    (broken / "dataset.json").unlink()
    with pytest.raises(DatasetError, match=r"no dataset.json .* and no dataset_mead.json"):
        ImageDataset(broken)
    with pytest.raises(DatasetError, match=r"no such folder or zip file"):
        ImageDataset(tmp_path / "nowhere")
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"x.zip: not a folder and not a zip file"):
        ImageDataset(tmp_path / "x.zip")


def test_truncated_and_unreadable_images(broken):
    img = broken / "images" / "00000004.png"
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"images/00000004.png: truncated PNG"):
        ImageDataset(broken, split=None)
    img.write_bytes(b"hello, not an image")
    with pytest.raises(DatasetError, match=r"images/00000004.png: not a readable image"):
        ImageDataset(broken, split=None)
    img.unlink()
    with pytest.raises(DatasetError, match=r"images/00000004.png: missing"):
        ImageDataset(broken, split=None)


def test_wrong_size_image_and_count_mismatch(broken, zip_set, tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 48)).save(broken / "images" / "00000001.png")
    with pytest.raises(DatasetError, match=r"00000001.png: 64x48 image, expected a square image"):
        ImageDataset(broken, split=None)
    # A zip with an image missing: the label count does not match the images.
    src = zipfile.ZipFile(zip_set)
    bad = tmp_path / "short.zip"
    with zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            if info.filename != "images/00000006.png":
                dst.writestr(info, src.read(info))
    with pytest.raises(DatasetError, match=r"short.zip:images/00000006.png: missing \(the labels list 8 images"):
        ImageDataset(bad, split=None)


def test_unlisted_images(broken):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(broken / "images" / "stray.png")
    with pytest.raises(DatasetError, match=r"dataset.json lists 8 images but images/ holds 9 \(1 not listed, e.g. "
                                           r"images/stray.png\); the labels do not match the images"):
        ImageDataset(broken)


def test_ground_truth_missing(broken):
    _edit_labels(broken, lambda d: d["items"][2].pop("ground_truth"))
    assert len(ImageDataset(broken, split=None)) == 8  # fine without asking for ground truth
    with pytest.raises(DatasetError, match=r"item 2 \(images/00000002.png\) has no 'ground_truth'"):
        ImageDataset(broken, split=None, load_ground_truth=True)


def test_bad_arguments(folder_set):
    with pytest.raises(DatasetError, match=r"split must be one of train, test or None, got 'val'"):
        ImageDataset(folder_set, split="val")
    with pytest.raises(DatasetError, match=r"max_size must be >= 1"):
        ImageDataset(folder_set, max_size=0)
    with pytest.raises(IndexError):
        ImageDataset(folder_set)[6]
