"""How well `next3d invert` recovers held-out synthetic people, per stage, where every view is known.

    next3d dataset synth --out /tmp/synth128 --count 4000 --resolution 128
    python gen_scripts/eval_invert_synth.py /tmp/synth128 --count 3 --network builtin

Each of the first COUNT test-split items (or the positions given with --items) is inverted with
the library defaults (`next3d.inversion.invert`: fit, W, refinement, PTI), and every stage is
scored against the truth (`next3d.inversion.evaluate.SyntheticTruth`): PSNR and ST-LPIPS at the
input view and at the unseen views yaw ±30 (true re-renders of the same person), dlib ID
similarity to the true image of each view, the expression + jaw vertex error (mm, on the mean
identity) and the camera rotation error (degrees, head frame). Printed: one markdown table of
the means over the items, with each stage's mean seconds and the share of views where dlib found
a face in both the render and the truth (below 1, the ID columns compare descriptors taken
from dlib's fallback box and mean little); --json writes every item's numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def picture_row(state, target, truth):
    """(3, R, (2 + 2 V) R): input | final render | (true image | render) per truth view, in [-1, 1]."""
    import torch

    from next3d.inversion.losses import render

    def draw(camera):
        with torch.no_grad():
            return render(state.G, state.ws, camera, state.flame)[0].float().cpu().clamp(-1, 1)

    tiles = [target.image[0].float().cpu(), draw(state.camera)]
    for camera, image in truth.views.values():
        tiles += [image[0].float().cpu(), draw(camera)]
    return torch.cat(tiles, dim=-1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="a folder made by `next3d dataset synth`")
    ap.add_argument("--network", default="builtin", help="builtin, a checkpoint, or random:PRESET")
    ap.add_argument("--count", type=int, default=3, help="how many test-split items (ignored with --items)")
    ap.add_argument("--items", type=int, nargs="*", default=None, help="item positions in dataset.json")
    ap.add_argument("--steps-w", type=int, default=None)
    ap.add_argument("--steps-refine", type=int, default=None)
    ap.add_argument("--steps-pti", type=int, default=None)
    ap.add_argument("--no-identity", action="store_true", help="skip the dlib ID similarity")
    ap.add_argument("--json", default=None, help="write every item's numbers here")
    ap.add_argument("--picture", default=None, help="PNG, one row per item: input | reconstruction | "
                                                    "(truth | render) at each unseen view")
    args = ap.parse_args()

    import torch

    from next3d.generate import load_generator
    from next3d.inversion import InversionConfig, invert
    from next3d.inversion.evaluate import SyntheticTruth, average_stages
    from next3d.inversion.losses import default_lpips
    from next3d.inversion.target import target_from_dataset

    folder = Path(args.dataset)
    meta = json.loads((folder / "dataset.json").read_text())
    items = args.items if args.items else [i for i, it in enumerate(meta["items"])
                                           if it.get("split") == "test"][:args.count]
    G = load_generator(args.network, device=torch.device("cpu"))
    lpips = default_lpips(torch.device("cpu"))
    face_models = None
    if not args.no_identity:
        from training.metrics.face_models import FaceModels

        face_models = FaceModels()
    config = InversionConfig()
    config = dataclasses.replace(
        config,
        latent=dataclasses.replace(config.latent, **({"steps": args.steps_w} if args.steps_w else {})),
        refine_config=dataclasses.replace(config.refine_config,
                                          **({"steps": args.steps_refine} if args.steps_refine else {})),
        pivotal=dataclasses.replace(config.pivotal, **({"steps": args.steps_pti} if args.steps_pti else {})))

    reports, rows = [], []
    for index in items:
        started = time.perf_counter()
        target = target_from_dataset(folder, index, G)
        truth = SyntheticTruth(folder, index, G, target.image, lpips=lpips, face_models=face_models)
        result = invert(G, target, config, lpips=lpips, progress=False, on_stage=truth.score)
        report = truth.report()
        report["seconds"] = result.timings()
        report["cpu_seconds"] = {k: s.cpu_seconds for k, s in result.stages.items()}
        reports.append(report)
        if args.picture:
            rows.append(picture_row(result.final, target, truth))
        final = report["stages"][list(report["stages"])[-1]]
        print(f"item {index}: {time.perf_counter() - started:.0f} s; final PSNR input {final['psnr_input']:.2f}, "
              f"yaw-30 {final['psnr_yaw-30']:.2f}, yaw+30 {final['psnr_yaw+30']:.2f} dB", flush=True)

    mean = average_stages(reports)
    columns = [("psnr_input", "PSNR in"), ("stlpips_input", "ST-LPIPS in"),
               ("psnr_yaw-30", "PSNR -30"), ("psnr_yaw+30", "PSNR +30"),
               ("stlpips_yaw-30", "ST-LPIPS -30"), ("stlpips_yaw+30", "ST-LPIPS +30"),
               ("id_input", "ID in"), ("id_yaw-30", "ID -30"), ("id_yaw+30", "ID +30"),
               ("expression_error_mm", "expr. mm"), ("camera_error_deg", "camera deg")]
    columns = [(k, h) for k, h in columns if all(k in s for s in mean.values())]
    detected = [k for k in next(iter(mean.values()), {}) if k.startswith("id_detected_")]
    if detected:  # ID similarity only means something where dlib found both faces
        for scores in mean.values():
            scores["id_detected"] = sum(scores[k] for k in detected) / len(detected)
        columns.append(("id_detected", "ID faces found"))
    print(f"\n{args.network}, items {items} (means over {len(items)})\n")
    print("| stage | " + " | ".join(h for _, h in columns) + " | seconds |")
    print("|---" * (len(columns) + 2) + "|")
    for name, scores in mean.items():
        secs = sum(r["seconds"].get(name, 0.0) for r in reports) / len(reports)
        print(f"| {name} | " + " | ".join(f"{scores[k]:.3f}" for k, _ in columns) + f" | {secs:.1f} |")
    if args.picture:
        from next3d.image_io import save_image

        save_image(torch.cat(rows, dim=-2), args.picture)
        print(f"wrote {args.picture}")
    if args.json:
        Path(args.json).write_text(json.dumps({"network": args.network, "items": items, "mean": mean,
                                               "per_item": reports}, indent=1) + "\n")


if __name__ == "__main__":
    main()
