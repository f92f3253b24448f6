"""fma: a * b + c with broadcasting gradients (first and second order) against plain torch."""

import pytest
import torch

from helpers import DEVICES, assert_close
from torch_utils.misc import ShapeError
from torch_utils.ops import fma


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shapes", [((3, 1, 4), (1, 5, 1), (4,)), ((2, 3), (2, 3), (1,)), ((4,), (2, 3, 4), (2, 1, 1))])
def test_matches_torch(device, shapes):
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(s, generator=g, dtype=torch.float64).to(device).requires_grad_() for s in shapes)
    results = []
    for fn in (lambda: a * b + c, lambda: fma.fma(a, b, c)):
        y = fn()
        u = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype).to(device)
        grads = torch.autograd.grad((y * u).sum(), [a, b, c], create_graph=True)
        for g1, t in zip(grads, (a, b, c)):
            assert g1.shape == t.shape
        g2 = torch.autograd.grad(sum((gg ** 2).sum() for gg in grads), [a, b], allow_unused=True)
        results.append((y, *grads, *g2))
    for name, r, got in zip(("y", "da", "db", "dc", "d2a", "d2b"), *results):
        assert_close(got, r, rtol=1e-12, atol=1e-12, name=name)


def test_bad_shapes():
    with pytest.raises(ShapeError, match=r"do not broadcast: a \(2, 3\), b \(4,\), c \(1,\)"):
        fma.fma(torch.zeros(2, 3), torch.zeros(4), torch.zeros(1))
