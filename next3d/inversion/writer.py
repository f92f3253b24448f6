"""Stage 5 — the outputs of one inversion, each written atomically (temporary name, then rename).

Files in the output folder:

| file | content |
|---|---|
| `reconstruction.png` | input crop \\| reconstruction \\| difference (per-pixel \\|x − y\\|, 0 = black, ≥ 0.5 of the [-1, 1] range = white) |
| `view_yaw-45.png`, `view_yaw-30.png`, `view_yaw+30.png`, `view_yaw+45.png` | novel views (`views.novel_view_cameras`) |
| `expression_smile.png`, `expression_jaw_open.png` | the input view with a smile / the jaw opened (`views.expression_edits`) |
| `metrics.json` | per stage: seconds, steps, loss at the first and last step, PSNR and ST-LPIPS of the input view; ID similarity (dlib) at the input view and at yaw ±30; the target's provenance and warnings; the settings; with `--target-item` of a synthetic set, "truth": every stage scored against true re-renders at yaw ±30 (`evaluate.SyntheticTruth`) |
| `avatar.n3d` | the avatar (`next3d.animation.avatar.save_avatar_checkpoint`): the final generator, the pivot ws, FLAME shape, the neutral expression/jaw/eyes/neck, the camera, the source's SHA-256 and crop transform |

The avatar is written last: when it exists, the run finished. An interrupted run leaves the
files written so far complete and no partial avatar (nor any temporary file once the
process has unwound).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Dict, Optional, Union

import torch

from next3d.inversion.losses import psnr, render
from next3d.inversion.pipeline import InversionResult, StageState
from next3d.inversion.views import NOVEL_YAWS_DEG, expression_edits, novel_view_cameras, view_name

AVATAR_FILE = "avatar.n3d"
RECONSTRUCTION_FILE = "reconstruction.png"
METRICS_FILE = "metrics.json"


def output_names() -> Dict[str, str]:
    """Every file `write_outputs` writes: a short key -> file name."""
    names = {"avatar": AVATAR_FILE, "reconstruction": RECONSTRUCTION_FILE, "metrics": METRICS_FILE}
    for yaw in NOVEL_YAWS_DEG:
        names[view_name(yaw)] = f"view_{view_name(yaw)}.png"
    names["smile"] = "expression_smile.png"
    names["jaw_open"] = "expression_jaw_open.png"
    return names


def difference_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(3, H, W) in [-1, 1] each -> |x − y| shown in [-1, 1] (0 black, >= 0.5 white)."""
    return ((x - y).abs().clamp(0, 0.5) * 4.0 - 1.0)


@torch.no_grad()
def render_state(state: StageState, camera: Optional[torch.Tensor] = None,
                 flame: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
    """A stage's render (B, 3, R, R) at `camera` (B, 25) (default: its own) with `flame` (default: its own)."""
    G = state.G
    device = next(G.parameters()).device
    cam = (state.camera if camera is None else camera).to(device)
    fl = {k: v.to(device).expand(cam.shape[0], -1) for k, v in (state.flame if flame is None else flame).items()}
    return render(G, state.ws.to(device).expand(cam.shape[0], -1, -1), cam, fl).float().cpu()


@torch.no_grad()
def stage_metrics(result: InversionResult, lpips: Optional[torch.nn.Module]) -> Dict[str, dict]:
    """Per stage: seconds, steps, first/last loss, input-view PSNR and ST-LPIPS."""
    target = result.target.image.float().cpu()
    out = {}
    for name, state in result.stages.items():
        recon = render_state(state)
        entry = {"seconds": round(state.seconds, 3), "cpu_seconds": round(state.cpu_seconds, 3), "steps": state.steps, "first_loss": state.first_loss,
                 "last_loss": state.last_loss, "psnr_input": float(psnr(recon, target)[0])}
        if lpips is not None:
            dev = next(lpips.parameters()).device
            entry["stlpips_input"] = float(lpips(recon.to(dev), target.to(dev))[0])
        if state.note:
            entry["note"] = state.note
        out[name] = entry
    return out


def identity_metrics(result: InversionResult, views: Dict[str, torch.Tensor], recon: torch.Tensor) -> Dict[str, object]:
    """ID similarity (dlib descriptors, cosine) of the input crop to the reconstruction and to the ±30° views;
    {"available": False, "reason": ...} without dlib."""
    try:
        from training.metrics.face_models import FaceModels, cosine_similarity
        from training.metrics.feature_nets import MetricError
    except ImportError as exc:  # pragma: no cover - training/ ships with the repository
        return {"available": False, "reason": str(exc)}
    try:
        models = FaceModels()
    except MetricError as exc:
        return {"available": False, "reason": str(exc)}
    ref = models.analyse(result.target.image[0].float().cpu())
    out: Dict[str, object] = {"available": True, "input_face_detected": bool(ref.detected)}
    probes = {"input": recon}
    probes.update({k: v for k, v in views.items() if k in ("yaw-30", "yaw+30")})
    for key, img in probes.items():
        res = models.analyse(img)
        out[f"id_{key}"] = float(cosine_similarity(res.descriptor[None], ref.descriptor[None])[0])
        out[f"detected_{key}"] = bool(res.detected)
    return out


def _json_default(obj):
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_outputs(out_dir: Union[str, Path], result: InversionResult, lpips: Optional[torch.nn.Module] = None,
                  network: Optional[str] = None, identity: bool = True, extra: Optional[dict] = None) -> Dict[str, Path]:
    """Render and write every output of `result` into `out_dir` (module docstring); returns key -> path."""
    from next3d.animation.avatar import save_avatar_checkpoint
    from next3d.atomic_io import atomic_write_text
    from next3d.image_io import save_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = output_names()
    paths = {k: out / v for k, v in names.items()}
    final = result.final
    target = result.target
    recon = render_state(final)[0]
    inp = target.image[0].float().cpu()
    save_image(torch.cat([inp, recon, difference_image(recon, inp)], dim=-1), paths["reconstruction"])
    cams = novel_view_cameras(final.camera.float().cpu())
    view_images = render_state(final, camera=cams)
    views = {}
    for yaw, img in zip(NOVEL_YAWS_DEG, view_images):
        views[view_name(yaw)] = img
        save_image(img, paths[view_name(yaw)])
    for key, fl in expression_edits(final.G, {k: v.float().cpu() for k, v in final.flame.items()}).items():
        save_image(render_state(final, flame=fl)[0], paths[key])

    metrics = {
        "target": {"name": target.name, "source": target.source, "warnings": target.warnings,
                   "resolution": target.resolution},
        "network": network,
        "stages": stage_metrics(result, lpips),
        "identity": identity_metrics(result, views, recon) if identity else {"available": False,
                                                                             "reason": "not requested"},
        "settings": dataclasses.asdict(result.config),
        "files": {k: v.name for k, v in paths.items()},
    }
    if extra:
        metrics.update(extra)
    atomic_write_text(paths["metrics"], json.dumps(metrics, indent=1, default=_json_default) + "\n")

    neutral = {k: final.flame[k][0] for k in ("expression", "jaw", "neck", "left_eye", "right_eye")}
    source = dict(target.source)
    source.update({"network": network, "stages": list(result.stages)})
    save_avatar_checkpoint(paths["avatar"], final.G, final.ws, final.flame["shape"][0], neutral=neutral,
                           camera=final.camera[0], source=source)
    return paths


__all__ = ["AVATAR_FILE", "RECONSTRUCTION_FILE", "METRICS_FILE", "output_names", "difference_image", "render_state",
           "stage_metrics", "identity_metrics", "write_outputs"]
