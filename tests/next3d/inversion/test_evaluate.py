"""Scoring an inversion against the truth of a synthetic item (`next3d.inversion.evaluate`): the
re-render reproduces the stored image, the camera error in the head frame, every stage's scores,
their average over items, and what `next3d invert --target-item` writes."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory):
    from next3d.synthetic.writer import write_synthetic_set

    out = tmp_path_factory.mktemp("eval") / "synth"
    write_synthetic_set(out, 2, 64, seed=9, progress=False)
    return out


def test_own_camera_re_render_reproduces_the_stored_image(synth_set):
    from next3d.inversion.evaluate import SyntheticRerender
    from training.dataset import ImageDataset

    rerender = SyntheticRerender(synth_set)
    ds = ImageDataset(synth_set, split=None, verify_images=False)
    for index in range(len(ds)):
        stored = ds[index]["image"].permute(1, 2, 0).numpy().astype(int)
        again = rerender(index, rerender.own_camera(index)).astype(int)
        assert again.shape == stored.shape == (64, 64, 3)
        assert np.abs(again - stored).max() <= 2 and np.abs(again - stored).mean() < 0.05
        other = rerender(index, rerender.own_camera(1 - index)).astype(int)
        assert np.abs(other - stored).mean() > 2  # another camera shows other pixels


def test_a_set_not_made_by_the_synthetic_tool_is_refused(synth_set, tmp_path):
    from next3d.inversion.evaluate import SyntheticRerender
    from next3d.inversion.target import InversionInputError

    copy = tmp_path / "photos"
    shutil.copytree(synth_set, copy)
    meta = json.loads((copy / "dataset.json").read_text())
    meta["source"] = {"tool": "next3d dataset from-photos"}
    (copy / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(InversionInputError, match="not made by `next3d dataset synth`"):
        SyntheticRerender(copy)
    with pytest.raises(InversionInputError, match="cannot read dataset.json"):
        SyntheticRerender(tmp_path / "nowhere")


def test_camera_error_is_the_rotation_angle_in_the_head_frame():
    from next3d.flame.lbs import batch_rodrigues
    from next3d.inversion.evaluate import camera_error_deg
    from next3d.render.cameras import orbit_label

    front, turned = orbit_label(0.0, 0.0), orbit_label(0.2, 0.0)
    assert camera_error_deg(front, front) == pytest.approx(0.0, abs=1e-4)
    assert camera_error_deg(turned, front) == pytest.approx(math.degrees(0.2), abs=1e-4)
    # A camera carried round by a neck turn of the same amount sees the head as before: no error.
    neck = torch.tensor([[0.0, 0.3, 0.1]])
    carried = front.clone()
    c2w = front[:, :16].reshape(4, 4).double()
    c2w[:3, :3] = batch_rodrigues(neck.double())[0] @ c2w[:3, :3]
    carried[:, :16] = c2w.reshape(1, 16).float()
    assert camera_error_deg(carried, front, neck, None) == pytest.approx(0.0, abs=1e-3)
    assert camera_error_deg(carried, front) == pytest.approx(math.degrees(neck.norm().item()), abs=1e-3)


def test_scores_of_a_stage_and_their_average(synth_set, tiny_G):
    from next3d.inversion.evaluate import SyntheticTruth, average_stages
    from next3d.inversion.latent import expand_ws, w_statistics
    from next3d.inversion.pipeline import StageState
    from next3d.inversion.target import target_from_dataset

    target = target_from_dataset(synth_set, 1, tiny_G, true_camera=True, true_flame=True)
    truth = SyntheticTruth(synth_set, 1, tiny_G, target.image)
    assert list(truth.views) == ["yaw-30", "yaw+30"]
    for cam, image in truth.views.values():
        assert cam.shape == (1, 25) and image.shape == (1, 3, 64, 64)
        assert -1.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0.05
    ws = expand_ws(tiny_G, w_statistics(tiny_G, 16, 0)[0], None)
    truth.score("exact", StageState(G=tiny_G, ws=ws, camera=target.camera, flame=target.flame))
    opened = {k: v.clone() for k, v in target.flame.items()}
    opened["jaw"][:, 0] += 0.3
    turned = target.camera.clone()
    truth.score("off", StageState(G=tiny_G, ws=ws, camera=turned, flame=opened))
    exact, off = truth.stages["exact"], truth.stages["off"]
    assert set(exact) == {"psnr_input", "psnr_yaw-30", "psnr_yaw+30", "expression_error_mm", "camera_error_deg"}
    assert exact["expression_error_mm"] == pytest.approx(0.0, abs=1e-6) and exact["camera_error_deg"] < 1e-3
    assert off["expression_error_mm"] > 1.0  # a 0.3 rad jaw moves the chin by millimetres
    assert all(0 < exact[k] < 60 for k in ("psnr_input", "psnr_yaw-30", "psnr_yaw+30"))
    report = truth.report()
    assert report["available"] and report["index"] == 1 and list(report["stages"]) == ["exact", "off"]
    mean = average_stages([report, {"stages": {"exact": {**exact, "psnr_input": exact["psnr_input"] + 2.0}}}])
    assert list(mean) == ["exact", "off"]
    assert mean["exact"]["psnr_input"] == pytest.approx(exact["psnr_input"] + 1.0)
    assert mean["off"] == pytest.approx(off)


def test_invert_of_a_synthetic_item_writes_the_truth_scores(synth_set, tmp_path):
    from click.testing import CliRunner

    from next3d.cli import main

    out = tmp_path / "avatar"
    fast = ["--network", "random:tiny", "--steps-w", "1", "--steps-refine", "1", "--steps-pti", "1",
            "--neural-res", "16", "--no-identity", "--device", "cpu"]
    res = CliRunner().invoke(main, ["invert", "--target-item", f"{synth_set}:0", "--out", str(out), *fast],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "against the truth after pti: PSNR input" in res.output and "yaw-30" in res.output
    truth = json.loads((out / "metrics.json").read_text())["truth"]
    assert truth["available"] and truth["index"] == 0 and truth["views"] == ["yaw-30", "yaw+30"]
    assert list(truth["stages"]) == ["fit", "w", "refine", "pti"]
    for scores in truth["stages"].values():
        assert {"psnr_input", "psnr_yaw-30", "psnr_yaw+30", "expression_error_mm", "camera_error_deg"} <= set(scores)
        assert all(np.isfinite(v) for v in scores.values())
    # The fit and W stages share the fitted camera and FLAME; refinement may move them.
    fit, w = truth["stages"]["fit"], truth["stages"]["w"]
    assert fit["expression_error_mm"] == pytest.approx(w["expression_error_mm"])
    assert fit["camera_error_deg"] == pytest.approx(w["camera_error_deg"])
