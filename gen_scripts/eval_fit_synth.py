"""Accuracy of the photo fitter on a `next3d dataset synth` folder (the truth known), per landmark source.

    next3d dataset synth --out /tmp/s512 --count 32 --resolution 512 --seed 77
    python gen_scripts/eval_fit_synth.py /tmp/s512 --landmarks dlib facemesh

Each image goes through the photo pipeline (`prepare_photo`: detection, published crop; `fit_prepared`).
Reported per source, over the images that fitted:

* rotation error (deg): the angle between the fitted and the true camera rotation, both in the HEAD's
  frame (each side's neck rotation folded into its camera: R_head = R_neck^T R_cam2world), since the
  synthetic heads turn their neck and the fit keeps it near zero;
* jaw error (deg): |jaw_fit - jaw_true| of the axis-angle vectors, and of the opening (x) alone;
* landmark error (px at the image's resolution): the fitted model's 68 FLAME landmarks (contour by yaw),
  mapped back to the image, against the true 68 of dataset.json: one measure for both sources;
* fit residual (crop px): the fit's own mean distance to the points it fitted (68 or the weighted mesh);
* time (s CPU, one photo): detection + crop, and a single-photo fit, on the first few images.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def head_frame_rotation(c: torch.Tensor, neck: torch.Tensor) -> torch.Tensor:
    """Camera labels (B, 25) and neck axis-angles (B, 3) -> camera rotation in the head frame (B, 3, 3)."""
    from next3d.flame.lbs import batch_rodrigues
    from next3d.render.cameras import split_label

    r = split_label(c.double())[0][:, :3, :3]
    return batch_rodrigues(neck.double()).transpose(1, 2) @ r


def head_frame_angles(c: torch.Tensor, neck: torch.Tensor) -> np.ndarray:
    """Yaw, pitch, roll (B, 3) degrees (`camera_frame.camera_angles`) of the head-frame camera."""
    from next3d.fitting import camera_frame

    m = c.double()[:, :16].reshape(-1, 4, 4).clone()
    m[:, :3, :3] = head_frame_rotation(c, neck)
    label = torch.cat([m.reshape(-1, 16), c.double()[:, 16:]], dim=1)
    return camera_frame.camera_angles(label).numpy()


def angle_deg(ra: torch.Tensor, rb: torch.Tensor) -> np.ndarray:
    chord = (ra - rb).flatten(1).norm(dim=1) / (2 * np.sqrt(2))
    return torch.rad2deg(2 * torch.asin(chord.clamp(max=1.0))).numpy()


def fitted_68(flame, fit) -> np.ndarray:
    """The fitted model's 68 landmarks in crop pixels."""
    from next3d.fitting import camera_frame
    from next3d.fitting.landmark_fit import project_landmarks
    from next3d.fitting.landmark_head import LandmarkHead, contour_rows

    head = LandmarkHead(flame)
    f = fit.flame
    pose = torch.zeros(1, 3 * head.num_joints)
    for k, name in enumerate(("neck", "jaw", "left_eye", "right_eye")):
        pose[0, 3 * (k + 1):3 * (k + 2)] = f[name]
    c = fit.camera[None]
    with torch.no_grad():
        lmk = head(f["shape"][None], f["expression"][None], pose, contour_rows(camera_frame.head_rotation(c)))
        return (project_landmarks(lmk, c)[0] * fit.photo.transform.resolution).numpy().astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--landmarks", nargs="+", default=["dlib", "facemesh"])
    ap.add_argument("--timing", type=int, default=3, help="photos timed one by one")
    ap.add_argument("--json", default=None, help="write the per-image numbers here")
    ap.add_argument("--correspondence", nargs="*", default=[],
                    help="face-mesh correspondence files (.npz) to compare instead of the stored one")
    args = ap.parse_args()

    from next3d.fitting import FitConfig, PhotoFailure, fit_prepared, prepare_photo
    from next3d.fitting.align import transform_points
    from next3d.fitting.calibrate import load_offsets
    from next3d.fitting.detect import make_detector
    from next3d.flame import FLAME, load_flame_model
    from training.dataset_schema import head_identity

    folder = Path(args.folder)
    meta = json.loads((folder / "dataset.json").read_text())
    items = meta["items"]
    model = load_flame_model(None)
    flame, head = FLAME(model), head_identity(model)
    images = [np.asarray(Image.open(folder / it["image"]).convert("RGB")) for it in items]
    true_c = torch.tensor([it["camera"] for it in items])
    true_neck = torch.tensor([it["flame"]["neck"] for it in items])
    true_jaw = torch.tensor([it["flame"]["jaw"] for it in items])
    true_lmk = [np.asarray(it["landmarks_2d"]) for it in items]
    report = {}
    runs = [(s, None) for s in args.landmarks if s != "facemesh" or not args.correspondence]
    runs += [("facemesh", p) for p in args.correspondence]
    cache = {}
    for source, corr_path in runs:
        from next3d.fitting.mesh_correspondence import read_correspondence

        corr = None if corr_path is None else read_correspondence(Path(corr_path), head)
        config = FitConfig(landmarks=source)
        offsets = load_offsets("dlib", head) if source == "dlib" else None
        if source not in cache:
            det = make_detector(source)
            t_det, prepared = [], []
            for i, img in enumerate(images):
                t = time.process_time()
                p = prepare_photo(img, det, 512, name=str(i))
                t_det.append(time.process_time() - t)
                if not isinstance(p, PhotoFailure):
                    prepared.append((i, p))
            cache[source] = (t_det, prepared)
        t_det, prepared = cache[source]
        fits = fit_prepared([p for _, p in prepared], flame, config, landmark_offsets=offsets, correspondence=corr)
        t_fit = []
        for _, p in prepared[:args.timing]:
            t = time.process_time()
            fit_prepared([p], flame, config, landmark_offsets=offsets, correspondence=corr)
            t_fit.append(time.process_time() - t)
        rows = []
        for (i, p), fit in zip(prepared, fits):
            if isinstance(fit, PhotoFailure):
                continue
            rot = angle_deg(head_frame_rotation(fit.camera[None], fit.flame["neck"][None]),
                            head_frame_rotation(true_c[i:i + 1], true_neck[i:i + 1]))[0]
            jaw = float((fit.flame["jaw"] - true_jaw[i]).norm()) * 180 / np.pi
            lmk68 = transform_points(p.transform.inverse, fitted_68(flame, fit))
            lmk_err = float(np.linalg.norm(lmk68 - true_lmk[i], axis=1).mean())
            d_ypr = (head_frame_angles(fit.camera[None], fit.flame["neck"][None])
                     - head_frame_angles(true_c[i:i + 1], true_neck[i:i + 1]))[0]
            jaw_open = abs(float(fit.flame["jaw"][0] - true_jaw[i, 0])) * 180 / np.pi
            rows.append({"item": i, "rotation_deg": float(rot), "jaw_deg": jaw, "jaw_open_deg": jaw_open,
                         "landmark_px": lmk_err, "residual_px": fit.error_px,
                         "d_yaw_pitch_roll": [float(v) for v in d_ypr],
                         "true_yaw_pitch_roll": items[i]["appearance"]["camera"]})
        rot = np.array([r["rotation_deg"] for r in rows])
        summary = {"fitted": len(rows), "of": len(images),
                   "rotation_median": float(np.median(rot)), "rotation_p90": float(np.percentile(rot, 90)),
                   "rotation_mean": float(rot.mean()),
                   "d_yaw_pitch_roll_mean": np.mean([r["d_yaw_pitch_roll"] for r in rows], 0).round(2).tolist(),
                   "d_yaw_pitch_roll_std": np.std([r["d_yaw_pitch_roll"] for r in rows], 0).round(2).tolist(),
                   "jaw_median": float(np.median([r["jaw_deg"] for r in rows])),
                   "jaw_open_median": float(np.median([r["jaw_open_deg"] for r in rows])),
                   "landmark_px_median": float(np.median([r["landmark_px"] for r in rows])),
                   "residual_px_median": float(np.median([r["residual_px"] for r in rows])),
                   "detect_s_median": float(np.median(t_det)), "fit1_s_median": float(np.median(t_fit))}
        key = source if corr_path is None else f"{source}:{corr_path}"
        report[key] = {"summary": summary, "items": rows}
        print(key, json.dumps(summary), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
