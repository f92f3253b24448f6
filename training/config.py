"""Typed training configuration and the per-preset training defaults.

`TrainingConfig` holds everything about how the networks are trained (losses, intervals,
optimiser, schedules, snapshots); the networks' own sizes stay in `GeneratorConfig` /
`DiscriminatorConfig`. `RunConfig` bundles the three with the preset name; it is what a
run folder's `config.json` and every snapshot hold.

Published values (design §2, §8) are the `ffhq512` defaults: batch 32, Adam β (0, 0.99),
lr G 0.0025 / D 0.002, R1 γ 4 every 16 D steps, density regularisation 0.25 every 4 G
steps (jitter 0.004, 1000 points), generator pose-conditioning swap 0.5 (faded from 1 over
1000 kimg), D-input blur σ 10 faded over batch·200/32 kimg, EMA batch·10/32 kimg with
ramp-up 0.05, label noise 1 × label std. `tiny` and `small` keep the recipe and scale the
batch and the schedules down for a CPU.

Command-line overrides (`--set key=value`): plain keys are TrainingConfig fields
(`glr=0.002`), `G.<key>` and `D.<key>` reach the generator and discriminator configs
(`G.render.neural_resolution=16`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Literal, Optional, Tuple

from next3d.config import ConfigError, DiscriminatorConfig, GeneratorConfig, _Config, apply_overrides
from next3d.presets import PRESET_NAMES, get_discriminator_preset, get_preset


@dataclass(frozen=True)
class TrainingConfig(_Config):
    seed: int = 0
    """Seed of the initial weights, the data order and every per-step random draw."""
    batch: int = 32
    """Global batch (all processes together); independent of the process count."""
    batch_gpu: Optional[int] = None
    """Samples per forward pass on one process (null = batch / processes); smaller values
    accumulate gradients over several rounds with the same result."""
    glr: float = 0.0025
    """Adam learning rate of the generator."""
    dlr: float = 0.002
    """Adam learning rate of the discriminator."""
    betas: Tuple[float, float] = (0.0, 0.99)
    """Adam β1, β2 (before the lazy-regularisation correction)."""
    eps: float = 1e-8
    """Adam ε."""
    r1_gamma: float = 4.0
    """R1 weight γ on real `image` and `image_raw` (loss = penalty · γ / 2); Next3D's command: 4."""
    d_reg_interval: int = 16
    """R1 is applied every this many D steps (lazy regularisation, 0 = never)."""
    density_reg: float = 0.25
    """Weight of the density regulariser (L1 between σ at points and at jittered points)."""
    g_reg_interval: int = 4
    """The density regulariser runs every this many G steps (0 = never)."""
    density_reg_p_dist: float = 0.004
    """Std of the jitter of the density-regulariser points (world units)."""
    density_reg_points: int = 1000
    """Points per sample for the density regulariser."""
    density_reg_mesh_fraction: float = 0.5
    """Share of those points placed near the driving mesh (jittered vertices); the rest are
    uniform in [-1, 1]^3 as published."""
    gpc_reg_prob: float = 0.5
    """Probability that the generator's mapping sees another sample's camera label."""
    gpc_reg_fade_kimg: float = 1000.0
    """The swap probability fades from 1 to gpc_reg_prob over this many kimg (0 = no fade)."""
    blur_init_sigma: float = 10.0
    """Gaussian blur σ (pixels) of the discriminator's image inputs at the start. Published: 10 at
    512²; the smaller presets scale it to their output size (a σ of 10 px at 128² hides the eyes
    and mouth from D for most of a short run)."""
    blur_fade_kimg: float = 200.0
    """The blur fades linearly to 0 over this many kimg (published: batch·200/32)."""
    ema_kimg: float = 10.0
    """EMA half-life of G_ema in kimg (published: batch·10/32)."""
    ema_rampup: Optional[float] = 0.05
    """EMA ramp-up: the half-life is at most cur_nimg · ema_rampup (null = none)."""
    style_mixing_prob: float = 0.0
    """Probability of style mixing (ws after a random cutoff from a second z)."""
    neural_rendering_resolution_final: Optional[int] = None
    """Fade the neural rendering resolution from the generator's to this (null = fixed)."""
    neural_rendering_resolution_fade_kimg: float = 1000.0
    """Over this many kimg."""
    c_noise: float = 1.0
    """Label noise of the discriminator's camera conditioning, in units of the batch's label std."""
    mesh_condition: Literal["normals", "shaded", "none"] = "normals"
    """Deformation-aware D: a rendering of the FLAME mesh under the same camera concatenated to
    D's input (normals: 3 channels; shaded: 1 grey channel); "none" = the published D."""
    mesh_resolution: int = 64
    """Side of that mesh rendering (D resizes it to its input resolution)."""
    mixed_precision: bool = True
    """Use the networks' float16 layers on CUDA (ignored on the CPU)."""
    nan_policy: Literal["skip", "stop"] = "skip"
    """A non-finite or spiking loss: skip that step, or stop naming the last good snapshot."""
    spike_factor: float = 20.0
    """A loss counts as a spike when it exceeds this many times its running mean (0 = off)."""
    max_skips: int = 20
    """Stop after this many skipped steps in a row."""
    kimg: float = 25000.0
    """Length of the run in thousands of real images shown."""
    snap_kimg: float = 200.0
    """Snapshot, sample grids and metrics every this many kimg."""
    log_kimg: float = 1.0
    """JSONL / tensorboard log every this many kimg."""
    d_warmup_kimg: float = 0.0
    """For this many kimg at the start only D trains (G and G_ema stay as they are): a fresh D
    catches up with a generator started by `--init-from` before G follows its gradients.
    0 = off. Not with `warmup_kimg` (D already trains during the reconstruction warm start)."""
    warmup_kimg: float = 0.0
    """Reconstruction warm start: for this many kimg G's main phase reconstructs each real item
    from its camera, FLAME parameters and a latent code learnt per item (an auto-decoder),
    instead of the adversarial loss; D trains as usual. 0 = the published recipe from step 0."""
    warmup_items: int = 0
    """Warm-start on a fixed seeded subset of this many items (0 = all), so that each item's code
    is seen often enough to learn; the adversarial phase then draws from the whole set."""
    warmup_code_lr: float = 0.01
    """Adam learning rate of the per-item latent codes of the warm start."""
    warmup_l1: float = 1.0
    """Weight of the mean absolute error on `image` (and on `image_raw` against the downsampled real)."""
    warmup_perceptual: float = 1.0
    """Weight of the ST-LPIPS distance on `image` (0 = none; needs the stlpips-pytorch weights)."""
    warmup_perceptual_net: Literal["alex", "vgg"] = "alex"
    """Trunk of that ST-LPIPS distance."""
    warmup_perceptual_res: int = 0
    """Resolution both images are resized to (antialiased) before that distance; 0 = the image's
    own. The shift-tolerant trunks run stride-1 convolutions at full size, so half the size
    costs about a quarter (at 128² on the CPU: 0.9 s of a 1.7 s warm-start phase)."""
    grid_size: int = 4
    """Samples per row and rows in the fixed-seed sample grid."""
    metric_images: int = 256
    """Images (real and fake) for the built-in random-feature Fréchet distance (0 = off)."""

    def _check(self):
        self._require(self.batch >= 1, "batch", "must be positive")
        self._require(self.batch_gpu is None or self.batch_gpu >= 1, "batch_gpu", "must be positive or null")
        for key in ("glr", "dlr", "eps", "kimg", "snap_kimg", "log_kimg"):
            self._require(getattr(self, key) > 0, key, "must be positive")
        self._require(all(0.0 <= b < 1.0 for b in self.betas), "betas", "must lie in [0, 1)")
        for key in ("r1_gamma", "density_reg", "density_reg_p_dist", "blur_init_sigma", "blur_fade_kimg",
                    "gpc_reg_fade_kimg", "ema_kimg", "c_noise", "spike_factor",
                    "neural_rendering_resolution_fade_kimg"):
            self._require(getattr(self, key) >= 0, key, "cannot be negative")
        for key in ("warmup_kimg", "d_warmup_kimg", "warmup_code_lr", "warmup_l1", "warmup_perceptual"):
            self._require(getattr(self, key) >= 0, key, "cannot be negative")
        self._require(not (self.d_warmup_kimg > 0 and self.warmup_kimg > 0), "d_warmup_kimg",
                      "cannot be combined with warmup_kimg > 0 (D already trains during the reconstruction "
                      "warm start); set one of them to 0")
        for key in ("d_reg_interval", "g_reg_interval", "max_skips", "metric_images", "warmup_items",
                    "warmup_perceptual_res"):
            self._require(getattr(self, key) >= 0, key, "cannot be negative")
        for key in ("gpc_reg_prob", "style_mixing_prob", "density_reg_mesh_fraction"):
            self._require(0.0 <= getattr(self, key) <= 1.0, key, "must lie in [0, 1]")
        self._require(self.density_reg_points >= 1, "density_reg_points", "must be positive")
        self._require(self.mesh_resolution >= 8, "mesh_resolution", "must be at least 8")
        self._require(self.grid_size >= 1, "grid_size", "must be positive")

    @property
    def mesh_channels(self) -> int:
        """Channels of the mesh rendering D sees (0 = the published dual discriminator)."""
        return {"normals": 3, "shaded": 1, "none": 0}[self.mesh_condition]


