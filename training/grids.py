"""Fixed-seed sample grids written at every snapshot: images, depth, an expression sweep.

The same z and the same data set items' cameras and FLAME parameters are used at every
snapshot of a run (drawn from `seed`), so the grids show one run's progress frame by frame.
Images (B, 3, H, W) in [-1, 1]; depth maps drawn near = white.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import torch
import torch.nn.functional as F

from next3d.image_io import depth_to_image, save_image
from next3d.render.cameras import orbit_label

from .data_order import LabelTable


def grid_inputs(labels: LabelTable, count: int, z_dim: int, seed: int = 0) -> Dict[str, object]:
    """`count` fixed z (count, z_dim) with the cameras and FLAME parameters of fixed items."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(labels), (count,), generator=g)
    z = torch.randn(count, z_dim, generator=g)
    taken = labels.take(idx, "cpu")
    return {"z": z, "c": taken["c"], "flame": taken["flame"], "indices": idx}


def _tile(images: torch.Tensor, cols: int) -> torch.Tensor:
    """(N, C, H, W) -> (C, rows*H, cols*W), row-major; missing cells black."""
    n, c, h, w = images.shape
    rows = -(-n // cols)
    pad = rows * cols - n
    if pad:
        images = torch.cat([images, torch.full((pad, c, h, w), -1.0)])
    return images.reshape(rows, cols, c, h, w).permute(2, 0, 3, 1, 4).reshape(c, rows * h, cols * w)


@torch.no_grad()
def generate(G, z, c, flame, batch: int = 8, device="cpu") -> Dict[str, torch.Tensor]:
    """G outputs for many inputs in batches (noise 'const', CPU results)."""
    images, depths = [], []
    for i in range(0, z.shape[0], batch):
        fl = {k: v[i:i + batch].to(device) for k, v in flame.items()}
        out = G(z[i:i + batch].to(device), c[i:i + batch].to(device), fl, noise_mode="const")
        images.append(out["image"].float().cpu())
        depths.append(out["image_depth"].float().cpu())
    return {"image": torch.cat(images), "depth": torch.cat(depths)}


def expression_sweep_inputs(labels: LabelTable, z_dim: int, steps: int = 7, components: int = 3, seed: int = 0):
    """One z, frontal camera, the mean FLAME parameters with expression component k swept over
    ±2 std of the data set (rows: components, columns: steps)."""
    g = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(1, z_dim, generator=g)
    base = {k: v.mean(0, keepdim=True) for k, v in labels.flame.items()}
    rows = []
    if "expression" not in base:
        return None
    comps = min(components, base["expression"].shape[1])
    std = labels.flame["expression"].std(0)
    for k in range(comps):
        for t in torch.linspace(-2, 2, steps):
            f = {key: v.clone() for key, v in base.items()}
            f["expression"][0, k] = base["expression"][0, k] + t * std[k]
            rows.append(f)
    flame = {k: torch.cat([r[k] for r in rows]) for k in base}
    n = len(rows)
    return {"z": z.expand(n, -1), "c": orbit_label(0.0, 0.0).expand(n, -1), "flame": flame, "cols": steps}


def write_grids(G, inputs, sweep, out_dir: Path, tag: str, cols: int, device="cpu") -> Dict[str, Path]:
    """fakes-<tag>.png (images), depth-<tag>.png, expression-<tag>.png in out_dir."""
    out_dir = Path(out_dir)
    res = generate(G, inputs["z"], inputs["c"], inputs["flame"], device=device)
    size = res["image"].shape[-1]
    depth = torch.stack([depth_to_image(d) for d in res["depth"]])
    depth = F.interpolate(depth, size=(size, size), mode="nearest")
    paths = {"fakes": out_dir / f"fakes-{tag}.png", "depth": out_dir / f"depth-{tag}.png"}
    save_image(_tile(res["image"], cols), paths["fakes"])
    save_image(_tile(depth, cols), paths["depth"])
    if sweep is not None:
        s = generate(G, sweep["z"], sweep["c"], sweep["flame"], device=device)
        paths["expression"] = out_dir / f"expression-{tag}.png"
        save_image(_tile(s["image"], sweep["cols"]), paths["expression"])
    return paths


def write_reals(dataset, inputs, out_dir: Path, cols: int) -> Path:
    """reals.png: the items whose cameras and FLAME parameters the fake grid uses."""
    imgs = torch.stack([torch.as_tensor(dataset[int(i)]["image"]).float() / 127.5 - 1 for i in inputs["indices"]])
    path = Path(out_dir) / "reals.png"
    save_image(_tile(imgs, cols), path)
    return path
