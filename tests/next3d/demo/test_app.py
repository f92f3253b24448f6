"""The page's callbacks without a browser: errors become status messages, settings round-trip,
optional tabs follow the capabilities."""

import numpy as np
import pytest

gr = pytest.importorskip("gradio")

from next3d.demo.app import ERROR_PREFIX, DemoSettings, GenerateTab, build_app, error_text, guarded  # noqa: E402
from next3d.demo.controls import DemoControls, DemoError  # noqa: E402


def test_guarded_turns_errors_into_status_messages(caplog):
    def bad_value(x):
        raise DemoError("seed: -1 is outside 0..9")

    def crash(x):
        raise RuntimeError("boom /secret/path")

    out = guarded(bad_value, 3, 2)(1)
    assert out[2] == ERROR_PREFIX + "seed: -1 is outside 0..9"
    assert all(isinstance(o, type(gr.skip())) for o in out[:2])
    with caplog.at_level("ERROR", logger="next3d.demo"):
        out = guarded(crash, 2, 1)(1)
    assert "internal error" in out[1] and "boom" not in out[1] and "Traceback" not in out[1]
    assert "boom /secret/path" in caplog.text  # the server log keeps the details
    assert error_text("a\nb   c") == ERROR_PREFIX + "a b c"


def test_generate_tab_callbacks(tiny_engine, tmp_path):
    tab = GenerateTab(tiny_engine, DemoSettings(export_dir=tmp_path))
    c = DemoControls(seed=7, yaw=10, jaw_open=5, expression=(0.5,))
    values = tab.values_of(c)
    assert len(values) == 9 + tab.n_expr and tab.controls_from(values) == c
    image, depth, status = tab.render(*values)
    assert image.shape == (64, 64, 3) and depth.shape == (64, 64)
    assert status.startswith("seed 7 · 64×64 · rendered in ")

    files, msg = tab.save_settings(*values)
    loaded = tab.load_settings(files[0])
    assert tab.controls_from(loaded[:len(values)]) == c
    assert np.array_equal(loaded[len(values)], image) and loaded[-1].startswith("loaded settings-seed0007.json")

    files, msg = tab.export_png(*values)
    assert len(files) == 2 and msg.startswith("wrote seed0007-")

    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not json")
    with pytest.raises(DemoError, match="settings file photo.jpg: not a JSON settings file"):
        tab.load_settings(str(bad))
    with pytest.raises(DemoError, match="seed: empty"):
        tab.controls_from([None] + values[1:])


def test_optional_tabs_follow_capabilities(tiny_engine, tmp_path):
    demo, _ = build_app(tiny_engine, DemoSettings(export_dir=tmp_path, show_capabilities={"photo": True,
                                                                                         "video": True}))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert {"Generate", "Photo → avatar", "Video", "About"} <= labels
    demo, _ = build_app(tiny_engine, DemoSettings(export_dir=tmp_path, show_capabilities={}))
    labels = {getattr(b, "label", None) for b in demo.blocks.values()}
    assert "Generate" in labels and "Photo → avatar" not in labels and "Video" not in labels
    texts = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
    assert "This network is untrained" in texts and "random:tiny" in texts
