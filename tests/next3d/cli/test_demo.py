"""`next3d demo`: options reach `serve` (local by default, share only when asked); bad options
are one-line errors."""

import pytest
from click.testing import CliRunner

from next3d.cli import main


def test_demo_is_listed_and_documents_its_options():
    res = CliRunner().invoke(main, ["demo", "--help"])
    assert res.exit_code == 0
    for option in ("--network", "--port", "--device", "--host", "--share", "--max-upload"):
        assert option in res.output
    assert "127.0.0.1" in res.output and "random:PRESET" in res.output and "[default: builtin]" in res.output


def test_demo_defaults_are_local(monkeypatch):
    pytest.importorskip("gradio")
    import next3d.demo.app as app

    seen = {}

    def fake_serve(engine, **kwargs):
        seen.update(kwargs, network=engine.network_name, trained=engine.trained)

    monkeypatch.setattr(app, "serve", fake_serve)
    res = CliRunner().invoke(main, ["demo", "--device", "cpu", "--max-upload", "2mb"])
    assert res.exit_code == 0, res.output
    assert seen["host"] == "127.0.0.1" and seen["share"] is False and seen["port"] == 7860
    # The default network is the trained model shipped in the package.
    assert seen["max_upload_bytes"] == 2 * 1024 ** 2 and seen["network"] == "builtin" and seen["trained"]
    res = CliRunner().invoke(main, ["demo", "--device", "cpu", "--share", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 0 and seen["share"] is True and seen["host"] == "0.0.0.0" and seen["port"] is None
    assert "reachable from other machines" in res.output


@pytest.mark.parametrize("args, message", [
    (["--network", "random:huge"], "unknown preset 'huge'"),
    (["--network", "/no/such.n3d"], "no such file or folder"),
    (["--max-upload", "lots"], "--max-upload: max upload size: cannot read 'lots'"),
])
def test_demo_bad_options(args, message):
    if "--network" in args:
        pytest.importorskip("gradio")
    res = CliRunner().invoke(main, ["demo", "--device", "cpu", *args])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output


def test_demo_without_gradio_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    monkeypatch.delitem(sys.modules, "next3d.demo.app", raising=False)
    res = CliRunner().invoke(main, ["demo", "--device", "cpu"])
    assert res.exit_code == 1 and 'the demo needs gradio' in res.output and '.[demo]' in res.output
