"""FID and KID between a data set and generated images, on a named feature network.

Metric names carry the sample count and the feature network: `fid10k_vgg`,
`kid10k_vgg`, `fid50k_inception`, `kid50k_inception` (N k generated images; the data
set's statistics use all its images up to that count as well). `vgg` and `inception`
are defined in `feature_nets`; values on different networks are never comparable.

* **FID** (Heusel et al. 2017): the Fréchet distance between Gaussians fitted to the
  two feature sets, ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½), with unbiased covariances.
  `frechet_distance` computes Tr((Σ₁Σ₂)^½) as Σ √λᵢ of the symmetric PSD matrix
  Σ₁^½ Σ₂ Σ₁^½ (eigendecompositions in float64, negative round-off clamped to 0);
  `frechet_distance_ref` is the plain scipy `sqrtm` formula of the original FID code.
* **KID** (Bińkowski et al. 2018): the unbiased estimator of the squared MMD with the
  cubic polynomial kernel k(x, y) = (xᵀy / D + 1)³, averaged over `num_subsets` random
  subsets of m = min(N₁, N₂, `max_subset_size`) vectors from each set:
  MMD²ᵤ = [Σ_{i≠j} k(xᵢ,xⱼ) + Σ_{i≠j} k(yᵢ,yⱼ)] / (m(m−1)) − 2 Σ_{i,j} k(xᵢ,yⱼ) / m².
  It can be negative; its expectation is 0 for equal distributions.
"""

from __future__ import annotations

import re
from typing import Tuple

import numpy as np
import scipy.linalg
import torch

from training.metrics.feature_nets import FEATURE_NETS, MetricError
from training.metrics.feature_stats import FeatureStats

NAME_PATTERN = re.compile(r"^(fid|kid)(\d+)k_(" + "|".join(FEATURE_NETS) + r")$")


def parse_name(name: str) -> Tuple[str, int, str]:
    """'fid10k_vgg' -> ('fid', 10000, 'vgg'); MetricError otherwise."""
    m = NAME_PATTERN.match(name)
    if not m or int(m.group(2)) < 1:
        raise MetricError(f"metric {name!r}: expected fid<N>k_<net> or kid<N>k_<net> with net one of "
                          f"{', '.join(FEATURE_NETS)} (e.g. fid10k_vgg)")
    return m.group(1), int(m.group(2)) * 1000, m.group(3)


def _check_pair(mu1, sigma1, mu2, sigma2):
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"Fréchet distance: expected means (D,) and covariances (D, D), got {mu1.shape}, "
                         f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    return mu1, sigma1, mu2, sigma2


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(sigma)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) (module docstring), float64 torch."""
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    s1 = torch.from_numpy((sigma1 + sigma1.T) / 2)
    s2 = torch.from_numpy((sigma2 + sigma2.T) / 2)
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    eig = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0)
    diff = torch.from_numpy(mu1 - mu2)
    value = diff.dot(diff) + torch.trace(s1) + torch.trace(s2) - 2 * eig.sqrt().sum()
    return float(max(value.item(), 0.0))


def frechet_distance_ref(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """The original FID formula with scipy.linalg.sqrtm (reference for tests)."""
    mu1, sigma1, mu2, sigma2 = _check_pair(mu1, sigma1, mu2, sigma2)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance_from_features(x, y) -> float:
    """The same Fréchet distance from the feature sets themselves (N1, D), (N2, D).

    With Σ₁ = AAᵀ, Σ₂ = BBᵀ (A = (X − μ₁)ᵀ/√(N₁−1), B likewise), the non-zero eigenvalues
    of Σ₁Σ₂ are the squared singular values of AᵀB, so Tr((Σ₁Σ₂)^½) = ‖AᵀB‖_* (nuclear
    norm of an N₁ × N₂ matrix): exact, and much cheaper than D × D eigendecompositions
    when the sets are smaller than the feature dimension.
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(x.shape[0], y.shape[0]) < 2:
        raise ValueError(f"Fréchet distance: expected feature sets (N >= 2, D) of one D, got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    mu1, mu2 = x.mean(0), y.mean(0)
    a = (x - mu1) / (x.shape[0] - 1) ** 0.5
    b = (y - mu2) / (y.shape[0] - 1) ** 0.5
    cross = torch.linalg.svdvals(a @ b.T).sum()
    value = (mu1 - mu2).square().sum() + a.square().sum() + b.square().sum() - 2 * cross
    return float(max(value.item(), 0.0))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """FID of two statistics; from the vectors when both keep all of theirs and are fewer
    than the dimension (same value, `frechet_distance_from_features`), else from (μ, Σ)."""
    dim = a.mean.shape[0]
    complete = all(s.features is not None and s.features.shape[0] == s.num for s in (a, b))
    if complete and a.num + b.num < dim:
        return frechet_distance_from_features(a.features, b.features)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD² of two equal-size samples x, y (m, D) with the KID kernel."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    m = x.shape[0]
    if y.shape != x.shape or m < 2:
        raise ValueError(f"MMD: expected two (m >= 2, D) samples of equal shape, got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(feats1, feats2, num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0) -> float:
    """KID (module docstring) of feature sets (N1, D) and (N2, D)."""
    f1, f2 = np.asarray(feats1), np.asarray(feats2)
    m = min(f1.shape[0], f2.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f"KID: needs at least 2 vectors in each set, got {f1.shape[0]} and {f2.shape[0]}")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = f1[rng.choice(f1.shape[0], m, replace=False)]
        y = f2[rng.choice(f2.shape[0], m, replace=False)]
        total += mmd2_unbiased(x, y)
    return total / num_subsets


def kid_from_stats(a: FeatureStats, b: FeatureStats, num_subsets: int = 100, max_subset_size: int = 1000,
                   seed: int = 0) -> float:
    if a.features is None or b.features is None:
        raise MetricError("KID needs the feature vectors, not only their mean and covariance")
    return kernel_inception_distance(a.features, b.features, num_subsets, max_subset_size, seed)


def distribution_metric(kind: str, real: FeatureStats, fake: FeatureStats, *, seed: int = 0,
                        num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """'fid' or 'kid' of two statistics."""
    if kind == "fid":
        return fid_from_stats(real, fake)
    if kind == "kid":
        return kid_from_stats(real, fake, num_subsets=num_subsets, max_subset_size=max_subset_size, seed=seed)
    raise MetricError(f"distribution metric {kind!r}: expected fid or kid")


__all__ = ["parse_name", "frechet_distance", "frechet_distance_ref", "fid_from_stats", "mmd2_unbiased",
           "kernel_inception_distance", "kid_from_stats", "distribution_metric"]
