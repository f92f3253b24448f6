"""The reconstruction warm start: G_recon replaces G_main for warmup_kimg, learns, resumes exactly."""

import pytest
import torch

from next3d.checkpoint import load_checkpoint
from training.config import resolve_run_config
from training.data_order import collate
from training.loop import phases_at, train
from training.snapshot import latest_snapshot, read_snapshot
from training.warmup import LatentCodes

from .test_loop import _assert_same


def test_phases_switch_from_recon_to_adversarial_at_warmup_kimg():
    rc = resolve_run_config("tiny", ["warmup_kimg=0.008", "g_reg_interval=0", "d_reg_interval=0"])
    assert phases_at(0, rc.training, cur_nimg=0) == ["G_recon", "D_main"]
    assert phases_at(1, rc.training, cur_nimg=7) == ["G_recon", "D_main"]
    assert phases_at(2, rc.training, cur_nimg=8) == ["G_main", "D_main"]
    assert phases_at(0, resolve_run_config("tiny").training) [0] == "G_main"


def test_latent_codes_are_seeded_gaussian_and_check_indices():
    a, b = LatentCodes(100, 16, seed=3), LatentCodes(100, 16, seed=3)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, LatentCodes(100, 16, seed=4).weight)
    w = a.weight.detach()
    assert abs(float(w.mean())) < 0.1 and 0.85 < float(w.std()) < 1.15
    assert a(torch.tensor([5, 7])).shape == (2, 16)
    with pytest.raises(IndexError, match="out of range 0..99"):
        a(torch.tensor([100]))


def test_collate_carries_item_indices(micro_dataset):
    batch = collate([micro_dataset[3], micro_dataset[5]])
    assert batch["real_idx"].tolist() == [3, 5]


def test_warmup_lowers_reconstruction_error_and_resumes_bit_identically(tmp_path, micro_dataset, micro_sets):
    sets = micro_sets + ["warmup_kimg=1", "warmup_perceptual=0", "glr=0.01", "warmup_code_lr=0.05"]
    rc = resolve_run_config("tiny", sets)
    k = 4
    train(rc, micro_dataset, tmp_path / "straight", max_steps=k)
    train(rc, micro_dataset, tmp_path / "split", max_steps=k // 2)
    ckpt = read_snapshot(latest_snapshot(tmp_path / "split"))
    train(rc, micro_dataset, tmp_path / "split", resume=ckpt, max_steps=k // 2)
    a = load_checkpoint(latest_snapshot(tmp_path / "straight"))
    b = load_checkpoint(latest_snapshot(tmp_path / "split"))
    assert {"codes", "opt_codes"} <= set(a.state_dicts)
    _assert_same(a.state_dicts, b.state_dicts, exact=True)
    init = LatentCodes(len(micro_dataset), rc.generator.z_dim, rc.training.seed).weight
    assert not torch.equal(init, a.state_dicts["codes"]["weight"])  # the codes were trained
    # 12 more steps on the same 8 items: the reconstruction error falls.
    log = []

    class Rec:
        def start(self, *a): pass
        def step(self, logs, state): log.append(logs["G/recon_l1"])
        def log(self, *a): pass
        def snapshot(self, *a): pass
        def close(self): pass

    train(rc, micro_dataset, tmp_path / "long", max_steps=16, reporter=Rec())
    assert len(log) == 16
    assert sum(log[-4:]) / 4 < 0.8 * sum(log[:4]) / 4, log
