"""How far a 2D landmark detector's 68 points are from a synthetic set's true landmarks.

    next3d dataset synth --out /tmp/s256 --count 60 --resolution 256 --seed 2026
    python gen_scripts/eval_landmarks_synth.py /tmp/s256 [--max-yaw 30] [--json out.json]

The synthetic set's `landmarks_2d` are its head model's 68-point embedding projected by the
true camera; a detector trained on iBUG annotations puts the points where people annotate
them. Their distance says how well the embedding matches that convention (the realism check
of the data-set issue: a face found in >= 90 % of images with |yaw| < 30 deg, median error
< 3 % of the face width).

Reported over the images with |camera yaw| < --max-yaw (yaw in the head's own frame: the
neck's turn is folded in):

* found: the share where the detector found a face;
* median error per landmark group, in % of the face width (|true 0 - true 16|, the jaw
  contour's ends) and in % of twice the outer eye-corner distance (a width that does not
  depend on the contour's definition);
* the mean offset detector - truth of each jaw-contour point on near-frontal images (|yaw| < 10),
  in % of the face width: a systematic offset is a definition mismatch, not noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

GROUPS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
          "outer_lips": range(48, 60), "inner_lips": range(60, 68)}


def head_yaw_deg(camera: np.ndarray, neck: np.ndarray) -> float:
    """Yaw (deg) of the camera position seen from the head (the neck rotation undone)."""
    import torch

    from next3d.flame.lbs import batch_rodrigues

    pos = np.asarray(camera, dtype=np.float64)[:16].reshape(4, 4)[:3, 3]
    r_neck = batch_rodrigues(torch.as_tensor(neck, dtype=torch.float64)[None])[0].numpy()
    x, _, z = r_neck.T @ pos
    return float(np.degrees(np.arctan2(x, z)))


def evaluate(root: Path, max_yaw: float = 30.0, detector_name: str = "dlib") -> dict:
    from PIL import Image

    from next3d.fitting.detect import DetectionError, make_detector

    doc = json.loads((root / "dataset.json").read_text())
    detector = make_detector(detector_name)
    errors = {"face": [], "eyes": []}
    frontal_offsets, tried, found = [], 0, 0
    for item in doc["items"]:
        yaw = head_yaw_deg(np.array(item["camera"]), np.array(item["flame"].get("neck", [0, 0, 0])))
        if abs(yaw) >= max_yaw:
            continue
        tried += 1
        image = np.asarray(Image.open(root / item["image"]).convert("RGB"))
        truth = np.asarray(item["landmarks_2d"], dtype=np.float64)
        try:
            points = detector.detect(image).landmarks
        except DetectionError:
            continue
        found += 1
        distance = np.linalg.norm(points - truth, axis=1)
        face_width = np.linalg.norm(truth[16] - truth[0])
        errors["face"].append(distance / face_width * 100)
        errors["eyes"].append(distance / (2 * np.linalg.norm(truth[45] - truth[36])) * 100)
        if abs(yaw) < 10:
            frontal_offsets.append((points[:17] - truth[:17]) / face_width * 100)
    if found == 0:
        raise SystemExit(f"{root}: the detector found no face in {tried} images with |yaw| < {max_yaw}")
    out = {"set": str(root), "detector": detector_name, "max_yaw_deg": max_yaw, "images": tried,
           "found": found, "found_share": round(found / tried, 4)}
    for unit, errs in errors.items():
        e = np.stack(errs)
        row = {"all68": np.median(e), "inner51": np.median(e[:, 17:])}
        row.update({g: np.median(e[:, list(r)]) for g, r in GROUPS.items()})
        out[f"median_pct_of_{unit}_width"] = {k: round(float(v), 3) for k, v in row.items()}
    if frontal_offsets:
        mean = np.mean(frontal_offsets, axis=0)
        out["frontal_jaw_offset_pct"] = {"images": len(frontal_offsets), "dx": np.round(mean[:, 0], 2).tolist(),
                                         "dy": np.round(mean[:, 1], 2).tolist()}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", type=Path, help="a `next3d dataset synth` folder")
    parser.add_argument("--max-yaw", type=float, default=30.0, help="only images with |yaw| below this (deg)")
    parser.add_argument("--detector", default="dlib", help="landmark detector (next3d.fitting.make_detector)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    if not (args.set / "dataset.json").is_file():
        parser.error(f"{args.set}: no dataset.json (expected a folder written by `next3d dataset synth`)")
    result = evaluate(args.set, args.max_yaw, args.detector)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
