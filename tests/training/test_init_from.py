"""Starting a run from a trained network's weights (`next3d train --init-from`)."""

import pytest
import torch

from next3d.checkpoint import build_generator, load_checkpoint
from training.config import resolve_run_config
from training.loop import train
from training.setup import TrainingSetupError, check_init_generator
from training.snapshot import latest_snapshot

from .test_cli_train import _one_line_error, _run, _sets


def _distance(state, module):
    return sum(float((state[k].float() - v.float()).abs().sum()) for k, v in module.state_dict().items()
               if v.is_floating_point())


def test_run_starts_from_the_given_weights(tmp_path, micro_dataset, micro_sets):
    rc = resolve_run_config("tiny", micro_sets)
    start = build_generator(rc.generator, seed=99)   # another initialisation than the run's seed 0
    fresh = build_generator(rc.generator, seed=rc.training.seed)
    train(rc, micro_dataset, tmp_path / "run", max_steps=1, init_G=start)
    g = load_checkpoint(latest_snapshot(tmp_path / "run")).state_dicts["G"]
    # One Adam step moves the weights a little: far closer to `start` than to the seeded init.
    assert _distance(g, start) < 0.2 * _distance(g, fresh)
    again = build_generator(rc.generator, seed=99).state_dict()
    assert all(torch.equal(v, again[k]) for k, v in start.state_dict().items())  # the caller's network untouched


def test_other_generator_configuration_is_refused(micro_sets):
    rc = resolve_run_config("tiny", micro_sets)
    other = build_generator(resolve_run_config("tiny", micro_sets + ["G.channel_max=8"]).generator, seed=0)
    with pytest.raises(TrainingSetupError, match=r"channel_max = 8 \(preset tiny: 16\)"):
        check_init_generator(other, rc)


def test_cli_init_from_errors(tmp_path, micro_dataset_dir, micro_sets):
    base = ["--data", str(micro_dataset_dir), "--preset", "tiny", "--out", str(tmp_path / "r"), *_sets(micro_sets)]
    _one_line_error(_run(base + ["--init-from", "builtin", "--resume", "latest"]), "--init-from and --resume")
    _one_line_error(_run(base + ["--init-from", "random:tiny"]), "--init-from", "differs from the run's")
    _one_line_error(_run(base + ["--init-from", str(tmp_path / "missing.n3d")]), "missing.n3d")
    assert not (tmp_path / "r").exists()


def test_d_warmup_trains_only_d_then_hands_over(tmp_path, micro_dataset, micro_sets):
    from training.loop import phases_at
    rc = resolve_run_config("tiny", micro_sets + ["d_warmup_kimg=0.004", "g_reg_interval=1", "d_reg_interval=1"])
    assert phases_at(0, rc.training, cur_nimg=0) == ["D_main", "D_reg"]
    assert phases_at(1, rc.training, cur_nimg=3) == ["D_main", "D_reg"]
    assert phases_at(2, rc.training, cur_nimg=4) == ["G_main", "G_reg", "D_main", "D_reg"]
    start = build_generator(rc.generator, seed=99)
    state = train(rc, micro_dataset, tmp_path / "run", max_steps=1, init_G=start)  # batch 2: inside the D warm-up
    snap = load_checkpoint(latest_snapshot(tmp_path / "run")).state_dicts
    # Weights stay (buffers such as w_avg keep tracking D's fakes, as in any D phase).
    params = {k for k, _ in start.named_parameters()}
    for net in ("G", "G_ema"):
        assert all(torch.equal(snap[net][k], v) for k, v in start.state_dict().items() if k in params), net
    assert state.means_regime == "d_warmup" and "D/loss" in state.loss_means and "G/loss" not in state.loss_means


def test_d_warmup_is_refused_with_the_reconstruction_warm_start(micro_sets):
    from next3d.config import ConfigError
    with pytest.raises(ConfigError, match="d_warmup_kimg.*warmup_kimg"):
        resolve_run_config("tiny", micro_sets + ["d_warmup_kimg=1", "warmup_kimg=1"])
    with pytest.raises(ConfigError, match="d_warmup_kimg"):
        resolve_run_config("tiny", micro_sets + ["d_warmup_kimg=-1"])


def test_init_from_keeps_the_weights_and_takes_the_run_head(micro_sets):
    """A network trained on an older built-in head continues on the run's head (same topology)."""
    import dataclasses

    from next3d.flame import load_flame_model
    from next3d.networks.generator import Next3DGenerator
    from training.setup import generator_on_run_head

    rc = resolve_run_config("tiny", micro_sets)
    head = load_flame_model(rc.generator.flame_dir)
    older = dataclasses.replace(head, exprdirs=head.exprdirs * 0.5, version="builtin-v0-test")
    torch.manual_seed(5)
    start = Next3DGenerator(rc.generator, head=older)
    moved = generator_on_run_head(start, rc, seed=0)
    assert moved.head_record.version == Next3DGenerator(rc.generator).head_record.version != "builtin-v0-test"
    assert torch.allclose(moved.flame.exprdirs, torch.as_tensor(head.exprdirs).to(moved.flame.exprdirs))
    assert all(torch.equal(v, start.state_dict()[k]) for k, v in moved.state_dict().items())

    other = dataclasses.replace(head, uv_coords=head.uv_coords[:-1], uv_faces=head.uv_faces % (len(head.uv_coords) - 1))
    with pytest.raises(TrainingSetupError, match="head topology .* differs from the run's"):
        generator_on_run_head(Next3DGenerator(rc.generator, head=other), rc, seed=0)