def _scaled(batch: int, resolution: int = 512, **overrides: Any) -> TrainingConfig:
    """The published recipe with its batch-proportional schedules at `batch` and its D-input
    blur (σ 10 px at 512²) at the output `resolution`."""
    base = dict(batch=batch, blur_fade_kimg=batch * 200 / 32, ema_kimg=batch * 10 / 32,
                blur_init_sigma=10.0 * resolution / 512)
    base.update(overrides)
    return TrainingConfig(**base)


def training_preset(name: str) -> TrainingConfig:
    """Training defaults of preset `name` (ffhq512 = the published recipe)."""
    if name == "ffhq512":
        return _scaled(32, mesh_resolution=256)
    if name == "small":
        return _scaled(8, 128, r1_gamma=1.0, snap_kimg=20.0, log_kimg=0.2, mesh_resolution=128, kimg=2000.0,
                       gpc_reg_fade_kimg=100.0)
    if name == "tiny":
        return _scaled(4, 64, r1_gamma=0.5, snap_kimg=2.0, log_kimg=0.1, mesh_resolution=64, kimg=200.0,
                       gpc_reg_fade_kimg=20.0, density_reg_points=256, metric_images=128)
    if name == "demo":
        # The shipped model: a reconstruction warm start on a subset of the synthetic set (512
        # items, each seen ~12 times; ST-LPIPS at 64² for speed), then the recipe.
        return _scaled(4, 128, r1_gamma=0.5, snap_kimg=1.0, log_kimg=0.2, mesh_resolution=64, kimg=100.0,
                       gpc_reg_fade_kimg=20.0, density_reg_points=256, metric_images=128, warmup_kimg=6.0,
                       warmup_items=512, warmup_perceptual_res=64)
    raise ConfigError(f"unknown preset '{name}' (available: {', '.join(PRESET_NAMES)})")


