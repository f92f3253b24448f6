"""Expression sweeps: jaw / smile / blink tracks for the built-in head, and the landmark-solved
directions used for real FLAME (checked on the built-in head, whose geometry is known)."""

import pytest
import torch

from next3d.animation.expression_tracks import (AnimationError, LOWER_LIDS, UPPER_LIDS, expression_direction,
                                                expression_track, landmark_direction, sweep_weights)
from next3d.flame import FLAME, load_flame_model
from next3d.flame.builtin.blendshapes import EXPRESSION_NAMES


@pytest.fixture(scope="module")
def flame():
    return FLAME(load_flame_model(None))


def test_sweep_weights_start_neutral_peak_halfway_and_loop():
    w = sweep_weights(8)
    assert w.tolist() == pytest.approx([0, 0.1464466, 0.5, 0.8535534, 1, 0.8535534, 0.5, 0.1464466], abs=1e-6)


def test_jaw_track(flame):
    track = expression_track(flame, "jaw", 4, amount=0.2)
    assert set(track) == {"expression", "jaw", "neck", "left_eye", "right_eye"}
    assert track["jaw"][:, 0].tolist() == pytest.approx([0, 0.1, 0.2, 0.1], abs=1e-6)
    assert torch.all(track["jaw"][:, 1:] == 0) and torch.all(track["expression"] == 0)
    out = flame(**track)
    gap = (out.landmarks[:, 57, 1] - out.landmarks[:, 51, 1]).abs()  # lower lip - upper lip (outer)
    assert float(gap[2]) > float(gap[0]) + 0.005  # the mouth opens by more than 5 mm


def test_builtin_smile_and_blink_use_the_named_components(flame):
    smile = expression_track(flame, "smile", 4)["expression"]
    assert smile.shape == (4, flame.num_expression)
    assert float(smile[2, EXPRESSION_NAMES.index("smile")]) == pytest.approx(2.0)
    assert int((smile[2] != 0).sum()) == 1
    blink = expression_track(flame, "blink", 4)["expression"][2]
    assert float(blink[EXPRESSION_NAMES.index("eye_close_left")]) == pytest.approx(2.0)
    assert float(blink[EXPRESSION_NAMES.index("eye_close_right")]) == pytest.approx(2.0)


def test_landmark_direction_matches_its_goal(flame):
    """The real-FLAME path: a least-squares direction from landmark goals moves the landmarks as asked."""
    goals = {48: (-0.004, 0.003, 0.0), 54: (0.004, 0.003, 0.0)}
    e = landmark_direction(flame, goals, ridge=1e-6)
    rest = flame(batch_size=1).landmarks[0]
    moved = flame(expression=e[None]).landmarks[0]
    for idx, d in goals.items():
        delta = moved[idx] - rest[idx]
        assert float(delta[1]) > 0.5 * d[1]  # corners go up
        assert float(delta[0]) * d[0] > 0  # and outwards


def test_solved_blink_closes_the_lids(flame):
    flame.model_name = "flame-test"  # take the real-FLAME (solved) path on the built-in geometry
    try:
        e = expression_direction(flame, "blink")
    finally:
        flame.model_name = "builtin"
    rest = flame(batch_size=1).landmarks[0]
    closed = flame(expression=e[None]).landmarks[0]
    up, lo = list(UPPER_LIDS), list(LOWER_LIDS)
    gap_rest = (rest[up, 1] - rest[lo, 1]).mean()
    gap_closed = (closed[up, 1] - closed[lo, 1]).mean()
    assert float(gap_closed) < 0.5 * float(gap_rest)


def test_unknown_animation_is_an_error(flame):
    with pytest.raises(AnimationError, match="unknown kind 'wink'"):
        expression_track(flame, "wink", 3)
