"""Fixtures of the demo tests: one tiny engine, and a served page on a free local port."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading

import pytest


@pytest.fixture(scope="session")
def tiny_engine():
    """A DemoEngine around an untrained `random:tiny` generator (built once per session)."""
    from next3d.demo.engine import load_engine

    return load_engine("random:tiny")


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
    from next3d.demo.app import serve

    with deadline(60, "starting the demo server"):
        running = serve(tiny_engine, host="127.0.0.1", port=free_port(), block=False, quiet=True,
                        max_upload_bytes=1_000_000)
    try:
        yield running
    finally:
        running.close()