@dataclass(frozen=True)
class RunConfig(_Config):
    preset: str = "ffhq512"
    """Preset the configuration started from."""
    training: TrainingConfig = field(default_factory=TrainingConfig)
    """How the networks are trained."""
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    """The generator's sizes."""
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    """The discriminator's sizes (mesh_channels follows training.mesh_condition)."""

    def _check(self):
        self._require(self.preset in PRESET_NAMES, "preset", f"must be one of {', '.join(PRESET_NAMES)}")
        want = self.training.mesh_channels
        if self.discriminator.mesh_channels != want:
            raise ConfigError(f"RunConfig: D.mesh_channels={self.discriminator.mesh_channels} but "
                              f"mesh_condition={self.training.mesh_condition!r} needs {want}")
        if self.discriminator.img_resolution != self.generator.img_resolution:
            raise ConfigError(f"RunConfig: D.img_resolution={self.discriminator.img_resolution} differs from the "
                              f"generator's output resolution {self.generator.img_resolution}")

    def comparable(self) -> Dict[str, Any]:
        """The parts a resumed run must share with its snapshot (the run length may change)."""
        d = self.to_dict()
        for key in ("kimg", "snap_kimg", "log_kimg", "metric_images", "nan_policy", "max_skips", "grid_size"):
            d["training"].pop(key, None)
        return d


def resolve_run_config(preset: str, overrides: Iterable[str] = (), batch: Optional[int] = None,
                       kimg: Optional[float] = None, snap_kimg: Optional[float] = None) -> RunConfig:
    """Preset defaults + `--set` overrides (+ the dedicated --batch/--kimg/--snap-kimg) -> RunConfig.

    Raises ConfigError (one line naming the key) for unknown keys or bad values.
    """
    if preset not in PRESET_NAMES:
        raise ConfigError(f"unknown preset '{preset}' (available: {', '.join(PRESET_NAMES)})")
    g, d, t = get_preset(preset), get_discriminator_preset(preset), training_preset(preset)
    g_items, d_items, t_items = [], [], []
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key.startswith("G."):
            g_items.append(item[item.index("G.") + 2:])
        elif key.startswith("D."):
            d_items.append(item[item.index("D.") + 2:])
        else:
            t_items.append(item)
    t = apply_overrides(t, t_items)
    extra = {k: v for k, v in (("batch", batch), ("kimg", kimg), ("snap_kimg", snap_kimg)) if v is not None}
    if extra:
        t = t.replace(**extra)
    if batch is not None and not any(i.partition("=")[0].strip() in ("ema_kimg", "blur_fade_kimg") for i in t_items):
        t = t.replace(ema_kimg=batch * 10 / 32, blur_fade_kimg=batch * 200 / 32)
    g = apply_overrides(g, g_items)
    d = apply_overrides(d, d_items)
    d = d.replace(mesh_channels=t.mesh_channels, img_resolution=d.img_resolution)
    return RunConfig(preset=preset, training=t, generator=g, discriminator=d)
