"""AED / APD / landmark error: definitions, zero for the ground truth, growth with perturbation."""

import math

import numpy as np
import pytest
import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from training.metrics.consistency import rotate_about_pivot
from training.metrics.transfer import (expression_distance_mm, pose_distance_deg, projected_landmarks_px,
                                       transfer_from_images)

pytest.importorskip("dlib")
fitting = pytest.importorskip("next3d.fitting")


@pytest.fixture(scope="module")
def flame_layer():
    return FLAME(load_flame_model(None))


@pytest.fixture(scope="module")
def driving(flame_layer):
    g = torch.Generator().manual_seed(0)
    flame = {"expression": torch.randn(1, flame_layer.num_expression, generator=g) * 0.7,
             "jaw": torch.tensor([[0.15, 0.0, 0.0]])}
    return flame, orbit_label(torch.tensor([0.2]), torch.tensor([0.05]))


def test_expression_distance_zero_and_growing(flame_layer, driving):
    flame, _ = driving
    assert expression_distance_mm(flame_layer, flame, flame).item() == 0.0
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(flame["expression"].shape, generator=g)
    values = [expression_distance_mm(flame_layer, flame, {"expression": flame["expression"] + s * direction,
                                                          "jaw": flame["jaw"]}).item() for s in (0.1, 0.3, 0.9)]
    assert 0 < values[0] < values[1] < values[2]
    # Shape and the camera do not enter; mouth opening does (mm of landmark motion).
    assert expression_distance_mm(flame_layer, flame, {**flame, "shape": torch.ones(1, 10)}).item() == 0.0
    opened = expression_distance_mm(flame_layer, flame, {**flame, "jaw": torch.tensor([[0.35, 0.0, 0.0]])}).item()
    assert 1.0 < opened < 50.0


def test_pose_distance_is_the_rotation_angle(driving):
    _, c = driving
    assert pose_distance_deg(c, c).item() == pytest.approx(0.0, abs=1e-3)
    turned = rotate_about_pivot(c, torch.tensor([math.radians(10.0)]), (0.0, 0.0, 0.2))
    assert pose_distance_deg(c, turned).item() == pytest.approx(10.0, abs=1e-3)


def test_fit_of_ground_truth_landmarks_is_near_zero_and_perturbation_grows(flame_layer, driving):
    flame, c = driving
    size = 256
    landmarks = projected_landmarks_px(flame_layer, flame, c, size)
    images = torch.zeros(1, 3, size, size, dtype=torch.uint8)
    config = fitting.FitConfig(rigid_iters=20, full_iters=60)
    exact = transfer_from_images(images, flame, c, flame_layer, fit_config=config, landmarks=landmarks)
    assert exact["detected"].all() and exact["lmk"][0] == pytest.approx(0.0, abs=1e-4)
    assert exact["aed"][0] < 2.5 and exact["apd"][0] < 1.5
    # The same image judged against a perturbed driving expression: AED grows well above the floor.
    g = torch.Generator().manual_seed(2)
    other = {"expression": flame["expression"] + torch.randn(flame["expression"].shape, generator=g),
             "jaw": torch.tensor([[0.3, 0.0, 0.0]])}
    wrong = transfer_from_images(images, other, c, flame_layer, fit_config=config, landmarks=landmarks)
    assert wrong["aed"][0] > exact["aed"][0] + 3.0
    assert wrong["lmk"][0] > 1.0


def test_undetected_image_is_left_out(flame_layer, driving):
    flame, c = driving
    res = transfer_from_images(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), flame, c, flame_layer)
    assert not res["detected"].any() and np.isnan(res["aed"]).all() and np.isnan(res["lmk"]).all()
