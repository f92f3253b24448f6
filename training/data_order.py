"""What every step sees: the real items (data order, sharded by rank) and the fakes' draws.

Data order: an endless stream of epochs, each a permutation of the item indices drawn from
(seed, epoch). With a warm start on a subset (`warmup_items`), the first `warmup_positions`
stream positions cycle through permutations of a fixed seeded subset of that many items
instead (so each is seen often), and the full epochs start after them. The global batch of step s is stream positions [s*B, (s+1)*B), split into
micro-batches of `batch_gpu` items; micro-batch m goes to rank m % world_size. The stream
position is therefore fully given by the step counter: a resumed run continues with the
exact items it would have seen.

Per-micro-batch seeding: before a phase runs micro-batch m of step s, the torch RNG is
seeded from (seed, s, phase, m). Every random draw inside (z, the random items whose camera
and FLAME parameters the fakes take, the pose swap, the ray jitter, the synthesis noise, the
label noise) depends only on that, not on the process count or on anything drawn before —
so 1 process and N processes with the same global batch compute the same thing, and a
resumed run repeats the draws of the uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import torch

PHASE_IDS = {"G_main": 0, "G_reg": 1, "D_main": 2, "D_reg": 3, "G_recon": 4}
FLAME_KEYS = ("shape", "expression", "neck", "jaw", "left_eye", "right_eye")


def phase_seed(seed: int, step: int, phase: str, micro: int) -> int:
    """A 63-bit seed for micro-batch `micro` of `phase` at `step` (distinct for distinct inputs)."""
    ss = np.random.SeedSequence([int(seed), int(step), PHASE_IDS[phase], int(micro)])
    lo, hi = (int(x) for x in ss.generate_state(2, dtype=np.uint32))
    return (lo | (hi << 32)) & ((1 << 63) - 1)


class DataOrder:
    """Stream position -> item index (a fresh permutation each epoch; optionally a subset first)."""

    def __init__(self, num_items: int, seed: int, warmup_positions: int = 0, warmup_items: int = 0):
        if num_items < 1:
            raise ValueError("DataOrder: the data set is empty")
        self.num_items = int(num_items)
        self.seed = int(seed)
        self.subset = warmup_subset(num_items, seed, warmup_items)
        self.warmup_positions = int(warmup_positions) if self.subset is not None else 0
        self._key = None
        self._perm: Optional[np.ndarray] = None

    def index(self, position: int) -> int:
        position = int(position)
        if position < self.warmup_positions:
            epoch, offset = divmod(position, len(self.subset))
            key = ("subset", epoch)
        else:
            epoch, offset = divmod(position - self.warmup_positions, self.num_items)
            key = ("all", epoch)
        if key != self._key:
            if key[0] == "subset":
                order = np.random.RandomState([self.seed & 0xFFFFFFFF, epoch, 1]).permutation(len(self.subset))
                self._perm = self.subset[order]
            else:
                self._perm = np.random.RandomState([self.seed & 0xFFFFFFFF, epoch]).permutation(self.num_items)
            self._key = key
        return int(self._perm[offset])

    def micro_batch(self, step: int, micro: int, batch: int, batch_gpu: int) -> List[int]:
        start = step * batch + micro * batch_gpu
        return [self.index(p) for p in range(start, start + batch_gpu)]


def warmup_subset(num_items: int, seed: int, warmup_items: int) -> Optional[np.ndarray]:
    """The sorted item indices the warm start draws from (None = all items)."""
    if warmup_items <= 0 or warmup_items >= num_items:
        return None
    pick = np.random.RandomState([int(seed) & 0xFFFFFFFF, 7]).permutation(num_items)[:int(warmup_items)]
    return np.sort(pick)


def warmup_positions(warmup_kimg: float, batch: int) -> int:
    """Stream positions the warm start's steps consume (its steps are those with step * batch < warmup nimg)."""
    nimg = int(warmup_kimg * 1000)
    return -(-nimg // batch) * batch


def micro_batches_of_rank(batch: int, batch_gpu: int, rank: int, world_size: int) -> List[int]:
    """Indices of the micro-batches of one global batch that `rank` runs."""
    count = batch // batch_gpu
    return [m for m in range(count) if m % world_size == rank]


class RankBatchSampler(torch.utils.data.Sampler):
    """Index lists of this rank's micro-batches, step after step from `start_step` (endless)."""

    def __init__(self, order: DataOrder, batch: int, batch_gpu: int, rank: int, world_size: int, start_step: int = 0):
        self.order, self.batch, self.batch_gpu = order, batch, batch_gpu
        self.micros = micro_batches_of_rank(batch, batch_gpu, rank, world_size)
        self.start_step = int(start_step)

    def __iter__(self) -> Iterator[List[int]]:
        step = self.start_step
        while True:
            for m in self.micros:
                yield self.order.micro_batch(step, m, self.batch, self.batch_gpu)
            step += 1


@dataclass
class LabelTable:
    """Camera labels (N, 25) and FLAME parameters {key: (N, n)} of every item (for the fakes)."""

    cameras: torch.Tensor
    flame: Dict[str, torch.Tensor]

    def __len__(self) -> int:
        return self.cameras.shape[0]

    def take(self, idx: torch.Tensor, device) -> Dict[str, Any]:
        return {"c": self.cameras[idx].to(device), "flame": {k: v[idx].to(device) for k, v in self.flame.items()}}


def item_flame(item: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The FLAME input of one loader item: its parameters, or `vertices` (published layout)."""
    if "flame" in item and item["flame"] is not None:
        return {k: torch.as_tensor(v, dtype=torch.float32) for k, v in item["flame"].items()}
    if "vertices" in item:
        return {"vertices": torch.as_tensor(item["vertices"], dtype=torch.float32),
                "landmarks": torch.as_tensor(item["landmarks_3d"], dtype=torch.float32)}
    raise KeyError("flame")


def build_label_table(dataset) -> LabelTable:
    """Every item's camera and FLAME input; label-only reads (`cameras`, `flame_params(i)`)
    when the loader offers them (`training.dataset.ImageDataset`), else the items themselves."""
    cams, flames = [], []
    if getattr(dataset, "has_flame_params", False) and hasattr(dataset, "flame_params"):
        cameras = torch.as_tensor(np.asarray(dataset.cameras), dtype=torch.float32)
        flames = [{k: torch.as_tensor(v, dtype=torch.float32) for k, v in dataset.flame_params(i).items()}
                  for i in range(len(dataset))]
        return LabelTable(cameras=cameras, flame={k: torch.stack([f[k] for f in flames]) for k in flames[0]})
    for i in range(len(dataset)):
        item = dataset[i]
        cams.append(torch.as_tensor(item["camera"], dtype=torch.float32))
        flames.append(item_flame(item))
    keys = list(flames[0])
    return LabelTable(cameras=torch.stack(cams), flame={k: torch.stack([f[k] for f in flames]) for k in keys})


def collate(items: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """Loader items -> real_img (b, 3, R, R) float in [-1, 1], real_c (b, 25), real_flame dict,
    real_idx (b,) int64 (the items' data set indices, -1 when an item has none)."""
    img = torch.stack([torch.as_tensor(it["image"]) for it in items]).to(torch.float32) / 127.5 - 1
    flames = [item_flame(it) for it in items]
    return {"real_img": img, "real_c": torch.stack([torch.as_tensor(it["camera"], dtype=torch.float32) for it in items]),
            "real_flame": {k: torch.stack([f[k] for f in flames]) for k in flames[0]},
            "real_idx": torch.as_tensor([int(it.get("index", -1)) for it in items], dtype=torch.int64)}
