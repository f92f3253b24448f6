"""The inversion, top to bottom: target (fit) -> latent -> refinement -> pivotal tuning.

    target = target_from_photo("me.jpg", G)                 # stage 1 (next3d.inversion.target)
    result = invert(G, target, InversionConfig())           # stages 2-4
    write_outputs("out/", result)                            # stage 5 (next3d.inversion.writer)

`invert` runs the latent inversion (`latent`), the GAR-style refinement of expression, jaw,
eyes and camera (`refine`, skipped with `refine=False`) and pivotal tuning (`pivotal`,
skipped with `pti=False`), each with its own progress bar, and records per stage the
seconds, the loss curve ends and the state reached (ws, camera, FLAME, generator). An
optional `on_stage(name, state)` callback sees the state after "fit", "w", "refine" and
"pti" (the synthetic measurement evaluates each one there). The generator passed in is not
changed unless the latent stage optimises its noise maps (`LatentConfig.optimise_noise`),
which then belong to the result.

CPU: the stages are thousands of small ops; with `num_threads=1` torch uses one thread
(restored afterwards), which on a shared machine is faster than several.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from next3d.inversion.latent import LatentConfig, invert_latent
from next3d.inversion.losses import ImageLoss, LossWeights, default_lpips
from next3d.inversion.pivotal import PivotalConfig, pivotal_tuning
from next3d.inversion.refine import RefineConfig, refine_face
from next3d.inversion.target import InversionTarget

STAGES = ("fit", "w", "refine", "pti")


@dataclass(frozen=True)
class InversionConfig:
    """Settings of `invert`."""

    latent: LatentConfig = field(default_factory=LatentConfig)
    """Stage 2 (latent inversion)."""
    refine_config: RefineConfig = field(default_factory=RefineConfig)
    """Stage 3 (refinement of expression, jaw, eyes, camera)."""
    pivotal: PivotalConfig = field(default_factory=PivotalConfig)
    """Stage 4 (pivotal tuning)."""
    refine: bool = True
    """Run stage 3."""
    pti: bool = True
    """Run stage 4."""
    loss: LossWeights = field(default_factory=LossWeights)
    """Weights of ST-LPIPS and the face-region L2 in every stage."""
    neural_resolution: Optional[int] = None
    """Volume-rendering resolution during the optimisation (None: the network's)."""
    num_threads: Optional[int] = 1
    """CPU threads torch uses while inverting (None: unchanged)."""


@dataclass
class StageState:
    """What a stage reached: G (the generator that renders it), ws (1, num_ws, w_dim), camera (1, 25),
    flame (1, k) per key; seconds spent (wall clock, and CPU time of this process); losses (first and last step's image loss, when it optimised)."""

    G: torch.nn.Module
    ws: torch.Tensor
    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    steps: int = 0
    first_loss: Optional[float] = None
    last_loss: Optional[float] = None
    note: str = ""


@dataclass
class InversionResult:
    """The final state, every stage's state in order, the target and the settings used."""

    target: InversionTarget
    stages: Dict[str, StageState]
    config: InversionConfig
    lpips_available: bool = True

    @property
    def final(self) -> StageState:
        return self.stages[list(self.stages)[-1]]

    def timings(self) -> Dict[str, float]:
        return {k: s.seconds for k, s in self.stages.items()}


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True, disable=not progress, leave=True)


def invert(G: torch.nn.Module, target: InversionTarget, config: InversionConfig = InversionConfig(), *,
           lpips: Optional[torch.nn.Module] = "default", progress: bool = True,
           on_stage: Optional[Callable[[str, StageState], None]] = None) -> InversionResult:
    """Stages 2-4 on a prepared target (module docstring). lpips: an STLPIPS module, None for L2 only,
    or "default" (the shipped VGG weights when installed)."""
    from next3d.fitting.landmark_fit import torch_threads

    device = next(G.parameters()).device
    with torch_threads(config.num_threads if device.type == "cpu" else None):
        if isinstance(lpips, str):
            lpips = default_lpips(device)
        loss_fn = ImageLoss(lpips, config.loss).to(device)
        target = target.to(device)
        stages: Dict[str, StageState] = {}

        def done(name: str, state: StageState) -> None:
            stages[name] = state
            if on_stage is not None:
                on_stage(name, state)

        from next3d.inversion.latent import expand_ws, w_statistics

        w_avg, _ = w_statistics(G, config.latent.avg_samples, config.latent.seed)
        done("fit", StageState(G=G, ws=expand_ws(G, w_avg, None).detach(), camera=target.camera, flame=target.flame,
                               seconds=target.fit_seconds, cpu_seconds=target.fit_cpu_seconds,
                               note="the fitter's camera and FLAME at w_avg"))

        def stage_bar(steps, desc):
            bar = _bar(steps, desc, progress)

            def step(record):
                bar.set_postfix({k: f"{v:.4f}" for k, v in record.items()}, refresh=False)
                bar.update(1)
            return bar, step

        started, cpu = time.perf_counter(), time.process_time()
        bar, step = stage_bar(config.latent.steps, f"W{'+' if config.latent.space == 'w+' else ''} inversion")
        with bar:
            lat = invert_latent(G, target, loss_fn, config.latent, config.neural_resolution, on_step=step)
        done("w", StageState(G=G, ws=lat.ws, camera=target.camera, flame=target.flame,
                             seconds=time.perf_counter() - started, cpu_seconds=time.process_time() - cpu,
                             steps=len(lat.losses),
                             first_loss=lat.losses[0] if lat.losses else None,
                             last_loss=lat.losses[-1] if lat.losses else None))
        camera, flame = target.camera, target.flame
        if config.refine:
            started, cpu = time.perf_counter(), time.process_time()
            bar, step = stage_bar(config.refine_config.steps, "refinement")
            with bar:
                ref = refine_face(G, lat.ws, target, loss_fn, config.refine_config,
                                  neural_resolution=config.neural_resolution, on_step=step)
            camera, flame = ref.camera, ref.flame
            done("refine", StageState(G=G, ws=lat.ws, camera=camera, flame=flame,
                                      seconds=time.perf_counter() - started,
                                      cpu_seconds=time.process_time() - cpu, steps=len(ref.losses),
                                      first_loss=ref.image_losses[0] if ref.image_losses else None,
                                      last_loss=ref.image_losses[-1] if ref.image_losses else None))
        if config.pti:
            started, cpu = time.perf_counter(), time.process_time()
            bar, step = stage_bar(config.pivotal.steps, "pivotal tuning")
            with bar:
                pti = pivotal_tuning(G, lat.ws, camera, flame, target, loss_fn, config.pivotal,
                                     config.neural_resolution, on_step=step)
            done("pti", StageState(G=pti.G, ws=lat.ws, camera=camera, flame=flame,
                                   seconds=time.perf_counter() - started,
                                   cpu_seconds=time.process_time() - cpu, steps=len(pti.losses),
                                   first_loss=pti.losses[0] if pti.losses else None,
                                   last_loss=pti.losses[-1] if pti.losses else None,
                                   note="stopped early at the ST-LPIPS threshold" if pti.stopped_early else ""))
    return InversionResult(target=target, stages=stages, config=config, lpips_available=lpips is not None)


__all__ = ["STAGES", "InversionConfig", "StageState", "InversionResult", "invert"]
