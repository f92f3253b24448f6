"""FID and KID: the Fréchet formula against scipy and a hand case, KID unbiasedness, names."""

import numpy as np
import pytest

from training.metrics.feature_nets import MetricError
from training.metrics.feature_stats import FeatureStats
from training.metrics.fid import (fid_from_stats, frechet_distance, frechet_distance_from_features,
                                  frechet_distance_ref, kernel_inception_distance, kid_from_stats, mmd2_unbiased,
                                  parse_name)


def test_frechet_hand_case():
    # Diagonal Gaussians: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + 0.0 + (3 - 1) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-9)
    assert frechet_distance_ref(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, abs=1e-9)
    # 1-D: (m1-m2)^2 + (s1 - s2)^2.
    assert frechet_distance([0.5], [[4.0]], [0.0], [[1.0]]) == pytest.approx(0.25 + 1.0)


def test_frechet_matches_scipy_on_random_gaussians():
    rng = np.random.RandomState(0)
    for d in (2, 16, 64):
        x = rng.randn(400, d) @ rng.randn(d, d) * 0.3
        y = rng.randn(300, d) @ rng.randn(d, d) * 0.5 + rng.randn(d)
        s1, s2 = FeatureStats.from_features(x), FeatureStats.from_features(y)
        ours = fid_from_stats(s1, s2)
        ref = frechet_distance_ref(s1.mean, s1.cov, s2.mean, s2.cov)
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-8)
        assert ours > 0
    # Rank-deficient covariances (fewer samples than dimensions) stay finite and agree.
    x, y = rng.randn(10, 32), rng.randn(12, 32) + 0.1
    s1, s2 = FeatureStats.from_features(x), FeatureStats.from_features(y)
    ref = frechet_distance_ref(s1.mean, s1.cov, s2.mean, s2.cov)
    assert fid_from_stats(s1, s2) == pytest.approx(ref, rel=1e-4)  # the feature route (N1 + N2 < D)
    assert frechet_distance(s1.mean, s1.cov, s2.mean, s2.cov) == pytest.approx(ref, rel=1e-4)
    assert frechet_distance_from_features(x, y) == pytest.approx(ref, rel=1e-4)


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.RandomState(1).randn(200, 20)
    s = FeatureStats.from_features(x)
    assert fid_from_stats(s, s) == pytest.approx(0.0, abs=1e-7)


def test_mmd_matches_direct_formula():
    rng = np.random.RandomState(2)
    x, y = rng.randn(6, 3), rng.randn(6, 3) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = 6
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (kxx + kyy) / (m * (m - 1)) - 2 * kxy / m ** 2
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-10)


def test_kid_unbiased_and_positive_for_different_distributions():
    rng = np.random.RandomState(3)
    # Same distribution: the mean of the unbiased estimate over many independent draws is ~0,
    # while the biased (V-statistic) version is clearly positive.
    unbiased, biased = [], []
    for _ in range(300):
        x, y = rng.randn(8, 4), rng.randn(8, 4)
        unbiased.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = [(a @ b.T / 4 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y))]
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    unbiased, biased = np.array(unbiased), np.array(biased)
    stderr = unbiased.std() / np.sqrt(len(unbiased))
    assert abs(unbiased.mean()) < 3 * stderr
    assert biased.mean() > 10 * stderr
    # Shifted distribution: KID clearly positive; KID of a set with itself-sized resamples ~0.
    a, b = rng.randn(200, 8), rng.randn(200, 8) + 1.0
    assert kernel_inception_distance(a, b, num_subsets=10, max_subset_size=100) > 0.5
    assert abs(kernel_inception_distance(a, rng.randn(200, 8), num_subsets=10, max_subset_size=100)) < 0.1


def test_kid_needs_features_and_names_parse():
    s = FeatureStats.from_features(np.random.randn(5, 2), keep=False)
    with pytest.raises(MetricError, match="needs the feature vectors"):
        kid_from_stats(s, s)
    assert parse_name("fid10k_vgg") == ("fid", 10000, "vgg")
    assert parse_name("kid50k_inception") == ("kid", 50000, "inception")
    for bad in ("fid10k", "fid_vgg", "fid10k_alex", "fid0k_vgg"):
        with pytest.raises(MetricError, match="expected fid<N>k_<net>"):
            parse_name(bad)
