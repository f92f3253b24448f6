"""Optional tabs appear only for importable packages."""

from next3d.demo.capabilities import CAPABILITY_MODULES, available_capabilities, has_module


def test_has_module():
    assert has_module("next3d.generate")
    assert not has_module("next3d.no_such_package_here")
    assert not has_module("no_such_parent.child")


def test_capabilities_follow_the_packages(monkeypatch):
    import next3d.demo.capabilities as caps

    caps_now = available_capabilities()
    assert set(caps_now) == set(CAPABILITY_MODULES) == {"photo", "invert", "video"}
    monkeypatch.setattr(caps, "has_module", lambda name: name == "next3d.animation")
    assert caps.available_capabilities() == {"photo": False, "invert": False, "video": True}
