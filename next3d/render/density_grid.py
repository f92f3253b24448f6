"""Density grids and iso-surface meshes (for shape export), without extra dependencies.

* `evaluate_density_grid(query, resolution, box_size, centre)`: σ on an N^3 lattice of
  world points, evaluated in chunks -> numpy (N, N, N) with `grid[i, j, k]` at world
  point `centre - box_size / 2 + (i, j, k) * box_size / (N - 1)` (x, y, z), lattice
  points include both faces of the box.
* `marching_tetrahedra(grid, level, origin, spacing)`: the iso-surface {σ = level} as an
  indexed triangle mesh. Each lattice cube is split into 6 tetrahedra around its main
  diagonal (Kuhn's triangulation, conforming between neighbouring cubes), so a surface
  that stays inside the grid gives a closed, consistently oriented mesh (normals point
  towards decreasing σ, i.e. outwards for a density blob). Vertices lie on lattice
  (and diagonal) edges by linear interpolation and are shared between faces.
* `write_ply` / `read_ply`: PLY, binary little-endian or ASCII, vertices + triangles.
* `marching_cubes_to_ply(grid, path, ...)`: the two together, in world coordinates.
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path
from typing import Callable, Sequence, Tuple, Union

import numpy as np
import torch

from torch_utils.misc import assert_shape

# Cube corner c has offset (c & 1, (c >> 1) & 1, (c >> 2) & 1). Kuhn's 6 tetrahedra:
# 0 -> e_a -> e_a + e_b -> 7 for every order (a, b, c) of the axes.
_TETS = np.array([[0, a, a | b, 7] for a, b, _ in permutations((1, 2, 4))], dtype=np.int64)
_CORNERS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=np.int64)
# Triangles as pairs (inside vertex, outside vertex) of tetrahedron slots, once the
# tetrahedron's vertices are sorted inside-first. Keyed by the number of inside vertices.
_TRIS = {
    1: [[(0, 1), (0, 2), (0, 3)]],
    2: [[(0, 2), (0, 3), (1, 3)], [(0, 2), (1, 3), (1, 2)]],
    3: [[(0, 3), (1, 3), (2, 3)]],
}

QueryFn = Callable[[torch.Tensor], torch.Tensor]


def lattice_points(resolution: int, box_size: float = 1.0, centre: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """The 1-D lattice coordinates (3, N) along x, y, z of `evaluate_density_grid`."""
    if int(resolution) < 2:
        raise ValueError(f"resolution: expected at least 2 lattice points per axis, got {resolution}")
    line = np.linspace(-0.5 * box_size, 0.5 * box_size, int(resolution))
    return np.stack([line + float(c) for c in centre])


@torch.no_grad()
def evaluate_density_grid(query: QueryFn, resolution: int, box_size: float = 1.0,
                          centre: Sequence[float] = (0.0, 0.0, 0.0), chunk: int = 1 << 18,
                          device: Union[str, torch.device] = "cpu") -> np.ndarray:
    """σ on an N^3 lattice -> float32 numpy (N, N, N); `query` maps points (1, M, 3) -> (1, M, 1)."""
    axes = torch.as_tensor(lattice_points(resolution, box_size, centre), dtype=torch.float32)
    n = int(resolution)
    out = np.empty(n ** 3, dtype=np.float32)
    flat = torch.arange(n ** 3)
    for start in range(0, n ** 3, int(chunk)):
        idx = flat[start:start + int(chunk)]
        i, j, k = idx // (n * n), (idx // n) % n, idx % n
        pts = torch.stack([axes[0, i], axes[1, j], axes[2, k]], dim=-1).unsqueeze(0).to(device)
        sigma = query(pts)
        assert_shape(sigma, [1, pts.shape[1], 1], "queried sigma")
        out[start:start + idx.numel()] = sigma.reshape(-1).float().cpu().numpy()
    return out.reshape(n, n, n)


def marching_tetrahedra(grid: np.ndarray, level: float = 0.0, origin: Sequence[float] = (0.0, 0.0, 0.0),
                        spacing: Union[float, Sequence[float]] = 1.0,
                        chunk: int = 1 << 17) -> Tuple[np.ndarray, np.ndarray]:
    """Iso-surface of `grid` (N0, N1, N2) at `level` -> vertices (V, 3) float32, faces (F, 3) int64.

    Lattice point (i, j, k) sits at `origin + (i, j, k) * spacing`. Points with value
    > level are inside; face normals (right-handed vertex order) point outwards.
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise ValueError(f"grid: expected a 3-D array with at least 2 points per axis, got shape {grid.shape}")
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    spacing = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    values = grid.astype(np.float64).reshape(-1)
    inside = grid > level
    shape = np.array(grid.shape, dtype=np.int64)
    strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)

    # Only cubes whose corners disagree can hold surface.
    c0, c1, c2 = (s - 1 for s in grid.shape)
    corners_in = [inside[dx:dx + c0, dy:dy + c1, dz:dz + c2] for dx, dy, dz in _CORNERS]
    any_in = np.logical_or.reduce(corners_in)
    all_in = np.logical_and.reduce(corners_in)
    cubes = np.stack(np.nonzero(any_in & ~all_in), axis=-1)  # (A, 3)
    del corners_in, any_in, all_in

    keys, positions = [], []
    for start in range(0, len(cubes), int(chunk)):
        base = cubes[start:start + int(chunk)]
        corner_ijk = base[:, None, :] + _CORNERS[None]  # (A, 8, 3)
        tet_ijk = corner_ijk[:, _TETS].reshape(-1, 4, 3)  # (A * 6, 4, 3)
        tet_idx = tet_ijk @ strides
        tet_in = inside.reshape(-1)[tet_idx]
        count = tet_in.sum(axis=1)
        for k_in, tris in _TRIS.items():
            sel = count == k_in
            if not sel.any():
                continue
            order = np.argsort(~tet_in[sel], axis=1, kind="stable")  # inside vertices first
            idx = np.take_along_axis(tet_idx[sel], order, axis=1)
            ijk = np.take_along_axis(tet_ijk[sel], order[..., None], axis=1).astype(np.float64)
            in_c = ijk[:, :k_in].mean(axis=1)
            out_c = ijk[:, k_in:].mean(axis=1)
            for tri in tris:
                p = np.array([e[0] for e in tri])
                q = np.array([e[1] for e in tri])
                ip, iq = idx[:, p], idx[:, q]  # (T, 3)
                vp, vq = values[ip], values[iq]
                t = np.clip((level - vp) / (vq - vp), 0.0, 1.0)[..., None]
                pos = ijk[:, p] + t * (ijk[:, q] - ijk[:, p])  # (T, 3, 3) in lattice units
                # Orient with edge midpoints (never degenerate, unlike interpolated points
                # that can coincide): the normal must point from inside to outside.
                mid = 0.5 * (ijk[:, p] + ijk[:, q])
                normal = np.cross(mid[:, 1] - mid[:, 0], mid[:, 2] - mid[:, 0])
                flip = (normal * (out_c - in_c)).sum(-1) < 0
                key = np.minimum(ip, iq) * values.size + np.maximum(ip, iq)
                key[flip] = key[flip][:, ::-1]
                pos[flip] = pos[flip][:, ::-1]
                keys.append(key)
                positions.append(pos)
    if not keys:
        return np.zeros((0, 3), dtype=np.float32), np.zeros((0, 3), dtype=np.int64)
    key = np.concatenate(keys)
    pos = np.concatenate(positions).reshape(-1, 3)
    unique, first, inverse = np.unique(key.reshape(-1), return_index=True, return_inverse=True)
    vertices = origin + pos[first] * spacing
    return vertices.astype(np.float32), inverse.reshape(-1, 3).astype(np.int64)


