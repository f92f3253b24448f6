"""The reconstruction warm start: G_recon replaces G_main for warmup_kimg, learns, resumes exactly."""

import pytest
import torch

from next3d.checkpoint import load_checkpoint
from training.config import resolve_run_config
from training.data_order import collate
from training.distributed import DistEnv
from training.losses import MicroBatch, schedule_at
from training.loop import phases_at, train
from training.setup import build_networks
from training.snapshot import latest_snapshot, read_snapshot
from training.warmup import LatentCodes, g_recon

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


def test_too_short_warm_start_warns(micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=0.004", "warmup_perceptual=0"])
    with pytest.warns(UserWarning, match="shows each of its 8 items 0.5 times"):
        build_networks(rc, DistEnv(), num_items=8)
    # The same length on a subset of one item shows it 4 times: no warning.
    import warnings
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=0.004", "warmup_perceptual=0", "warmup_items=1"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_networks(rc, DistEnv(), num_items=8)


def test_subset_warm_start_trains_only_the_subset_codes(tmp_path, micro_dataset, micro_sets):
    from training.data_order import warmup_subset
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=1", "warmup_perceptual=0", "warmup_items=2"])
    train(rc, micro_dataset, tmp_path / "run", max_steps=3)
    codes = load_checkpoint(latest_snapshot(tmp_path / "run")).state_dicts["codes"]["weight"]
    init = LatentCodes(len(micro_dataset), rc.generator.z_dim, rc.training.seed).weight
    moved = sorted(i for i in range(len(micro_dataset)) if not torch.equal(codes[i], init[i]))
    assert moved == warmup_subset(len(micro_dataset), rc.training.seed, 2).tolist()


def test_collate_carries_item_indices(micro_dataset):
    batch = collate([micro_dataset[3], micro_dataset[5]])
    assert batch["real_idx"].tolist() == [3, 5]


def test_warmup_resumes_bit_identically(tmp_path, micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=1", "warmup_perceptual=0"])
    train(rc, micro_dataset, tmp_path / "straight", max_steps=2)
    train(rc, micro_dataset, tmp_path / "split", max_steps=1)
    ckpt = read_snapshot(latest_snapshot(tmp_path / "split"))
    train(rc, micro_dataset, tmp_path / "split", resume=ckpt, max_steps=1)
    a = load_checkpoint(latest_snapshot(tmp_path / "straight"))
    b = load_checkpoint(latest_snapshot(tmp_path / "split"))
    assert {"codes", "opt_codes"} <= set(a.state_dicts)
    _assert_same(a.state_dicts, b.state_dicts, exact=True)
    init = LatentCodes(len(micro_dataset), rc.generator.z_dim, rc.training.seed).weight
    assert not torch.equal(init, a.state_dicts["codes"]["weight"])  # the codes were trained


def test_recon_phase_lowers_the_reconstruction_error(micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=1", "warmup_perceptual=0", "glr=0.01",
                                                  "warmup_code_lr=0.05"])
    built = build_networks(rc, DistEnv(), num_items=len(micro_dataset))
    sched = schedule_at(rc.training, 0, built.G.config.render.neural_resolution)
    real = collate([micro_dataset[0], micro_dataset[1]])
    mb = MicroBatch(**real, gen_z=None, gen_c=None, gen_flame=None)
    torch.manual_seed(0)
    errors = []
    for _ in range(10):
        for module in (built.G, built.nets.codes):
            module.requires_grad_(True)
        built.opt_G.zero_grad(set_to_none=True)
        built.opt_codes.zero_grad(set_to_none=True)
        errors.append(g_recon(built.nets, mb, sched, 1.0)["G/recon_l1"])
        built.opt_G.step()
        built.opt_codes.step()
    assert errors[-1] < 0.8 * errors[0], errors
    assert built.nets.codes.weight.grad is not None


def test_spike_reference_restarts_when_the_adversarial_phase_begins(micro_dataset, micro_sets):
    from training.loop import TrainState, _bad
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=0.004"])
    # A D loss 40x its warm-start mean is a spike in the same regime, not after the switch.
    state = TrainState(step=100, loss_means={"D/loss": 0.1}, means_regime="warmup")
    assert "spiked" in _bad({"D/loss": 4.0}, state, rc.training.spike_factor)
    state.means_since_step = 80
    assert _bad({"D/loss": 4.0}, state, rc.training.spike_factor) is None


def test_regime_switch_resets_the_running_means(tmp_path, micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets + ["warmup_kimg=0.004", "warmup_perceptual=0"])
    state = train(rc, micro_dataset, tmp_path / "run", max_steps=3)  # 2 warm-start steps (batch 2), then 1
    assert state.means_regime == "adversarial" and state.means_since_step == 2
    assert set(state.loss_means) <= {"G/loss", "D/loss"} and "D/loss" in state.loss_means
