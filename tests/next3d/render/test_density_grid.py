import math

import numpy as np
import pytest
import torch

from next3d.render.density_grid import (evaluate_density_grid, lattice_points, marching_cubes_to_ply,
                                        marching_tetrahedra, read_ply, write_ply)
from torch_utils.misc import ShapeError


def _edge_counts(faces):
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return counts


def _directed_edges_unique(faces):
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return len(np.unique(directed, axis=0)) == len(directed)


def _sphere_sigma(radius, centre=(0.05, -0.02, 0.03)):
    c = torch.tensor(centre)
    return lambda pts: (radius - (pts - c).norm(dim=-1, keepdim=True)) * 100.0


def test_grid_layout_and_chunking():
    calls = []

    def query(pts):
        calls.append(pts.shape[1])
        return pts[..., :1] + 10 * pts[..., 1:2] + 100 * pts[..., 2:3]

    grid = evaluate_density_grid(query, 5, box_size=2.0, centre=(1.0, 0.0, 0.0), chunk=40)
    assert grid.shape == (5, 5, 5) and grid.dtype == np.float32
    assert sum(calls) == 125 and max(calls) == 40
    # grid[i, j, k] is at x = i * 0.5 (centre 1, box 2), y = -1 + j * 0.5, z = -1 + k * 0.5.
    assert abs(grid[4, 0, 2] - (2.0 - 10.0 + 0.0)) < 1e-5
    assert abs(grid[0, 3, 1] - (0.0 + 5.0 - 50.0)) < 1e-5
    np.testing.assert_allclose(lattice_points(3, 2.0)[1], [-1.0, 0.0, 1.0])
    with pytest.raises(ShapeError, match="queried sigma"):
        evaluate_density_grid(lambda p: p, 3)


def test_marching_on_an_analytic_sphere_is_closed_and_accurate():
    n, radius, box = 24, 0.3, 1.0
    grid = evaluate_density_grid(_sphere_sigma(radius), n, box_size=box)
    origin = np.full(3, -0.5 * box)
    spacing = box / (n - 1)
    verts, faces = marching_tetrahedra(grid, 0.0, origin=origin, spacing=spacing)
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and len(faces) > 500
    dist = np.linalg.norm(verts - np.array([0.05, -0.02, 0.03]), axis=1)
    assert np.abs(dist - radius).max() < 0.5 * spacing
    # Closed (every edge shared by exactly two faces) and consistently oriented.
    assert (_edge_counts(faces) == 2).all()
    assert _directed_edges_unique(faces)
    assert len(np.unique(faces)) == len(verts)  # no unused vertices
    # Outward normals: the signed volume is the sphere's volume (positive).
    v = verts.astype(np.float64)[faces]
    volume = np.einsum("fi,fi->f", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0
    assert abs(volume - 4.0 / 3.0 * math.pi * radius ** 3) < 0.05 * 4.0 / 3.0 * math.pi * radius ** 3
    # Euler characteristic of a sphere.
    n_edges = len(_edge_counts(faces))
    assert len(verts) - n_edges + len(faces) == 2


def test_marching_edge_cases():
    empty = np.zeros((4, 4, 4))
    v, f = marching_tetrahedra(empty, 0.5)
    assert v.shape == (0, 3) and f.shape == (0, 3)
    # A single inside point: a small closed octahedron-like blob around it.
    one = np.zeros((3, 3, 3))
    one[1, 1, 1] = 1.0
    v, f = marching_tetrahedra(one, 0.5)
    assert (_edge_counts(f) == 2).all() and _directed_edges_unique(f)
    assert np.abs(v - 1.0).max() <= 0.5 + 1e-6
    with pytest.raises(ValueError, match="3-D array"):
        marching_tetrahedra(np.zeros((4, 4)), 0.0)


@pytest.mark.parametrize("binary", [True, False])
def test_ply_roundtrip(tmp_path, binary):
    n = 12
    grid = evaluate_density_grid(_sphere_sigma(0.3, (0, 0, 0)), n)
    path = tmp_path / "mesh.ply"
    n_v, n_f = marching_cubes_to_ply(grid, path, level=0.0, binary=binary)
    text = path.read_bytes()
    assert text.startswith(b"ply\nformat " + (b"binary_little_endian" if binary else b"ascii"))
    verts, faces = read_ply(path)
    assert verts.shape == (n_v, 3) and faces.shape == (n_f, 3) and n_f > 50
    ref_v, ref_f = marching_tetrahedra(grid, 0.0, origin=(-0.5, -0.5, -0.5), spacing=1.0 / (n - 1))
    np.testing.assert_allclose(verts, ref_v, atol=1e-6)
    np.testing.assert_array_equal(faces, ref_f)
    with pytest.raises(ValueError, match="faces: indices"):
        write_ply(tmp_path / "bad.ply", verts, faces + len(verts))
