"""The deformation-aware discriminator's extra input: the FLAME mesh rendered under the camera.

`MeshConditioner(flame_layer, mode, resolution)(flame_params, c)` -> (B, C, r, r) in [-1, 1]:
for real items from their FLAME parameters, for fakes from the driving mesh (the FLAME
parameters the generator was given), rendered by `next3d.render.mesh_shading.render_mesh`
under the camera label c (B, 25). mode "normals" gives the 3-channel camera-space normal
map, "shaded" the 1-channel Lambertian grey image; background -1. No gradients flow (the
rendering is a condition, the same function of the same kind of input for real and fake).
A data set in the published layout gives `vertices` (B, V, 3) instead of parameters.

Every rendering is a function of one item's parameters and camera, and training draws
both reals and the fakes' conditioning from the data set's items, so the same few thousand
renderings recur every step (3 of them per sample and step: G main, D main's fake and
real). On the CPU the conditioner keeps them: each row is looked up by a hash of its
inputs' bytes, a miss is rendered alone (batch 1, so a row's value never depends on which
rows shared its batch: a resumed run gets the same bits as an uninterrupted one), and the
least recently used rows go when the cache exceeds `cache_mib`. CUDA inputs are rendered
batched and never cached (reading them on the host would sync the device every call).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from typing import Iterator, List, Mapping

import torch

from next3d.render.mesh_shading import render_mesh
from torch_utils.misc import assert_shape

DEFAULT_CACHE_MIB = 1024.0
"""The demo preset's 3,617 training items at 64^2 normals take 174 MiB; FFHQ's 70k at 256^2 would take 51 GiB."""


class MeshConditioner(torch.nn.Module):
    """Renders meshes for D; holds no trainable state (the FLAME layer is the generator's)."""

    def __init__(self, flame: torch.nn.Module, mode: str = "normals", resolution: int = 64,
                 cache_mib: float = DEFAULT_CACHE_MIB):
        super().__init__()
        if mode not in ("normals", "shaded"):
            raise ValueError(f"MeshConditioner: mode={mode!r}, expected 'normals' or 'shaded'")
        if not cache_mib >= 0:
            raise ValueError(f"MeshConditioner: cache_mib={cache_mib!r}, expected a size >= 0 (0 = no cache)")
        self.flame = flame
        self.mode = mode
        self.resolution = int(resolution)
        self.channels = 3 if mode == "normals" else 1
        self.cache_bytes = int(cache_mib * 2**20)
        self._cache: "OrderedDict[bytes, torch.Tensor]" = OrderedDict()
        self._cached_bytes = 0
        self.hits = 0
        self.misses = 0

    @torch.no_grad()
    def forward(self, flame: Mapping[str, torch.Tensor], c: torch.Tensor) -> torch.Tensor:
        """flame: FLAME parameters (B, n) each, or {'vertices': (B, V, 3)}; c (B, 25) -> (B, C, r, r)."""
        inputs = {"vertices": flame["vertices"]} if "vertices" in flame else \
            {k: v for k, v in flame.items() if k != "landmarks"}
        batch = c.shape[0]
        assert_shape(c, [batch, 25], "camera label c")
        for key, value in inputs.items():
            assert_shape(value, [batch] + list(value.shape[1:]), f"flame '{key}'")
        if self.cache_bytes <= 0 or c.is_cuda:
            return self._render(inputs, c)
        rows: List[torch.Tensor] = []
        for i, key in enumerate(self._row_keys(inputs, c)):
            row = self._cache.get(key)
            if row is not None:
                self._cache.move_to_end(key)
                self.hits += 1
            else:
                row = self._render({k: v[i:i + 1] for k, v in inputs.items()}, c[i:i + 1])[0]
                self._store(key, row)
                self.misses += 1
            rows.append(row)
        return torch.stack(rows)

    def _render(self, inputs: Mapping[str, torch.Tensor], c: torch.Tensor) -> torch.Tensor:
        vertices = inputs["vertices"] if "vertices" in inputs else self.flame(**inputs).vertices
        out = render_mesh(vertices.float(), self.flame.faces, c.float(), self.resolution)
        return out.normals if self.mode == "normals" else out.shaded[:, :1]

    @staticmethod
    def _row_keys(inputs: Mapping[str, torch.Tensor], c: torch.Tensor) -> List[bytes]:
        """One digest per row of every input's bytes (names, dtypes and shapes included)."""
        arrays = [("c", c)] + sorted(inputs.items())
        host = [(name, t.detach().cpu().contiguous()) for name, t in arrays]
        host = [(name, t.float() if t.dtype == torch.bfloat16 else t) for name, t in host]  # numpy has no bf16
        keys = []
        for i in range(c.shape[0]):
            h = hashlib.blake2b(digest_size=20)
            for name, t in host:
                h.update(f"{name}:{t.dtype}:{tuple(t.shape[1:])};".encode())
                h.update(t[i].numpy().tobytes())
            keys.append(h.digest())
        return keys

    def _store(self, key: bytes, row: torch.Tensor) -> None:
        size = row.numel() * row.element_size()
        if size > self.cache_bytes:
            return
        self._cache[key] = row
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.numel() * old.element_size()

    @contextlib.contextmanager
    def uncached(self) -> Iterator[None]:
        """Within: every call renders its batch afresh and nothing is stored (benchmarks' reference side)."""
        saved, self.cache_bytes = self.cache_bytes, 0
        try:
            yield
        finally:
            self.cache_bytes = saved

    def clear_cache(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0

    def extra_repr(self) -> str:
        return (f"mode={self.mode}, resolution={self.resolution}, channels={self.channels}, "
                f"cache={self.cache_bytes / 2**20:g} MiB")
