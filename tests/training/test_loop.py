"""The loop: exact resume on the CPU, and 2 gloo processes = 1 process with the same global batch."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from next3d.checkpoint import build_generator, load_checkpoint
from training.config import resolve_run_config
from training.loop import TrainingStopped, train
from training.snapshot import latest_snapshot, read_snapshot

REPO = Path(__file__).resolve().parents[2]


def _groups(path):
    ckpt = load_checkpoint(path)
    return ckpt.state_dicts, ckpt.meta["extra"]


def _assert_same(a, b, exact=True, groups=None):
    for group in groups or a:
        assert set(a[group]) == set(b[group]), group
        for key in a[group]:
            x, y = a[group][key], b[group][key]
            if exact:
                assert torch.equal(x, y), f"{group}[{key}] differs"
            else:
                assert torch.allclose(x.double(), y.double(), rtol=1e-4, atol=1e-6), \
                    f"{group}[{key}] differs by {float((x.double() - y.double()).abs().max())}"


def test_resume_is_bit_identical(tmp_path, micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets)
    k = 4
    straight = train(rc, micro_dataset, tmp_path / "straight", max_steps=k)
    assert straight.step == k and straight.cur_nimg == k * rc.training.batch
    first = train(rc, micro_dataset, tmp_path / "split", max_steps=k // 2)
    assert first.step == k // 2
    # "Kill": nothing survives but the files; resume from the newest snapshot.
    ckpt = read_snapshot(latest_snapshot(tmp_path / "split"))
    resumed = train(rc, micro_dataset, tmp_path / "split", resume=ckpt, max_steps=k // 2)
    assert resumed.step == k
    a, extra_a = _groups(latest_snapshot(tmp_path / "straight"))
    b, extra_b = _groups(latest_snapshot(tmp_path / "split"))
    assert set(a) == {"G", "G_ema", "D", "opt_G", "opt_D", "rng"}
    _assert_same(a, b, exact=True)
    # Adam really ran (step counters) and the weights moved away from the initial ones.
    # Main phase every step + the regulariser every 2nd step: k + k/2 Adam steps each.
    assert float(a["opt_D"]["0.step"]) == float(a["opt_G"]["0.step"]) == k + k // 2
    init = build_generator(rc.generator, seed=rc.training.seed).state_dict()
    assert any(not torch.equal(init[n], a["G"][n]) for n in init)
    assert extra_a["state"]["step"] == extra_b["state"]["step"] == k
    assert extra_a["state"]["loss_means"] == extra_b["state"]["loss_means"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args, extra_env=None, torchrun=0):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **(extra_env or {}))
    head = [sys.executable, "-m", "next3d"]
    if torchrun:
        head = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={torchrun}",
                f"--master-port={_free_port()}", "-m", "next3d"]
    return subprocess.run(head + ["train", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_two_gloo_processes_equal_one(tmp_path, micro_dataset_dir, micro_sets):
    sets = [s for s in micro_sets if not s.startswith("batch=")] + ["batch=4", "batch_gpu=2"]
    common = ["--data", str(micro_dataset_dir), "--preset", "tiny", "--no-progress", "--kimg", "0.008"]
    for s in sets:
        common += ["--set", s]
    one = _cli(common + ["--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = _cli(common + ["--out", str(tmp_path / "two")], torchrun=2)
    assert two.returncode == 0, two.stderr[-3000:]
    a, _ = _groups(latest_snapshot(next((tmp_path / "one").iterdir())))
    b, extra = _groups(latest_snapshot(next((tmp_path / "two").iterdir())))
    assert extra["state"]["cur_nimg"] == 8 and extra["state"]["step"] == 2
    # Same global batch: weights and Adam moments equal to float tolerance (summation order differs).
    _assert_same(a, b, exact=False, groups=["G", "D", "opt_G", "opt_D"])
    moved = max(float((a["D"][k] - b["D"][k]).abs().max()) for k in a["D"])
    assert moved < 1e-4
