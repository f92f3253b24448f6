"""Feature statistics of image sets, and the data-set statistics cache.

`FeatureStats` holds, for N feature vectors of dimension D: the count, the mean (D,)
and the unbiased covariance (D, D) (float64, for FID), and the vectors themselves
(N, D float32, for KID; kept up to `max_keep`).

Data-set statistics are cached under $NEXT3D_METRICS_CACHE (default
~/.cache/next3d/metrics) in `stats-<net>-<key>.npz`, where the key is a SHA-1 of:
the feature network's fingerprint (definition + weights hash), the number of items,
and every used image's decoded pixels (shape and uint8 bytes, in order). Changing
one pixel of one image, the network, or the subset gives another file. Files are
written to a temporary name and renamed; they are read with `allow_pickle=False`.

Items used: all of the data set, or, with `max_items` below its length, a fixed random
subset (numpy RandomState(0), sorted), so every run compares against the same images.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from torch_utils.misc import assert_shape

CACHE_ENV = "NEXT3D_METRICS_CACHE"
FORMAT = "next3d-feature-stats-v1"


def cache_dir() -> Path:
    """The statistics cache folder ($NEXT3D_METRICS_CACHE or ~/.cache/next3d/metrics)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "next3d" / "metrics"


@dataclass
class FeatureStats:
    """num, mean (D,) float64, cov (D, D) float64 (unbiased, N - 1), features (M, D) float32 or None."""

    num: int
    mean: np.ndarray
    cov: np.ndarray
    features: Optional[np.ndarray] = None

    @classmethod
    def from_features(cls, feats: np.ndarray, keep: bool = True) -> "FeatureStats":
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"features: expected (N >= 2, D), got {feats.shape}")
        return cls(num=feats.shape[0], mean=feats.mean(0), cov=np.cov(feats, rowvar=False),
                   features=feats.astype(np.float32) if keep else None)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            arrays = dict(format=np.array(FORMAT), num=np.array(self.num), mean=self.mean, cov=self.cov)
            if self.features is not None:
                arrays["features"] = self.features
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: Path) -> "FeatureStats":
        with np.load(path, allow_pickle=False) as z:
            if str(z["format"]) != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} file")
            return cls(num=int(z["num"]), mean=z["mean"], cov=z["cov"],
                       features=z["features"] if "features" in z.files else None)


class StatsAccumulator:
    """Running sums (float64) of feature batches (B, D); keeps the first `max_keep` vectors."""

    def __init__(self, dim: int, max_keep: Optional[int] = None):
        self.dim = int(dim)
        self.max_keep = max_keep
        self.num = 0
        self.sum = np.zeros(dim, np.float64)
        self.outer = np.zeros((dim, dim), np.float64)
        self.kept = []

    def append(self, feats: torch.Tensor) -> None:
        assert_shape(feats, [None, self.dim], "features")
        x = feats.detach().cpu().double().numpy()
        self.num += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x
        have = sum(k.shape[0] for k in self.kept)
        if self.max_keep is None or have < self.max_keep:
            room = x.shape[0] if self.max_keep is None else self.max_keep - have
            self.kept.append(x[:room].astype(np.float32))

    def stats(self) -> FeatureStats:
        if self.num < 2:
            raise ValueError(f"feature statistics need at least 2 images, got {self.num}")
        mean = self.sum / self.num
        cov = (self.outer - self.num * np.outer(mean, mean)) / (self.num - 1)
        feats = np.concatenate(self.kept) if self.kept else None
        return FeatureStats(num=self.num, mean=mean, cov=cov, features=feats)


def dataset_indices(num_items: int, max_items: Optional[int]) -> np.ndarray:
    """The data-set items a statistic uses (module docstring)."""
    if max_items is None or max_items >= num_items:
        return np.arange(num_items)
    return np.sort(np.random.RandomState(0).choice(num_items, size=int(max_items), replace=False))


def _collate_images(items):
    return torch.stack([it["image"] for it in items])


def iter_dataset_images(dataset, indices: Sequence[int], batch: int, workers: int = 0) -> Iterator[torch.Tensor]:
    """uint8 image batches (B, 3, H, W) of the given items, in order."""
    subset = torch.utils.data.Subset(dataset, [int(i) for i in indices])
    loader = torch.utils.data.DataLoader(subset, batch_size=batch, shuffle=False, num_workers=workers,
                                         collate_fn=_collate_images)
    for images in loader:
        if images.dtype != torch.uint8:
            raise ValueError(f"data set images: expected uint8 (3, H, W), got {images.dtype}")
        yield images


def content_key(dataset, indices: Sequence[int], fingerprint: str, batch: int = 32, workers: int = 0,
                on_progress: Optional[Callable[[int], None]] = None) -> str:
    """SHA-1 (hex) of the feature-net fingerprint, the item count and every used image's pixels."""
    h = hashlib.sha1()
    h.update(f"{FORMAT}|{fingerprint}|{len(indices)}|".encode())
    for images in iter_dataset_images(dataset, indices, batch, workers):
        for img in images:
            h.update(str(tuple(img.shape)).encode())
            h.update(img.contiguous().numpy().tobytes())
        if on_progress is not None:
            on_progress(images.shape[0])
    return h.hexdigest()


@torch.no_grad()
def compute_dataset_stats(dataset, net, *, max_items: Optional[int] = None, batch: int = 16, workers: int = 0,
                          max_keep: Optional[int] = None, use_cache: bool = True,
                          cache_folder: Optional[Path] = None,
                          on_progress: Optional[Callable[[int], None]] = None) -> FeatureStats:
    """Feature statistics of a data set's images on feature network `net` (cached by content).

    dataset: items with 'image' (3, H, W) uint8. net: a `feature_nets.FeatureNet`.
    on_progress(n) is called with image counts (hashing pass, then feature pass on a miss).
    """
    indices = dataset_indices(len(dataset), max_items)
    if len(indices) < 2:
        raise ValueError(f"data set: feature statistics need at least 2 images, got {len(indices)}")
    path = None
    if use_cache:
        key = content_key(dataset, indices, net.fingerprint, workers=workers, on_progress=on_progress)
        path = Path(cache_folder or cache_dir()) / f"stats-{net.name}-{key[:24]}.npz"
        if path.is_file():
            try:
                return FeatureStats.load(path)
            except (OSError, ValueError, KeyError):
                pass  # unreadable cache entry: recompute and overwrite
    acc = StatsAccumulator(net.dim, max_keep=max_keep)
    for images in iter_dataset_images(dataset, indices, batch, workers):
        acc.append(net(images))
        if on_progress is not None:
            on_progress(images.shape[0])
    stats = acc.stats()
    if path is not None:
        stats.save(path)
    return stats
