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


def _assert_same(a, b, exact=True, groups=None, skip=()):
    for group in groups or a:
        assert set(a[group]) == set(b[group]), group
        for key in a[group]:
            if key.endswith(skip) and skip:
                continue
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
    # w_avg (truncation's running mean of w) is a buffer each process tracks from its own fakes, as
    # published; rank 0's is saved, so it is the one value that depends on the process count.
    _assert_same(a, b, exact=False, groups=["G", "D", "opt_G", "opt_D"], skip=("w_avg",))
    assert float((a["G"]["backbone.mapping.w_avg"] - b["G"]["backbone.mapping.w_avg"]).abs().max()) < 0.1
    moved = max(float((a["D"][k] - b["D"][k]).abs().max()) for k in a["D"])
    assert moved < 1e-4


def test_nan_loss_skips_or_stops_naming_the_last_snapshot(tmp_path, micro_dataset, micro_sets, monkeypatch):
    from training import losses

    real_d_main = losses.PHASES["D_main"]
    calls = {"n": 0}

    def nan_after_first(nets, mb, sched, gain):
        calls["n"] += 1
        out = real_d_main(nets, mb, sched, gain)
        return out if calls["n"] == 1 else dict(out, **{"D/loss": float("nan")})

    monkeypatch.setitem(losses.PHASES, "D_main", nan_after_first)
    rc = resolve_run_config("tiny", micro_sets + ["nan_policy=stop", "d_reg_interval=0", "g_reg_interval=0"])
    with pytest.raises(TrainingStopped, match=r"D_main: D/loss = nan; last good snapshot: snapshot-00000002\.n3d"):
        train(rc, micro_dataset, tmp_path / "stop", max_steps=3)
    # Skip policy: the NaN step leaves D (and its Adam state) untouched, G still steps.
    calls["n"] = 0
    rc = resolve_run_config("tiny", micro_sets + ["d_reg_interval=0", "g_reg_interval=0"])
    state = train(rc, micro_dataset, tmp_path / "skip", max_steps=2)
    assert state.skipped == 1 and state.step == 2
    a, _ = _groups(latest_snapshot(tmp_path / "skip"))
    assert float(a["opt_D"]["0.step"]) == 1 and float(a["opt_G"]["0.step"]) == 2
