"""The deformation-aware D's input: the FLAME mesh rendered under the camera."""

import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from next3d.render.mesh_shading import render_mesh
from training.mesh_condition import MeshConditioner


def test_renders_normals_and_shading_of_the_given_parameters():
    flame = FLAME(load_flame_model(None))
    params = {"expression": torch.zeros(2, 4), "jaw": torch.tensor([[0.0, 0, 0], [0.3, 0, 0]])}
    c = torch.cat([orbit_label(0.0, 0.0), orbit_label(0.4, 0.1)])
    cond = MeshConditioner(flame, "normals", 32)
    out = cond(params, c)
    assert out.shape == (2, 3, 32, 32) and out.min() >= -1 and out.max() <= 1
    ref = render_mesh(flame(**params).vertices, flame.faces, c, 32)
    assert torch.equal(out, ref.normals)
    # Seen surfaces face the camera: +z (display convention) on average over the head.
    cov = ref.mask[0, 0] > 0
    assert float(out[0, 2][cov].mean()) > 0.5
    # Background is -1 in every channel; the head covers a sizeable part of the image.
    bg = ref.mask[:, 0] == 0
    assert bool((out.permute(1, 0, 2, 3)[:, bg] == -1).all()) and 0.1 < float(ref.mask.mean()) < 0.9
    # Open jaw differs from closed jaw: the rendering carries the deformation.
    assert float((out[1] - cond({k: v[:1].repeat(2, 1) for k, v in params.items()}, c)[1]).abs().max()) > 0.1
    shaded = MeshConditioner(flame, "shaded", 32)(params, c)
    assert shaded.shape == (2, 1, 32, 32) and torch.equal(shaded, ref.shaded[:, :1])
    # Published-layout items give vertices instead of parameters.
    assert torch.equal(cond({"vertices": flame(**params).vertices, "landmarks": torch.zeros(2, 68, 3)}, c), out)


def _draws(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = {"expression": torch.randn(n, 4, generator=g) * 0.5, "jaw": torch.rand(n, 3, generator=g) * 0.2}
    c = torch.cat([orbit_label(float(y), 0.05) for y in torch.linspace(-0.4, 0.4, n)])
    return params, c


def test_cache_returns_the_same_renderings_and_counts_hits():
    flame = FLAME(load_flame_model(None))
    params, c = _draws(5)
    plain = MeshConditioner(flame, "normals", 24, cache_mib=0)
    cached = MeshConditioner(flame, "normals", 24)
    first = cached(params, c)
    assert (cached.hits, cached.misses) == (0, 5)
    # Each row is rendered alone: exactly the batch-1 rendering, and the batched one within rounding.
    singles = torch.cat([plain({k: v[i:i + 1] for k, v in params.items()}, c[i:i + 1]) for i in range(5)])
    assert torch.equal(first, singles)
    assert torch.allclose(first, plain(params, c), atol=1e-4)
    # Rows again, in another order and batch composition: all hits, the same values.
    order = torch.tensor([3, 0, 0, 4])
    again = cached({k: v[order] for k, v in params.items()}, c[order])
    assert (cached.hits, cached.misses) == (4, 5) and torch.equal(again, first[order])
    # A changed parameter or camera is another row.
    moved = {k: v.clone() for k, v in params.items()}
    moved["jaw"][1, 0] += 1e-3
    cached(moved, c)
    assert (cached.hits, cached.misses) == (8, 6)
    cached(params, torch.roll(c, 1, 0))
    assert cached.misses == 11
    # Published-layout vertices are keyed by their bytes too.
    verts = {"vertices": flame(**params).vertices}
    assert torch.allclose(cached(verts, c), plain(verts, c), atol=1e-4) and cached.misses == 16
    assert cached(verts, c).shape == (5, 3, 24, 24) and cached.misses == 16


def test_cache_drops_the_least_recently_used_rows_at_its_size():
    flame = FLAME(load_flame_model(None))
    params, c = _draws(4, seed=1)
    row_mib = 1 * 16 * 16 * 4 / 2**20  # shaded: one float32 channel
    cond = MeshConditioner(flame, "shaded", 16, cache_mib=2.5 * row_mib)
    cond({k: v[:2] for k, v in params.items()}, c[:2])     # rows 0, 1
    cond({k: v[:1] for k, v in params.items()}, c[:1])     # row 0 used again: row 1 is the oldest
    cond({k: v[2:3] for k, v in params.items()}, c[2:3])   # row 2 evicts row 1
    assert len(cond._cache) == 2 and cond._cached_bytes <= cond.cache_bytes
    before = cond.misses
    cond({k: v[:1] for k, v in params.items()}, c[:1])
    assert cond.misses == before
    cond({k: v[1:2] for k, v in params.items()}, c[1:2])
    assert cond.misses == before + 1
    try:
        MeshConditioner(flame, "shaded", 16, cache_mib=-1)
    except ValueError as exc:
        assert "cache_mib" in str(exc)
    else:
        raise AssertionError("a negative cache size was accepted")
