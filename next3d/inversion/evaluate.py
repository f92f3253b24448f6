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
and jaw only (shape, neck and eyes zero: the mean identity), as issue 9's fitter note; and the
camera error: the angle (degrees) between the state's and the true camera rotation.

`SyntheticTruth(dataset, index, G)` gathers all of it for one item and scores each stage as the
pipeline reaches it (`invert(..., on_stage=truth.score)`); `next3d invert --target-item` of a
synthetic set writes the result into metrics.json ("truth"), and
`gen_scripts/eval_invert_synth.py` averages it over several items.
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


def camera_error_deg(camera: torch.Tensor, truth: torch.Tensor, neck: Optional[torch.Tensor] = None,
                     truth_neck: Optional[torch.Tensor] = None) -> float:
    """Angle (degrees) between two cameras' rotations (labels (1, 25)) in the HEAD's frame: each side's
    neck rotation (axis-angle (1, 3)) folded into its camera, R_head = R_neck^T R_cam2world, since the
    synthetic heads turn their neck while a fit may turn the camera instead."""
    from next3d.flame.lbs import batch_rodrigues
    from next3d.render.cameras import split_label

    def head_frame(c, n):
        r = split_label(c.double().cpu().reshape(1, 25))[0][0, :3, :3]
        return r if n is None else batch_rodrigues(n.double().cpu().reshape(1, 3))[0].T @ r

    ra, rb = head_frame(camera, neck), head_frame(truth, truth_neck)
    cos = ((ra.T @ rb).trace() - 1.0) / 2.0
    return float(torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0))))


@torch.no_grad()
def evaluate_state(state, target_image: torch.Tensor, truth_views: Dict[str, Tuple[torch.Tensor, torch.Tensor]],
                   lpips: Optional[torch.nn.Module] = None, face_models=None,
                   truth_flame: Optional[Dict[str, torch.Tensor]] = None,
                   truth_camera: Optional[torch.Tensor] = None) -> Dict[str, float]:
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
    if truth_camera is not None:
        necks = (state.flame.get("neck"), truth_flame.get("neck")) if truth_flame is not None else (None, None)
        out["camera_error_deg"] = camera_error_deg(state.camera, truth_camera, *necks)
    return out


def truth_views(rerender: SyntheticRerender, G: torch.nn.Module, index: int,
                yaws_deg: Sequence[float] = (-30.0, 30.0)) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """name ('yaw-30', ...) -> (orbit camera (1, 25), true image (1, 3, R, R) at G's resolution)."""
    from next3d.inversion.views import orbit_cameras, view_name

    cams = orbit_cameras(G, yaws_deg)
    res = int(G.img_resolution)
    return {view_name(y): (cams[i:i + 1], to_tensor(rerender(index, cams[i]), res)) for i, y in enumerate(yaws_deg)}


class SyntheticTruth:
    """The truth about item `index` of a synthetic set, for scoring an inversion's stages.

    Holds the true renders at yaw ±30 on G's orbit (`truth_views`), the item's true FLAME and
    camera; `score(name, state)` (the pipeline's `on_stage` signature) evaluates a stage and
    records it in `self.stages[name]`. Raises `InversionInputError` for a set that cannot be
    re-rendered (not made by `next3d dataset synth`) or a missing item."""

    def __init__(self, dataset_path: Union[str, Path], index: int, G: torch.nn.Module, target_image: torch.Tensor,
                 lpips: Optional[torch.nn.Module] = None, face_models=None,
                 yaws_deg: Sequence[float] = (-30.0, 30.0)):
        from next3d.inversion.target import dataset_item, full_flame

        rerender = SyntheticRerender(dataset_path)
        _, item = dataset_item(dataset_path, index, G)
        self.index = int(index)
        self.flame = full_flame(G, {k: v[None] for k, v in item["flame"].items()})
        self.camera = item["camera"].float()[None]
        self.views = truth_views(rerender, G, index, yaws_deg)
        self.target_image = target_image.float().cpu()
        self.lpips = lpips
        self.face_models = face_models
        self.stages: Dict[str, Dict[str, float]] = {}

    def score(self, name: str, state) -> None:
        self.stages[name] = evaluate_state(state, self.target_image, self.views, self.lpips, self.face_models,
                                           truth_flame=self.flame, truth_camera=self.camera)

    def report(self) -> dict:
        """metrics.json's "truth" section: what was compared, and the scores per stage."""
        return {"available": True, "index": self.index, "views": list(self.views),
                "compared_with": "the item re-rendered by the synthetic set's renderer at yaw +-30 on the "
                                 "generator's orbit; expression error on the mean identity (mm); camera "
                                 "rotation error (deg)",
                "stages": self.stages}


def average_stages(reports: Sequence[dict]) -> Dict[str, Dict[str, float]]:
    """Mean of each stage's scores over several items' `report()`s (keys present in every report)."""
    stages: Dict[str, Dict[str, float]] = {}
    for name in reports[0]["stages"] if reports else []:
        rows = [r["stages"][name] for r in reports if name in r["stages"]]
        keys = set.intersection(*(set(r) for r in rows))
        stages[name] = {k: float(np.mean([r[k] for r in rows])) for k in sorted(keys)}
    return stages


__all__ = ["SyntheticRerender", "SyntheticTruth", "to_tensor", "expression_error_mm", "camera_error_deg",
           "evaluate_state", "truth_views", "average_stages"]
