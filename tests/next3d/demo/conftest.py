"""Fixtures of the demo tests: one tiny engine, and a served page on a free local port."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session")
def tiny_engine():
    """A DemoEngine around an untrained `random:tiny` generator (built once per session)."""
    from next3d.demo.controls import DemoControls
    from next3d.demo.engine import load_engine

    engine = load_engine("random:tiny")
    # One render of a seed no test uses, outside every deadline: the first render builds the
    # compiled ops (tens of seconds on a fresh cache) and would eat a browser test's time.
    engine.render(DemoControls(seed=987654))
    return engine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def deadline(seconds: float, what: str):
    """Raise TimeoutError in the main thread when the block runs past `seconds` (POSIX)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"{what}: still running after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(name="deadline")
def deadline_fixture():
    """The `deadline(seconds, what)` context manager, for tests."""
    return deadline


@pytest.fixture(scope="session")
def served_demo(tiny_engine):
    """The demo page served on 127.0.0.1 at a free port; stopped (and its folders removed) after the session."""
    pytest.importorskip("gradio")
    from next3d.demo.app import DemoSettings, serve

    # A short fit on a small crop keeps the Photo tab's browser test well inside its deadline.
    settings = DemoSettings(photo_resolution=128, photo_fit_iters=40)
    with deadline(60, "starting the demo server"):
        running = serve(tiny_engine, host="127.0.0.1", port=free_port(), block=False, quiet=True,
                        max_upload_bytes=1_000_000, settings=settings)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="session")
def synthetic_photo(tmp_path_factory):
    """A shaded render of the built-in head (jaw open 0.15 rad, yaw 0.2) on a grey 360 x 300 canvas, as PNG."""
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    flame = FLAME(load_flame_model(None))
    with torch.no_grad():
        verts = flame(jaw=torch.tensor([[0.15, 0.0, 0.0]])).vertices
        rend = render_mesh(verts, flame.faces, orbit_label(0.2, 0.05), 256, rasterize_impl="ref")
    img = ((rend.shaded[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    img[rend.mask[0, 0].numpy() <= 0.5] = 110
    canvas = np.full((300, 360, 3), 110, np.uint8)
    canvas[20:276, 60:316] = img
    path = tmp_path_factory.mktemp("photo") / "synthetic_face.png"
    Image.fromarray(canvas).save(path)
    return path, flame
