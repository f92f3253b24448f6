"""Relative expression transfer maths."""

import math

import pytest
import torch

from next3d.animation.relative import axis_angle_to_matrix, matrix_to_axis_angle, relative_params, relative_vertices


def test_axis_angle_round_trip():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(64, 3, generator=g)
    r = r / r.norm(dim=1, keepdim=True) * torch.rand(64, 1, generator=g) * 3.0  # angles below pi
    r = torch.cat([r, torch.zeros(1, 3), torch.tensor([[1e-9, 0, 0]])])
    m = axis_angle_to_matrix(r)
    torch.testing.assert_close(m @ m.transpose(1, 2), torch.eye(3, dtype=m.dtype).expand_as(m), atol=1e-10, rtol=0)
    torch.testing.assert_close(matrix_to_axis_angle(m), r.double(), atol=1e-7, rtol=0)
    quarter = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))[0]
    torch.testing.assert_close(quarter @ torch.tensor([1.0, 0, 0], dtype=quarter.dtype),
                               torch.tensor([0.0, 1, 0], dtype=quarter.dtype), atol=1e-7, rtol=0)


def test_a_driver_equal_to_its_first_frame_gives_the_neutral():
    first = {"expression": torch.tensor([[0.5, -1.0, 2.0]]), "jaw": torch.tensor([[0.2, 0.05, 0.0]]),
             "neck": torch.tensor([[0.0, 0.3, 0.1]])}
    driver = {k: v.expand(5, -1) for k, v in first.items()}
    neutral = {"expression": torch.tensor([0.1, 0.2, 0.3, 0.4]), "jaw": torch.tensor([0.05, 0.0, 0.0])}
    out = relative_params(driver, neutral)
    torch.testing.assert_close(out["expression"], neutral["expression"].expand(5, -1))
    torch.testing.assert_close(out["jaw"], neutral["jaw"].expand(5, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["neck"], torch.zeros(5, 3), atol=1e-6, rtol=0)


def test_changes_are_added_onto_the_neutral():
    driver = {"expression": torch.tensor([[1.0, 1.0], [1.5, 0.0], [3.0, 1.0]]),
              "jaw": torch.tensor([[0.1, 0.0, 0.0], [0.3, 0.0, 0.0], [0.0, 0.0, 0.0]])}
    neutral = {"expression": torch.tensor([-1.0, 2.0]), "jaw": torch.tensor([0.05, 0.0, 0.0])}
    out = relative_params(driver, neutral)
    torch.testing.assert_close(out["expression"], torch.tensor([[-1.0, 2], [-0.5, 1], [1, 2]]))
    # Rotations about one axis compose additively exactly: 0.05 + (d_i - 0.1).
    assert out["jaw"][:, 0].tolist() == pytest.approx([0.05, 0.25, -0.05], abs=1e-6)
    # General rotations: R(out) = R(neutral) R(d0)^T R(di).
    d = torch.tensor([[0.1, 0.2, -0.1], [0.3, -0.2, 0.2]])
    n = torch.tensor([0.0, 0.4, 0.1])
    got = relative_params({"neck": d}, {"neck": n})["neck"]
    want = axis_angle_to_matrix(n[None]) @ axis_angle_to_matrix(d[:1]).transpose(1, 2) @ axis_angle_to_matrix(d)
    torch.testing.assert_close(axis_angle_to_matrix(got), want, atol=1e-6, rtol=0)


def test_relative_vertices():
    g = torch.Generator().manual_seed(2)
    dv, dl = torch.randn(3, 10, 3, generator=g), torch.randn(3, 68, 3, generator=g)
    nv, nl = torch.randn(10, 3, generator=g), torch.randn(68, 3, generator=g)
    v, lm = relative_vertices(dv, dl, nv, nl)
    torch.testing.assert_close(v[0], nv)
    torch.testing.assert_close(v[2] - v[1], dv[2] - dv[1])
    torch.testing.assert_close(lm[0], nl)


def test_unknown_keys_are_refused():
    with pytest.raises(ValueError, match="unknown driver key 'shape'"):
        relative_params({"shape": torch.zeros(2, 3)})
