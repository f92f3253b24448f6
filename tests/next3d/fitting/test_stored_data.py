"""Fitting data stored per head version: the shipped network's (older) head keeps its calibrations."""

import pytest

from next3d.fitting import albedo_basis, calibrate, mesh_correspondence
from next3d.fitting.stored_data import DATA_DIR, stored_file


def test_stored_file_names_the_head_model_and_version():
    head = {"head_model": "builtin", "head_version": "v3-0123456789ab", "head_topology": "sha256:x"}
    assert stored_file("albedo", head, ".npz") == DATA_DIR / "albedo_builtin_v3-0123456789ab.npz"
    odd = {**head, "head_model": "flame", "head_version": "my model/2020"}
    assert stored_file("dlib", odd, "_offsets.json").name == "dlib_flame_my_model_2020_offsets.json"  # no folders


@pytest.fixture(scope="module")
def shipped_head():
    from next3d.generate import load_generator
    from training.dataset_schema import head_identity

    G = load_generator("builtin", device="cpu")
    return head_identity(G.head_data)


def test_the_shipped_networks_head_has_its_own_calibrations(shipped_head):
    from next3d.flame import load_flame_model
    from training.dataset_schema import head_identity

    current = head_identity(load_flame_model(None))
    # The shipped file embeds the head it was trained on, not necessarily the one this code builds.
    assert shipped_head["head_model"] == "builtin" and shipped_head["head_version"].startswith("v")
    assert shipped_head["head_topology"] == current["head_topology"]
    for head in (shipped_head, current):
        offsets = calibrate.load_offsets("dlib", head)
        assert offsets is not None and offsets.shape == (68, 3), head["head_version"]
        assert albedo_basis.read_stored_basis(head) is not None, head["head_version"]
        corr = mesh_correspondence.read_correspondence(mesh_correspondence.stored_path(head), head)
        assert corr is not None and int((corr.weights > 0).sum()) > 300, head["head_version"]
    if shipped_head["head_version"] != current["head_version"]:
        # Each version reads its own file: the two calibrations differ (the jaw contour moved in v3).
        a, b = calibrate.load_offsets("dlib", shipped_head), calibrate.load_offsets("dlib", current)
        assert float((a[:17] - b[:17]).abs().max()) > 1e-3
