"""The training loop: it orchestrates; the pieces live in their own modules.

    setup.py        checks, networks (broadcast), lazy-regularised Adam
    data_order.py   which real items and which seeds each micro-batch of each phase gets
    losses.py       G main, G reg (density), D main, D reg (R1)
    distributed.py  gradient averaging over processes
    ema.py          G_ema
    snapshot.py     atomic snapshots with the whole state (exact resume)
    reporting.py    log, tensorboard, progress bar, sample grids, metrics (rank 0)

One step = G_main, G_reg (every g_reg_interval steps), D_main, D_reg (every
d_reg_interval steps); each phase zeroes its network's gradients, runs this process's
micro-batches, averages gradients over processes, and steps its optimiser unless the loss
was not finite or spiked (then the step is skipped, or the run stopped, by nan_policy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from . import losses
from .config import RunConfig
from .data_order import (DataOrder, LabelTable, RankBatchSampler, build_label_table, collate,
                         micro_batches_of_rank, phase_seed, warmup_positions)
from .distributed import DistEnv, all_flag, all_mean, barrier, sync_gradients
from .ema import ema_beta, update_ema
from .setup import (Built, build_networks, check_batch, check_dataset, check_init_generator,
                    generator_on_run_head)
from .snapshot import restore_snapshot, save_snapshot
from .warmup import g_recon, in_warmup


def phase_function(phase: str):
    """The loss function of a phase (looked up per call, so a patched `losses.PHASES` is used)."""
    return g_recon if phase == "G_recon" else losses.PHASES[phase]

MAIN_LOSSES = ("G/loss", "D/loss")


class TrainingStopped(RuntimeError):
    """The run stopped on non-finite or spiking losses; the message names the last good snapshot."""


@dataclass
class TrainState:
    """Counters that a snapshot stores (JSON); together with the weights they define the run."""

    step: int = 0
    cur_nimg: int = 0
    skipped: int = 0
    skipped_in_row: int = 0
    loss_means: Dict[str, float] = field(default_factory=dict)
    next_log_nimg: int = 0
    next_snap_nimg: int = 0
    last_snapshot: Optional[str] = None
    means_regime: str = ""
    """`regime_at`'s name of the regime the running loss means were measured in."""
    means_since_step: int = 0
    """The step from which the running loss means (the spike reference) were collected."""


def regime_at(cfg, cur_nimg: int) -> str:
    """"d_warmup" (only D trains), "warmup" (G reconstructs) or "adversarial"."""
    if cur_nimg < int(cfg.d_warmup_kimg * 1000):
        return "d_warmup"
    return "warmup" if in_warmup(cfg, cur_nimg) else "adversarial"


def phases_at(step: int, cfg, cur_nimg: int = 0) -> List[str]:
    """The phases of one step (lazy regularisation every interval steps; G_recon instead of
    G_main during the reconstruction warm start; no G phase during D's warm-up)."""
    regime = regime_at(cfg, cur_nimg)
    out = [] if regime == "d_warmup" else ["G_recon" if regime == "warmup" else "G_main"]
    if regime != "d_warmup" and cfg.g_reg_interval > 0 and cfg.density_reg > 0 and step % cfg.g_reg_interval == 0:
        out.append("G_reg")
    out.append("D_main")
    if cfg.d_reg_interval > 0 and cfg.r1_gamma > 0 and step % cfg.d_reg_interval == 0:
        out.append("D_reg")
    return out


def fake_draws(labels: LabelTable, batch: int, z_dim: int, device) -> Dict[str, Any]:
    """z and the camera + FLAME parameters of random data set items (torch RNG, seeded by the caller)."""
    z = torch.randn(batch, z_dim)
    idx = torch.randint(0, len(labels), (batch,))
    taken = labels.take(idx, device)
    return {"gen_z": z.to(device), "gen_c": taken["c"], "gen_flame": taken["flame"]}


def _bad(logs: Dict[str, float], state: TrainState, factor: float) -> Optional[str]:
    """Why a phase's losses are unusable (non-finite or a spike), or None."""
    for key, value in logs.items():
        if not math.isfinite(value):
            return f"{key} = {value}"
        mean = state.loss_means.get(key)
        if (factor > 0 and key in MAIN_LOSSES and mean is not None and state.step - state.means_since_step > 50
                and value > factor * max(mean, 1e-3)):
            return f"{key} = {value:.4g} spiked above {factor:g} x its running mean {mean:.4g}"
    return None


