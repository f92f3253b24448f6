"""DemoControls: checks, FLAME parameters in radians, cache keys, the settings file."""

import json
import math

import pytest
import torch

from next3d.demo.controls import DemoControls, DemoError, read_settings, settings_json


def test_flame_params_are_radians_about_the_documented_axes():
    c = DemoControls(jaw_open=10, neck_yaw=-20, neck_pitch=5, gaze_yaw=7, gaze_pitch=-3, expression=(0.5, -1))
    p = c.flame_params(num_expression=24)
    assert torch.allclose(p["jaw"], torch.tensor([[math.radians(10), 0, 0]]))
    assert torch.allclose(p["neck"], torch.tensor([[math.radians(5), math.radians(-20), 0]]))
    assert torch.allclose(p["left_eye"], p["right_eye"])
    assert torch.allclose(p["left_eye"], torch.tensor([[math.radians(-3), math.radians(7), 0]]))
    assert p["expression"].shape == (1, 2) and p["expression"][0, 1] == -1
    assert c.camera_radians() == (0.0, 0.0)
    with pytest.raises(DemoError, match="expression: 2 components given but this head model has 1"):
        c.flame_params(num_expression=1)


def test_keys_separate_identity_face_and_camera():
    a = DemoControls(seed=3, expression=(0.5, 0.0, 0.0))
    b = a.replace(yaw=30, pitch=-10)
    assert a.expression == (0.5,)  # trailing zeros dropped: same face, same key
    assert a.identity_key() == b.identity_key() and a.face_key() == b.face_key()
    assert a.camera_key() != b.camera_key()
    assert a.replace(jaw_open=5).face_key() != a.face_key()
    assert a.replace(truncation=0.5).identity_key() != a.identity_key()
    assert DemoControls(seed=4.0).seed == 4 and isinstance(DemoControls(seed=4.0).seed, int)


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed: -1 is outside 0..4294967295"),
    (dict(seed=1.5), "seed: expected a whole number, got 1.5"),
    (dict(seed="x"), "seed: expected a whole number"),
    (dict(yaw=91), "yaw: 91.0 is outside -90..90"),
    (dict(jaw_open=float("nan")), "jaw_open: nan is outside 0..40"),
    (dict(truncation=None), "truncation: expected a number, got None"),
    (dict(expression=(0.0, 9.0)), r"expression\[1\]: 9.0 is outside -4..4"),
    (dict(expression=("a",)), "expression: expected a list of numbers"),
])
def test_bad_values_are_one_line_errors(kwargs, message):
    with pytest.raises(DemoError, match=message):
        DemoControls(**kwargs)


def test_settings_round_trip(tmp_path):
    c = DemoControls(seed=12, truncation=0.5, yaw=15, expression=(0.25, -0.5), jaw_open=8, gaze_pitch=2)
    path = tmp_path / "s.json"
    path.write_text(settings_json(c))
    assert read_settings(path) == c
    data = json.loads(path.read_text())
    assert data["format"] == "next3d-demo-settings" and data["controls"]["expression"] == [0.25, -0.5]


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "settings file bad.json: not a JSON settings file"),
    (b"[1, 2]", "settings file bad.json: JSON but not demo settings"),
    (b'{"format": "next3d-demo-settings", "version": 7}', "version 7; this demo reads version 1"),
    (b'{"format": "next3d-demo-settings", "version": 1, "controls": {"sead": 1}}',
     "unknown field\\(s\\) sead"),
    (b'{"format": "next3d-demo-settings", "version": 1, "controls": {"yaw": 500}}',
     "settings file bad.json: yaw: 500.0 is outside -90..90"),
])
def test_bad_settings_files_name_the_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(DemoError, match=message) as info:
        read_settings(path)
    assert str(tmp_path) not in str(info.value)  # the server's folders are never shown
