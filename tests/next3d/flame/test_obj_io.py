"""OBJ with UVs: round trip, polygons, errors."""

from __future__ import annotations

import numpy as np
import pytest

from next3d.flame.obj_io import read_obj, write_obj


def test_round_trip(tmp_path):
    v = np.random.default_rng(0).normal(size=(5, 3))
    f = np.array([[0, 1, 2], [0, 2, 3], [1, 4, 2]])
    uv = np.random.default_rng(1).random((6, 2))
    uvf = np.array([[0, 1, 2], [3, 4, 5], [1, 2, 5]])
    write_obj(tmp_path / "m.obj", v, f, uv, uvf)
    m = read_obj(tmp_path / "m.obj")
    np.testing.assert_allclose(m.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(m.faces, f)
    np.testing.assert_allclose(m.uv_coords, uv, atol=1e-6)
    np.testing.assert_array_equal(m.uv_faces, uvf)


def test_quads_are_triangulated_and_no_uv(tmp_path):
    (tmp_path / "q.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    m = read_obj(tmp_path / "q.obj")
    np.testing.assert_array_equal(m.faces, [[0, 1, 2], [0, 2, 3]])
    assert m.uv_coords is None and m.uv_faces is None


def test_bad_index_names_file_and_line(tmp_path):
    (tmp_path / "b.obj").write_text("v 0 0 0\nv 1 0 0\nf 1 2 7\n")
    with pytest.raises(ValueError, match=r"b\.obj:3"):
        read_obj(tmp_path / "b.obj")
    (tmp_path / "e.obj").write_text("# nothing\n")
    with pytest.raises(ValueError, match="expected an OBJ mesh"):
        read_obj(tmp_path / "e.obj")