def run_phase(built: Built, phase: str, step: int, sched, reals: List[Dict[str, Any]], micros: List[int],
              labels: LabelTable, env: DistEnv, state: TrainState, batch_gpu: int) -> Optional[Dict[str, float]]:
    """One phase on this process's micro-batches; returns its losses, or None when skipped."""
    cfg, nets = built.nets.cfg, built.nets
    module, opt = (built.G, built.opt_G) if phase.startswith("G") else (built.D, built.opt_D)
    interval = {"G_reg": cfg.g_reg_interval, "D_reg": cfg.d_reg_interval}.get(phase, 1)
    gain = interval * batch_gpu / (cfg.batch // env.world_size)
    # The warm start also trains the per-item latent codes, with their own Adam.
    codes, opt_codes = (nets.codes, built.opt_codes) if phase == "G_recon" else (None, None)
    module.requires_grad_(True)
    opt.zero_grad(set_to_none=True)
    if codes is not None:
        codes.requires_grad_(True)
        opt_codes.zero_grad(set_to_none=True)
    logs: Dict[str, float] = {}
    for real, m in zip(reals, micros):
        torch.manual_seed(phase_seed(cfg.seed, step, phase, m))
        mb = losses.MicroBatch(**real, **fake_draws(labels, batch_gpu, built.G.z_dim, env.device))
        for k, v in phase_function(phase)(nets, mb, sched, gain).items():
            logs[k] = logs.get(k, 0.0) + v / len(micros)
    sync_gradients(module.parameters(), env)
    if codes is not None:
        sync_gradients(codes.parameters(), env)
        codes.requires_grad_(False)
    logs = all_mean(logs, env)
    module.requires_grad_(False)
    reason = _bad(logs, state, cfg.spike_factor)
    if not all_flag(reason is None, env):
        opt.zero_grad(set_to_none=True)
        if codes is not None:
            opt_codes.zero_grad(set_to_none=True)
        return {"skip_reason": reason or "another process"}
    opt.step()
    if codes is not None:
        opt_codes.step()
    return logs


def train_step(built: Built, step_reals: List[Dict[str, Any]], micros: List[int], labels: LabelTable,
               env: DistEnv, state: TrainState, batch_gpu: int) -> Dict[str, Any]:
    """All phases of one step, then EMA and the counters."""
    cfg = built.nets.cfg
    sched = losses.schedule_at(cfg, state.cur_nimg, built.G.config.render.neural_resolution)
    built.G.neural_rendering_resolution = sched.neural_rendering_resolution
    # D's loss against warm-start fakes says nothing about the adversarial phase: restart the
    # spike reference when the regime changes (also on resuming a snapshot from before this rule).
    regime = regime_at(cfg, state.cur_nimg)
    if regime != state.means_regime and (state.means_regime or cfg.warmup_kimg > 0 or cfg.d_warmup_kimg > 0):
        state.loss_means, state.means_since_step = {}, state.step
    state.means_regime = regime
    logs: Dict[str, Any] = {}
    skipped = []
    for phase in phases_at(state.step, cfg, state.cur_nimg):
        out = run_phase(built, phase, state.step, sched, step_reals, micros, labels, env, state, batch_gpu)
        if "skip_reason" in out:
            skipped.append(f"{phase}: {out['skip_reason']}")
        else:
            logs.update(out)
    for key in MAIN_LOSSES:
        if key in logs:
            old = state.loss_means.get(key)
            state.loss_means[key] = logs[key] if old is None else 0.99 * old + 0.01 * logs[key]
    state.skipped_in_row = state.skipped_in_row + 1 if skipped else 0
    state.skipped += bool(skipped)
    state.cur_nimg += cfg.batch
    state.step += 1
    if env.is_main and regime != "d_warmup":
        beta = ema_beta(cfg.batch, state.cur_nimg, cfg.ema_kimg, cfg.ema_rampup)
        update_ema(built.G_ema, built.G, beta)
    built.G_ema.neural_rendering_resolution = sched.neural_rendering_resolution
    logs.update({"kimg": state.cur_nimg / 1000, "schedule/blur_sigma": sched.blur_sigma,
                 "schedule/swap_prob": sched.swap_prob, "schedule/neural_res": sched.neural_rendering_resolution})
    if skipped:
        logs["skipped"] = skipped
    return logs


def train(run_config: RunConfig, dataset, run_dir: Path, env: Optional[DistEnv] = None, resume=None,
          reporter=None, max_steps: Optional[int] = None, num_workers: int = 0,
          init_G: Optional[torch.nn.Module] = None) -> TrainState:
    """Train until run_config.training.kimg (or `max_steps` more steps); snapshots in run_dir (rank 0).

    resume: a snapshot read by `snapshot.read_snapshot` (its configuration already checked).
    reporter: `training.reporting.Reporter` on rank 0 (None = silent).
    init_G: start G (and G_ema) from these weights instead of the seeded initialisation (a
    network of the same generator configuration, `setup.check_init_generator`), on the run's
    own head model (`setup.generator_on_run_head`); D, the optimisers and the schedules start
    fresh. Ignored when resuming.
    """
    env = env or DistEnv()
    cfg = run_config.training
    run_dir = Path(run_dir)
    batch_gpu = check_batch(cfg, env)
    if init_G is not None and resume is None:
        check_init_generator(init_G, run_config)
        init_G = generator_on_run_head(init_G, run_config, cfg.seed)
    else:
        init_G = None
    built = build_networks(run_config, env, G=init_G, num_items=len(dataset))
    check_dataset(dataset, run_config, built.G.flame)
    state = TrainState()
    if resume is not None:
        state = TrainState(**restore_snapshot(resume, G=built.G, G_ema=built.G_ema, D=built.D,
                                              opt_G=built.opt_G, opt_D=built.opt_D,
                                              codes=built.nets.codes, opt_codes=built.opt_codes))
        state.last_snapshot = Path(resume.path).name
        # Intervals may change on resume (they do not affect the training maths).
        state.next_snap_nimg = min(state.next_snap_nimg, state.cur_nimg + int(cfg.snap_kimg * 1000))
        state.next_log_nimg = min(state.next_log_nimg, state.cur_nimg + int(cfg.log_kimg * 1000))
    labels = build_label_table(dataset)
    micros = micro_batches_of_rank(cfg.batch, batch_gpu, env.rank, env.world_size)
    order = DataOrder(len(dataset), cfg.seed, warmup_positions(cfg.warmup_kimg, cfg.batch), cfg.warmup_items)
    sampler = RankBatchSampler(order, cfg.batch, batch_gpu, env.rank, env.world_size,
                               start_step=state.step)
    loader = iter(torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                              num_workers=num_workers))
    if reporter is not None:
        reporter.start(built, dataset, labels, state)
    total_nimg = int(cfg.kimg * 1000)
    last_step = None if max_steps is None else state.step + max_steps

    def snapshot():
        if env.is_main:
            path = save_snapshot(run_dir, run_config=run_config, G=built.G, G_ema=built.G_ema, D=built.D,
                                 opt_G=built.opt_G, opt_D=built.opt_D, state=asdict(state),
                                 codes=built.nets.codes, opt_codes=built.opt_codes)
            state.last_snapshot = path.name
            if reporter is not None:
                reporter.snapshot(built, state, path)
        barrier(env)

    while state.cur_nimg < total_nimg and (last_step is None or state.step < last_step):
        reals = [{k: (v.to(env.device) if torch.is_tensor(v) else {kk: vv.to(env.device) for kk, vv in v.items()})
                  for k, v in next(loader).items()} for _ in micros]
        logs = train_step(built, reals, micros, labels, env, state, batch_gpu)
        if "skipped" in logs and (cfg.nan_policy == "stop" or state.skipped_in_row >= cfg.max_skips):
            where = state.last_snapshot or "none written yet"
            raise TrainingStopped(f"training stopped at kimg {state.cur_nimg / 1000:.3f}: {'; '.join(logs['skipped'])}"
                                  f"; last good snapshot: {where}")
        if reporter is not None:
            reporter.step(logs, state)
        if state.cur_nimg >= state.next_log_nimg:
            state.next_log_nimg = state.cur_nimg + int(cfg.log_kimg * 1000)
            if reporter is not None:
                reporter.log(logs, state)
        if state.cur_nimg >= state.next_snap_nimg:
            state.next_snap_nimg = state.cur_nimg + int(cfg.snap_kimg * 1000)
            snapshot()
    if state.last_snapshot is None or not state.last_snapshot.endswith(f"{state.cur_nimg:08d}.n3d"):
        snapshot()
    if reporter is not None:
        reporter.close()
    return state
