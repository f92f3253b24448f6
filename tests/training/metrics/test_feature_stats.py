"""Data-set statistics: accumulation, the content-hash cache, VGG-feature FID behaviour."""

import importlib.util

import pytest

if importlib.util.find_spec("stlpips_pytorch") is None:
    pytest.skip("needs the stlpips-pytorch package (its weight files)", allow_module_level=True)

import numpy as np
import torch

from training.metrics.feature_nets import MetricError, VGGEmbedding, get_feature_net
from training.metrics.feature_stats import (FeatureStats, StatsAccumulator, cache_dir, compute_dataset_stats,
                                            dataset_indices)
from training.metrics.fid import fid_from_stats


@pytest.fixture(scope="module")
def vgg_small():
    return VGGEmbedding(size=48)


def test_accumulator_matches_numpy():
    x = np.random.RandomState(0).randn(23, 5)
    acc = StatsAccumulator(5, max_keep=10)
    for lo in range(0, 23, 7):
        acc.append(torch.from_numpy(x[lo:lo + 7]).float())
    s = acc.stats()
    ref = FeatureStats.from_features(x.astype(np.float32))
    assert s.num == 23 and s.features.shape == (10, 5)
    np.testing.assert_allclose(s.mean, ref.mean, rtol=1e-6)
    np.testing.assert_allclose(s.cov, ref.cov, rtol=1e-5, atol=1e-6)


def test_cache_folder_and_subset(metrics_cache):
    assert cache_dir() == metrics_cache
    idx = dataset_indices(100, 10)
    assert len(idx) == 10 and np.all(np.diff(idx) > 0) and np.array_equal(idx, dataset_indices(100, 10))
    assert np.array_equal(dataset_indices(5, 10), np.arange(5))


def test_cache_hit_identical_and_changes_with_one_image(metrics_cache, image_set, vgg_small, list_dataset):
    first = compute_dataset_stats(image_set, vgg_small, batch=4)
    files = sorted(metrics_cache.glob("stats-vgg-*.npz"))
    assert len(files) == 1
    assert first.features.shape == (8, 1472) and first.num == 8
    # A hit reads the file: identical numbers, and no second file.
    calls = []

    class Counting(torch.nn.Module):
        name, dim, fingerprint = vgg_small.name, vgg_small.dim, vgg_small.fingerprint

        def forward(self, images):
            calls.append(images.shape[0])
            return vgg_small(images)

    again = compute_dataset_stats(image_set, Counting(), batch=4)
    assert calls == [] and np.array_equal(again.mean, first.mean) and np.array_equal(again.cov, first.cov)
    # One pixel of one image changed: another key, other statistics.
    images = image_set.images.clone()
    images[3, 0, 10, 10] ^= 0x40
    changed = compute_dataset_stats(list_dataset(images), Counting(), batch=4)
    assert sum(calls) == 8
    assert len(list(metrics_cache.glob("stats-vgg-*.npz"))) == 2
    assert not np.array_equal(changed.mean, first.mean)


def test_vgg_fid_zero_to_itself_and_grows_with_noise(metrics_cache, vgg_small, make_images, list_dataset):
    images = make_images(12, 48, seed=1)
    real = compute_dataset_stats(list_dataset(images), vgg_small, use_cache=False)
    g = torch.Generator().manual_seed(0)
    values = []
    for sigma in (0.0, 10.0, 40.0):
        noisy = (images.float() + sigma * torch.randn(images.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)
        fake = compute_dataset_stats(list_dataset(noisy), vgg_small, use_cache=False)
        values.append(fid_from_stats(real, fake))
    assert values[0] == pytest.approx(0.0, abs=1e-6)
    assert values[0] < values[1] < values[2]


def test_feature_net_names():
    with pytest.raises(MetricError, match="inception metrics need the FID Inception-v3 weights"):
        get_feature_net("inception", inception_weights=None)
    with pytest.raises(MetricError, match="expected one of vgg, inception"):
        get_feature_net("clip")
