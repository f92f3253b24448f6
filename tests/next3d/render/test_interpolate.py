"""Attribute interpolation over fragments, and differentiable barycentrics."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from next3d.render.interpolate import barycentrics_differentiable, interpolate, interpolate_face_attrs
from next3d.render.rasterize import rasterize


def scene(batch=2, faces=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centre = (torch.rand(batch, faces, 1, 3, generator=gen) * 2 - 1)
    tri = centre + 0.5 * torch.randn(batch, faces, 3, 3, generator=gen)
    return tri.reshape(batch, faces * 3, 3), torch.arange(faces * 3).view(faces, 3)


def test_interpolating_positions_gives_pixel_centres():
    verts, faces = scene()
    frags = rasterize(verts, faces, (10, 14))
    pos = interpolate(frags, verts, faces)
    assert pos.shape == (2, 10, 14, 3)
    m = frags.mask
    px = ((2 * torch.arange(14) + 1) / 14 - 1).expand(2, 10, 14)
    py = ((2 * torch.arange(10) + 1) / 10 - 1)[:, None].expand(2, 10, 14)
    assert m.float().mean() > 0.2
    assert_close(pos[..., 0][m], px[m], atol=1e-5, name="x")
    assert_close(pos[..., 1][m], py[m], atol=1e-5, name="y")
    assert_close(pos[..., 2][m], frags.depth[m], atol=1e-5, name="z = depth")
    assert (pos[~m] == 0).all()


def test_shared_attrs_and_face_attrs_agree():
    verts, faces = scene()
    frags = rasterize(verts, faces, 12)
    attrs = torch.randn(verts.shape[1], 5)  # (V, C), shared by the batch
    a = interpolate(frags, attrs, faces)
    b = interpolate_face_attrs(frags, attrs[faces])  # (F, 3, C)
    c = interpolate(frags, attrs.expand(2, -1, -1), faces.expand(2, -1, -1))
    assert_close(a, b, name="vertex vs face-corner")
    assert_close(a, c, name="shared vs batched")
    # A constant attribute interpolates to itself where covered (barycentrics sum to 1).
    ones = interpolate(frags, torch.ones(verts.shape[1], 1), faces)[..., 0]
    assert_close(ones, frags.mask.float(), atol=1e-5, name="partition of unity")


def test_gradients_reach_the_attributes():
    verts, faces = scene(batch=1, faces=6)
    frags = rasterize(verts, faces, 8)
    attrs = torch.randn(1, verts.shape[1], 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate(frags, a, faces), (attrs,))
    face_attrs = torch.randn(faces.shape[0], 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate_face_attrs(frags, a), (face_attrs,))
    # Attributes of faces that win no pixel get no gradient.
    out = interpolate(frags, attrs, faces)
    out.sum().backward()
    seen = torch.zeros(verts.shape[1], dtype=torch.bool)
    seen[faces[frags.face_idx[frags.mask]].reshape(-1)] = True
    assert (attrs.grad[0][~seen] == 0).all() and (attrs.grad[0][seen].abs().sum() > 0)


@pytest.mark.parametrize("perspective", [False, True])
def test_differentiable_barycentrics_match_and_have_correct_gradients(perspective):
    verts, faces = scene(batch=1, faces=5, seed=3)
    w = 0.5 + torch.rand(1, verts.shape[1])
    kwargs = dict(clip_w=w, perspective_correct=True) if perspective else {}
    frags = rasterize(verts, faces, 8, **kwargs)
    bary = barycentrics_differentiable(frags, verts, faces, **kwargs)
    assert_close(bary, frags.bary, atol=1e-5, name="recomputed bary")
    v64 = verts.double().requires_grad_(True)
    w64 = w.double()
    fn = lambda v: barycentrics_differentiable(frags, v, faces, clip_w=w64 if perspective else None,  # noqa: E731
                                               perspective_correct=perspective)
    assert torch.autograd.gradcheck(fn, (v64,))
    # Gradients flow through interpolate(bary=...) to the vertex positions.
    pos = interpolate(frags, torch.randn(verts.shape[1], 3), faces, bary=fn(v64))
    pos.sum().backward()
    assert v64.grad.abs().sum() > 0


def test_empty_fragments_and_bad_input():
    verts, faces = scene(batch=1, faces=3)
    empty = rasterize(verts, faces[:0], 6)
    out = interpolate(empty, torch.randn(verts.shape[1], 4), faces[:0])
    assert out.shape == (1, 6, 6, 4) and (out == 0).all()
    assert (interpolate_face_attrs(empty, torch.randn(0, 3, 2)) == 0).all()
    assert (barycentrics_differentiable(empty, verts, faces[:0]) == 0).all()
    frags = rasterize(verts, faces, 6)
    with pytest.raises(ValueError, match="face_attrs"):
        interpolate_face_attrs(frags, torch.randn(1, 3, 2))
    with pytest.raises(ValueError, match="vertex_attrs"):
        interpolate(frags, torch.randn(3, 2), faces)
    with pytest.raises(TypeError, match="Fragments"):
        interpolate((frags.face_idx, frags.bary), torch.randn(9, 2), faces)
