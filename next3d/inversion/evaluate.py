"""Measuring an inversion where novel views are ground truth: items of a `next3d dataset synth` set.

A synthetic item is drawn from (seed, index) alone (`next3d.synthetic.scene.sample_scene`), so
the same person — identity, expression, hair, skin, lighting, background — can be rendered
again from any camera: `SyntheticRerender(dataset)(index, camera)` draws the item's scene from
the set's recorded seed and distributions (dataset.json `source`), puts `camera` in place of
the item's own and renders it with the set's renderer (`render_scene`). Re-rendered with its
own camera, an item reproduces its stored image (`check`).

Per stage state (`pipeline.StageState`) `evaluate_state` reports, at the input view and at each
named truth view (the generator's default orbit at yaw ±30°, `views.orbit_cameras`):
PSNR (dB, images in [-1, 1]), ST-LPIPS (VGG), and the dlib ID similarity (cosine of the
128-D descriptors) of the render to the true image of that view; and the expression error:
the mean per-vertex distance (mm) between the state's and the truth's meshes with expression
and jaw only (shape, neck and eyes zero: the mean identity), as issue 9's fitter note.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from next3d.inversion.losses import psnr, render


class SyntheticRerender:
    """Re-render items of a synthetic set from other cameras (module docstring)."""

    def __init__(self, dataset_path: Union[str, Path]):
        from next3d.inversion.target import InversionInputError
        from next3d.synthetic.distributions import SynthDistributions
        from next3d.synthetic.head import load_head_assets

        path = Path(dataset_path)
        try:
            meta = json.loads((path / "dataset.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InversionInputError(f"data set {path}: cannot read dataset.json ({exc})") from None
        source = meta.get("source") or {}
        if source.get("tool") != "next3d dataset synth" or "distributions" not in source:
            raise InversionInputError(f"data set {path}: not made by `next3d dataset synth` (no seed and "
                                      f"distributions to re-render from)")
        fields = {f.name: f for f in dataclasses.fields(SynthDistributions)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in source["distributions"].items()
                  if k in fields}
        self.config = SynthDistributions(**values)
        self.seed = int(source["seed"])
        self.resolution = int(meta["resolution"])
        self.assets = load_head_assets(source.get("flame_dir"))

    def __call__(self, index: int, camera: torch.Tensor, resolution: Optional[int] = None) -> np.ndarray:
        """(R, R, 3) uint8: item `index` seen by `camera` (25,) or (1, 25)."""
        from next3d.synthetic.render import render_scene
        from next3d.synthetic.scene import sample_scene

        scene = sample_scene(self.config, self.assets, self.seed, int(index))
        scene = dataclasses.replace(scene, camera=np.asarray(camera, dtype=np.float32).reshape(25))
        with torch.no_grad():
            item = render_scene(self.assets, scene, resolution or self.resolution, self.config.supersample,
                                self.config.shadows, int(index))
        return item.image

    def own_camera(self, index: int) -> np.ndarray:
        from next3d.synthetic.scene import sample_scene

        return sample_scene(self.config, self.assets, self.seed, int(index)).camera


def to_tensor(image: np.ndarray, resolution: int) -> torch.Tensor:
    from next3d.inversion.target import image_tensor

    return image_tensor(image, resolution)


def expression_error_mm(G: torch.nn.Module, flame: Dict[str, torch.Tensor], truth: Dict[str, torch.Tensor]) -> float:
    """Mean per-vertex distance (mm) of expression + jaw meshes on the mean identity (module docstring)."""
    def mesh(f):
        keep = {"expression": f["expression"].float().cpu().reshape(1, -1), "jaw": f["jaw"].float().cpu().reshape(1, 3)}
        return G.flame.cpu()(**keep).vertices[0]

    with torch.no_grad():
        return float((mesh(flame) - mesh(truth)).norm(dim=-1).mean() * 1000.0)


@torch.no_grad()
def evaluate_state(state, target_image: torch.Tensor, truth_views: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
                   lpips: Optional[torch.nn.Module] = None, face_models=None,
                   truth_flame: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, float]:
    """Metrics of one stage (module docstring). truth_views: name -> (camera (1, 25), true image (1, 3, R, R))."""
    G = state.G
    device = next(G.parameters()).device
    views = {"input": (state.camera, target_image)}
    views.update(truth_views)
    out: Dict[str, float] = {}
    for name, (cam, truth) in views.items():
        img = render(G, state.ws.to(device), cam.to(device).float(),
                     {k: v.to(device) for k, v in state.flame.items()}).float().cpu()
        truth = truth.float().cpu()
        out[f"psnr_{name}"] = float(psnr(img, truth)[0])
        if lpips is not None:
            dev = next(lpips.parameters()).device
            out[f"stlpips_{name}"] = float(lpips(img.to(dev), truth.to(dev))[0])
        if face_models is not None:
            from training.metrics.face_models import cosine_similarity

            a, b = face_models.analyse(img[0]), face_models.analyse(truth[0])
            out[f"id_{name}"] = float(cosine_similarity(a.descriptor[None], b.descriptor[None])[0])
            out[f"id_detected_{name}"] = float(a.detected and b.detected)
    if truth_flame is not None:
        out["expression_error_mm"] = expression_error_mm(G, state.flame, truth_flame)
    return out


def truth_views(rerender: SyntheticRerender, G: torch.nn.Module, index: int,
                yaws_deg: Sequence[float] = (-30.0, 30.0)) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """name ('yaw-30', ...) -> (orbit camera (1, 25), true image (1, 3, R, R) at G's resolution)."""
    from next3d.inversion.views import orbit_cameras, view_name

    cams = orbit_cameras(G, yaws_deg)
    res = int(G.img_resolution)
    return {view_name(y): (cams[i:i + 1], to_tensor(rerender(index, cams[i]), res)) for i, y in enumerate(yaws_deg)}


__all__ = ["SyntheticRerender", "to_tensor", "expression_error_mm", "evaluate_state", "truth_views"]
