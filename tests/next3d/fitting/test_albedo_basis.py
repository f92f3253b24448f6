"""The stored PCA albedo of the built-in head: belongs to this head, orthonormal, and explains a held-out
skin texture of the synthetic appearance model much better than the mean alone."""

from __future__ import annotations

import os

import numpy as np
import torch

from next3d.fitting import albedo_basis

REGENERATE = os.environ.get("NEXT3D_REGENERATE_ALBEDO", "") == "1"


def _head():
    from next3d.flame import load_flame_model
    from training.dataset_schema import head_identity

    return head_identity(load_flame_model(None))


def test_stored_basis_matches_the_builtin_head():
    head = _head()
    if REGENERATE:
        from next3d.synthetic.head import load_head_assets

        albedo_basis.save_albedo_basis(albedo_basis.build_albedo_basis(load_head_assets(None)), head)
    basis = albedo_basis.read_stored_basis(head)
    assert basis is not None, "the stored albedo basis is for another head version: NEXT3D_REGENERATE_ALBEDO=1"
    k, s = albedo_basis.COMPONENTS, albedo_basis.SIZE
    assert basis.mean.shape == (3, s, s) and basis.basis.shape == (k, 3, s, s) and basis.std.shape == (k,)
    flat = basis.basis.flatten(1).double()
    torch.testing.assert_close(flat @ flat.T, torch.eye(k, dtype=torch.float64), atol=2e-2, rtol=0)  # float16 stored
    assert bool((basis.std[:-1] >= basis.std[1:]).all()) and float(basis.std[-1]) > 0
    assert 0.01 < float(basis.mean.mean()) < 0.8  # linear-RGB skin
    assert albedo_basis.read_stored_basis({**head, "head_version": "other"}) is None
    assert basis.albedo(torch.zeros(2, k)).shape == (2, 3, s, s)


def test_basis_explains_a_held_out_skin():
    from next3d.synthetic.appearance import sample_appearance, sample_hair_colour, skin_texture
    from next3d.synthetic.distributions import SynthDistributions
    from next3d.synthetic.head import load_head_assets

    basis = albedo_basis.load_albedo_basis()
    rng = np.random.default_rng(99)  # not the basis' seed
    dist = SynthDistributions()
    _, hair = sample_hair_colour(dist, rng)
    tex = skin_texture(load_head_assets(None), sample_appearance(dist, rng, hair), albedo_basis.SIZE)[0][None]
    coeff = basis.project(tex)
    err_mean = float((tex - basis.mean).pow(2).mean())
    err_fit = float((tex - basis.albedo(coeff)).pow(2).mean())
    assert err_fit < 0.25 * err_mean, (err_fit, err_mean)
