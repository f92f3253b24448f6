"""A low-dimensional UV albedo for the photometric fit: PCA of the synthetic appearance model's skin.

The project's procedural skin (`next3d.synthetic.appearance.skin_texture`: tone, redness, blotches,
lips, brows, lash line, stubble, placed from the head's landmarks in its UV layout) is drawn
`count` times from its own distributions; the textures (3, S, S) in linear RGB are flattened and
their principal components kept. An albedo is then

    albedo(coeff) = mean + sum_k coeff_k * std_k * basis_k        (3, S, S), linear RGB

with coeff in standard deviations (a unit Gaussian prior). The first components are overall
tone and brightness, then redness, lip and brow contrast, stubble.

`build_albedo_basis` computes it; the basis of the built-in head is stored in
`data/albedo_<head>.npz` (float16, keyed by head version and topology) and read by
`load_albedo_basis`, which builds (and keeps in memory) a basis for any other head model.
Regenerate after the built-in head or the skin model changes:
`NEXT3D_REGENERATE_ALBEDO=1 python -m pytest tests/next3d/fitting/test_albedo_basis.py`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from next3d.fitting.stored_data import stored_file

SIZE = 64
COMPONENTS = 10
COUNT = 96
SEED = 4242


@dataclass(frozen=True)
class AlbedoBasis:
    """mean (3, S, S), basis (K, 3, S, S) orthonormal directions, std (K,) their standard deviations;
    all float32, linear RGB, UV layout of the head (row 0 = v = 1, `HeadAssets.uv_bake`)."""

    mean: torch.Tensor
    basis: torch.Tensor
    std: torch.Tensor

    @property
    def num_components(self) -> int:
        return int(self.basis.shape[0])

    def albedo(self, coeff: torch.Tensor) -> torch.Tensor:
        """coeff (B, K) in standard deviations -> albedo textures (B, 3, S, S) (not clamped)."""
        assert coeff.ndim == 2 and coeff.shape[1] == self.num_components, coeff.shape
        return self.mean[None] + torch.einsum("bk,kcij->bcij", coeff * self.std, self.basis)

    def project(self, texture: torch.Tensor) -> torch.Tensor:
        """Textures (B, 3, S, S) -> their coefficients (B, K) (least squares in the basis)."""
        d = (texture - self.mean[None]).flatten(1)
        return (d @ self.basis.flatten(1).T) / self.std


def build_albedo_basis(assets, count: int = COUNT, size: int = SIZE, components: int = COMPONENTS,
                       seed: int = SEED) -> AlbedoBasis:
    """PCA of `count` skin textures drawn from the synthetic appearance model (default distributions)."""
    from next3d.synthetic.appearance import sample_appearance, sample_hair_colour, skin_texture
    from next3d.synthetic.distributions import SynthDistributions

    if components >= count:
        raise ValueError(f"components: expected fewer than count={count}, got {components}")
    dist = SynthDistributions()
    rng = np.random.default_rng(seed)
    texs = []
    for _ in range(count):
        _, hair_rgb = sample_hair_colour(dist, rng)
        app = sample_appearance(dist, rng, hair_rgb)
        texs.append(skin_texture(assets, app, size)[0].double())
    x = torch.stack(texs).flatten(1)  # (N, 3 S S)
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    std = s[:components] / (count - 1) ** 0.5
    shape = (3, size, size)
    return AlbedoBasis(mean=mean.reshape(shape).float(), basis=vt[:components].reshape(components, *shape).float(),
                       std=std.float())


def basis_path(head: dict) -> Path:
    return stored_file("albedo", head, ".npz")


def save_albedo_basis(basis: AlbedoBasis, head: dict) -> Path:
    """Store `basis` for `head` (head_identity dict) as float16 npz."""
    path = basis_path(head)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, mean=basis.mean.numpy().astype(np.float16), basis=basis.basis.numpy().astype(np.float16),
                        std=basis.std.numpy().astype(np.float32),
                        head=np.array([head["head_model"], head["head_version"], head["head_topology"]]))
    tmp.replace(path)
    return path


def read_stored_basis(head: dict) -> Optional[AlbedoBasis]:
    """The stored basis of this head (matching version and topology), else None."""
    path = basis_path(head)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if [str(v) for v in data["head"]] != [head["head_model"], head["head_version"], head["head_topology"]]:
            return None
        return AlbedoBasis(mean=torch.from_numpy(data["mean"].astype(np.float32)),
                           basis=torch.from_numpy(data["basis"].astype(np.float32)),
                           std=torch.from_numpy(data["std"].astype(np.float32)))


@functools.lru_cache(maxsize=4)
def _load(flame_dir: Optional[str]) -> AlbedoBasis:
    from next3d.synthetic.head import load_head_assets
    from training.dataset_schema import head_identity
    from next3d.flame import load_flame_model

    stored = read_stored_basis(head_identity(load_flame_model(flame_dir)))
    if stored is not None:
        return stored
    return build_albedo_basis(load_head_assets(flame_dir))


def load_albedo_basis(flame_dir: Optional[str] = None) -> AlbedoBasis:
    """The albedo basis of the head model in `flame_dir` (None: the built-in head): stored, else built."""
    return _load(None if flame_dir is None else str(flame_dir))
