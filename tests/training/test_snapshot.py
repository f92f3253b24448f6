"""Snapshots: exact optimiser/RNG round trips, atomic writes (crash, kill -9), resume checks."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from next3d.checkpoint import load_checkpoint
from training import snapshot as snap
from training.config import resolve_run_config
from training.run_dir import resume_point

REPO = Path(__file__).resolve().parents[2]


def _trained_adam():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.0, 0.99))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).square().mean().backward()
        opt.step()
    return model, opt


def test_optimizer_state_round_trip_is_exact():
    model, opt = _trained_adam()
    tensors, groups = snap.optimizer_tensors(opt)
    assert set(tensors) == {f"{i}.{n}" for i in range(4) for n in ("step", "exp_avg", "exp_avg_sq")}
    json.dumps(groups)  # JSON-serialisable
    opt2 = torch.optim.Adam(model.parameters(), lr=1.0)
    snap.load_optimizer_tensors(opt2, tensors, groups, "test")
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 0.01
    assert tuple(b["param_groups"][0]["betas"]) == (0.0, 0.99)
    for idx in a["state"]:
        for name, value in a["state"][idx].items():
            assert torch.equal(value, b["state"][idx][name])
    with pytest.raises(snap.SnapshotError, match="another set of parameters"):
        snap.load_optimizer_tensors(torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))]), tensors, groups, "x")


def test_rng_state_round_trip():
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    tensors, scalars = snap.rng_state()
    json.dumps(scalars)
    want = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    snap.set_rng_state(tensors, scalars)
    got = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def _save(run_dir, rc, nimg, G):
    model, opt = _trained_adam()
    return snap.save_snapshot(run_dir, run_config=rc, G=G, G_ema=G, D=model, opt_G=opt, opt_D=opt,
                              state={"cur_nimg": nimg, "step": nimg})


class _TinyG(torch.nn.Module):
    def __init__(self, n=16):
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(n, dtype=torch.float32))


def test_crash_while_writing_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    rc = resolve_run_config("tiny")
    first = _save(tmp_path, rc, 100, _TinyG())
    before = first.read_bytes()

    import safetensors.torch as st
    real_save = st.save
    calls = {"n": 0}

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # in the middle of writing the zip members
            raise OSError(28, "No space left on device")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(st, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        _save(tmp_path, rc, 200, _TinyG())
    assert first.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "snapshot-00000100.n3d"]
    assert snap.latest_snapshot(tmp_path) == first
    assert load_checkpoint(first).state_dicts["G"]["w"].tolist() == list(range(16))


KILL_SCRIPT = """
import sys, torch
sys.path.insert(0, {repo!r})
from training import snapshot as snap
from training.config import resolve_run_config
rc = resolve_run_config("tiny")
class Big(torch.nn.Module):
    def __init__(self, v):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((4_000_000,), float(v)))
opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
i = 0
while True:
    i += 1
    m = Big(i)
    snap.save_snapshot({out!r}, run_config=rc, G=m, G_ema=m, D=m, opt_G=opt, opt_D=opt,
                       state={{"cur_nimg": i, "step": i}})
    print(i, flush=True)
"""


def test_kill_9_while_writing_never_damages_a_snapshot(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO), out=str(tmp_path / "run")))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        first = proc.stdout.readline()  # at least one complete snapshot
        assert first.strip() == "1"
        time.sleep(0.3)  # now most likely in the middle of the next one
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    run = tmp_path / "run"
    snaps = snap.list_snapshots(run)
    assert snaps
    for path in snaps:  # every snapshot under its final name is complete and readable
        ckpt = load_checkpoint(path)
        n = int(path.stem.split("-")[1])
        assert float(ckpt.state_dicts["G"]["w"][-1]) == n
    latest = snap.latest_snapshot(run)
    assert latest in snaps and snap.read_snapshot(latest).meta["extra"]["state"]["cur_nimg"] == int(latest.stem[-8:])


def test_resume_refuses_another_config(tmp_path):
    rc = resolve_run_config("tiny")
    _save(tmp_path, rc, 100, _TinyG())
    path, ckpt = resume_point(tmp_path, resolve_run_config("tiny", ["kimg=5"]))  # run length may change
    assert path.name == "snapshot-00000100.n3d"
    with pytest.raises(snap.SnapshotError, match=r"another configuration \(training.glr: snapshot 0.0025, now 0.001\)"):
        resume_point(tmp_path, resolve_run_config("tiny", ["glr=0.001"]))
    with pytest.raises(snap.SnapshotError, match="no such run folder"):
        snap.latest_snapshot(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(snap.SnapshotError, match="holds no snapshot"):
        snap.latest_snapshot(tmp_path / "empty")