def write_ply(path: Union[str, Path], vertices: np.ndarray, faces: np.ndarray, binary: bool = True) -> None:
    """Write a triangle mesh (vertices (V, 3), faces (F, 3)) as PLY (binary little-endian or ASCII),
    atomically: a failure (full disk, size limit, Ctrl-C) leaves no partial file under `path`."""
    vertices = np.asarray(vertices, dtype="<f4")
    faces = np.asarray(faces, dtype="<i4")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices: expected shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces: expected shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"faces: indices must lie in [0, {len(vertices)}), got [{faces.min()}, {faces.max()}]")
    fmt = "binary_little_endian" if binary else "ascii"
    header = (f"ply\nformat {fmt} 1.0\ncomment written by next3d\nelement vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    from next3d.atomic_io import atomic_write

    with atomic_write(path, "wb") as fh:  # a temporary file, renamed when complete
        fh.write(header.encode("ascii"))
        if binary:
            fh.write(vertices.tobytes())
            packed = np.empty(len(faces), dtype=np.dtype([("n", "u1"), ("idx", "<i4", (3,))]))
            packed["n"] = 3
            packed["idx"] = faces
            fh.write(packed.tobytes())
        else:
            for v in vertices:
                fh.write(f"{v[0]:.7g} {v[1]:.7g} {v[2]:.7g}\n".encode("ascii"))
            for f in faces:
                fh.write(f"3 {f[0]} {f[1]} {f[2]}\n".encode("ascii"))


def read_ply(path: Union[str, Path]) -> Tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh written by `write_ply` -> vertices (V, 3) float32, faces (F, 3) int64."""
    with open(path, "rb") as fh:
        data = fh.read()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file (missing 'ply' magic or 'end_header')")
    header = data[:end].decode("ascii").splitlines()
    fmt = next(line.split()[1] for line in header if line.startswith("format"))
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element")}
    n_v, n_f = counts.get("vertex", 0), counts.get("face", 0)
    body = data[end + len(b"end_header\n"):]
    if fmt == "binary_little_endian":
        vertices = np.frombuffer(body, dtype="<f4", count=3 * n_v).reshape(n_v, 3)
        packed = np.frombuffer(body, dtype=np.dtype([("n", "u1"), ("idx", "<i4", (3,))]), count=n_f,
                               offset=12 * n_v)
        if n_f and not (packed["n"] == 3).all():
            raise ValueError(f"{path}: only triangle faces are supported")
        return vertices.astype(np.float32), packed["idx"].astype(np.int64)
    if fmt == "ascii":
        lines = body.decode("ascii").split("\n")
        vertices = np.array([[float(x) for x in ln.split()] for ln in lines[:n_v]], dtype=np.float32).reshape(n_v, 3)
        faces = np.array([[int(x) for x in ln.split()[1:4]] for ln in lines[n_v:n_v + n_f]],
                         dtype=np.int64).reshape(n_f, 3)
        return vertices, faces
    raise ValueError(f"{path}: unsupported PLY format {fmt!r} (expected binary_little_endian or ascii)")


def marching_cubes_to_ply(grid: np.ndarray, path: Union[str, Path], level: float = 10.0, box_size: float = 1.0,
                          centre: Sequence[float] = (0.0, 0.0, 0.0), binary: bool = True) -> Tuple[int, int]:
    """Mesh the iso-surface of an `evaluate_density_grid` grid in world coordinates and write PLY.

    `level` defaults to 10 (EG3D's shape-export threshold on raw σ). Returns (vertex
    count, face count).
    """
    grid = np.asarray(grid)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"grid: expected a cubic (N, N, N) array, got shape {grid.shape}")
    n = grid.shape[0]
    origin = np.asarray(centre, dtype=np.float64) - 0.5 * box_size
    vertices, faces = marching_tetrahedra(grid, level, origin=origin, spacing=box_size / (n - 1))
    write_ply(path, vertices, faces, binary=binary)
    return len(vertices), len(faces)
