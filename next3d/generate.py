"""Seeds -> images, depth maps and meshes from a Next3D generator (the library behind
`next3d generate` and `gen_scripts/gen_samples.py`).

Conventions (as in EG3D's `gen_samples.py`, so a seed means the same thing everywhere):

* z of seed s: `np.random.RandomState(s).randn(z_dim)` (float32), one seed per identity.
* The mapping is conditioned on the frontal camera of the default orbit
  (`orbit_label(0, 0)` with the configuration's `avg_camera_radius`/`avg_camera_pivot`):
  EG3D conditions generation on a fixed frontal pose; only the rendering camera moves.
* Views: `views` yaws spread evenly over [-yaw_range, +yaw_range] radians at pitch
  `pitch` (one view = frontal); yaw > 0 shows the subject's left cheek.
* One FLAME input (shape, expression, pose) drives every seed.
* Rendering uses deterministic depth samples (evenly spaced coarse samples, fixed importance quantiles;
  see `deterministic_rays`), so a seed gives the same pixels whatever the batch and run.

Per seed, `generate` yields a `SeedOutput`: images (V, 3, H, W) in [-1, 1], depth maps
(V, 1, R, R) in world units along the ray and, with shapes, raw σ on an N^3 lattice
covering the renderer's box (side `box_warp`, centred at the world origin;
`grid[i, j, k]` at x_i, y_j, z_k as in `next3d.render.density_grid`) and its
`surface_level` (the median σ where the views' rays end at their rendered depth).
`save_seed_output` writes `seedNNNN.png` (views side by side), `seedNNNN_depth.png` and
`seedNNNN.ply` (iso-surface of σ at `shape_level`, by default that surface level).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from next3d.errors import Next3DError
from torch_utils.misc import assert_shape

RANDOM_PREFIX = "random:"
MAX_SEED = 2 ** 32 - 1  # np.random.RandomState accepts seeds in [0, 2^32).
NOISE_MODES = ("const", "random", "none")
MAX_SEEDS = 1_000_000  # seeds of one run (each range is also capped at 1000000)
MAX_SHAPE_RES = 1024  # lattice points per axis of a density grid
SHAPE_BYTES_PER_POINT = 32  # grid + closed copy (float32), float64 values, masks of the mesher
RENDER_BYTES_PER_SAMPLE = 4 * 2  # float32 working set per (ray sample, feature channel): input and output of a layer


class GenerateError(Next3DError, ValueError):
    """A user-facing problem with the generation inputs (seeds, network, options)."""


# --------------------------------------------------------------------------- parsing


def parse_seeds(spec: str) -> List[int]:
    """'0-3' -> [0, 1, 2, 3]; '1,5,9' -> [1, 5, 9]; mixed '0-2,7' -> [0, 1, 2, 7].

    Ranges are inclusive and ascending; repeated seeds are kept once (first occurrence).
    Raises GenerateError naming the bad part.
    """
    if spec is None or not str(spec).strip():
        raise GenerateError("seeds: empty; expected e.g. 0-3 or 1,5,9")
    seeds: List[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise GenerateError(f"seeds: cannot read '{part}' in '{spec}'; expected non-negative integers "
                                f"and ranges like 0-3 or 1,5,9")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise GenerateError(f"seeds: range '{part}' runs backwards; write it as {hi}-{lo}")
        if hi > MAX_SEED:
            raise GenerateError(f"seeds: {hi} is too large (seeds lie in 0..{MAX_SEED})")
        if hi - lo >= 1_000_000:
            raise GenerateError(f"seeds: range '{part}' has {hi - lo + 1} seeds; at most 1000000 per range")
        seeds.extend(range(lo, hi + 1))
        if len(seeds) > MAX_SEEDS:
            raise GenerateError(f"seeds: '{spec}' names more than {MAX_SEEDS} seeds; split the run")
    return list(dict.fromkeys(seeds))


def seeds_to_z(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """Latents (S, z_dim) float32: row i = np.random.RandomState(seeds[i]).randn(z_dim)."""
    if not seeds:
        return torch.zeros(0, z_dim)
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()


def view_yaws(views: int, yaw_range: float) -> List[float]:
    """`views` yaws (radians) evenly from -yaw_range to +yaw_range; one view -> [0.0]."""
    if views < 1:
        raise GenerateError(f"views: expected at least 1, got {views}")
    if views == 1:
        return [0.0]
    return [float(y) for y in np.linspace(-yaw_range, yaw_range, views)]


# --------------------------------------------------------------------------- networks


def load_generator(network: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                   flame_dir: Optional[str] = None, init_seed: int = 0) -> torch.nn.Module:
    """Build a generator in eval mode on `device`.

    network: `builtin` or None (the trained model shipped in `next3d/pretrained/`),
    `random:PRESET` (fresh weights drawn from `init_seed`, deterministic; PRESET one of
    `next3d.presets.PRESET_NAMES`) or the path of a next3d checkpoint (zip or folder;
    `G_ema` when present, else `G`). flame_dir: the head model to use (None = the
    checkpoint's embedded head, else the configuration's: $NEXT3D_FLAME_DIR or the built-in
    head). Raises GenerateError / CheckpointError / FlameFilesError / BuiltinNetworkError
    (all ValueError) with one line.
    """
    from next3d.checkpoint import build_generator, load_checkpoint
    from next3d.presets import PRESET_NAMES, get_preset
    from next3d.pretrained import BUILTIN, load_builtin_checkpoint

    network = BUILTIN if network is None else str(network)
    if network.startswith(RANDOM_PREFIX):
        name = network[len(RANDOM_PREFIX):]
        if name not in PRESET_NAMES:
            raise GenerateError(f"network '{network}': unknown preset '{name}' "
                                f"(valid: {', '.join(RANDOM_PREFIX + p for p in PRESET_NAMES)})")
        config = get_preset(name)
        if flame_dir is not None:
            config = config.replace(flame_dir=str(flame_dir), head_model="flame")
        G = build_generator(config, seed=init_seed, device=device)
        G.network_info = network_info(network)
        return G

    if network == BUILTIN:
        checkpoint = load_builtin_checkpoint()
    else:
        path = Path(network)
        if not path.exists():
            raise GenerateError(f"network {path}: no such file or folder (expected a next3d checkpoint, "
                                f"'{BUILTIN}' or random:PRESET)")
        if path.suffix.lower() == ".pkl":
            raise GenerateError(f"network {path}: a published pickle cannot be loaded directly; convert it first "
                                f"with `next3d convert {path} OUT.n3d` and pass OUT.n3d")
        checkpoint = load_checkpoint(path, groups=None)
    if flame_dir is not None:
        from next3d.checkpoint import HEAD_GROUP

        # An explicit head model replaces the embedded one (the topology check still applies).
        checkpoint = dataclasses.replace(
            checkpoint, config=checkpoint.config.replace(flame_dir=str(flame_dir)),
            state_dicts={k: v for k, v in checkpoint.state_dicts.items() if k != HEAD_GROUP},
            meta={**checkpoint.meta, "head": None})
    G = build_generator(checkpoint, seed=init_seed, device=device)
    G.network_info = network_info(network, checkpoint)
    return G


def network_info(network: str, checkpoint=None) -> Dict[str, object]:
    """What a --network value loaded: {"network", "trained", "preset", "kimg"} (None when unknown)."""
    from next3d.pretrained import BUILTIN

    if network.startswith(RANDOM_PREFIX):
        return {"network": network, "trained": False, "preset": network[len(RANDOM_PREFIX):], "kimg": None}
    extra = (checkpoint.meta.get("extra") or {}) if checkpoint is not None else {}
    run = extra.get("run_config") if isinstance(extra.get("run_config"), dict) else {}
    state = extra.get("state") if isinstance(extra.get("state"), dict) else {}
    preset = extra.get("preset") or run.get("preset")
    kimg = extra.get("kimg")
    if kimg is None and isinstance(state.get("cur_nimg"), int):
        kimg = state["cur_nimg"] / 1000.0
    return {"network": BUILTIN if network == BUILTIN else str(network), "trained": True,
            "preset": preset if isinstance(preset, str) else None,
            "kimg": float(kimg) if isinstance(kimg, (int, float)) and not isinstance(kimg, bool) else None}


def describe_network(G: torch.nn.Module) -> str:
    """One phrase naming the loaded network, e.g. 'builtin (demo, 120.0 kimg)' or 'random:tiny (untrained)'."""
    info = getattr(G, "network_info", None) or {"network": "a generator", "trained": True, "preset": None,
                                                "kimg": None}
    parts = [] if info["trained"] else ["untrained"]
    if info["trained"] and info["preset"]:
        parts.append(str(info["preset"]))
    if info["kimg"] is not None:
        parts.append(f"{info['kimg']:.1f} kimg")
    return f"{info['network']} ({', '.join(parts)})" if parts else str(info["network"])


def frontal_label(G: torch.nn.Module, device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """The conditioning camera label (1, 25): frontal view of the configuration's orbit."""
    from next3d.render.cameras import orbit_label

    r = G.config.render
    return orbit_label(0.0, 0.0, radius=r.avg_camera_radius, pivot=r.avg_camera_pivot, device=device)


def view_labels(G: torch.nn.Module, yaws: Sequence[float], pitch: float = 0.0,
                device: Union[str, torch.device] = "cpu") -> torch.Tensor:
    """Rendering camera labels (V, 25) on the configuration's orbit at the given yaws."""
    from next3d.render.cameras import orbit_label

    r = G.config.render
    return orbit_label(torch.tensor(list(yaws), dtype=torch.float32), float(pitch), radius=r.avg_camera_radius,
                       pivot=r.avg_camera_pivot, device=device)


@contextlib.contextmanager
def deterministic_rays(G: torch.nn.Module):
    """Within the block, `G.renderer` samples evenly spaced coarse depths and fixed importance
    quantiles (no random jitter), so renders do not depend on batch composition or RNG."""
    renderer = G.renderer
    saved = renderer.options
    renderer.options = dataclasses.replace(saved, perturb=False, det=True)
    try:
        yield
    finally:
        renderer.options = saved


# --------------------------------------------------------------------------- generation


MAX_ABS_PSI = 2.0  # |truncation psi| above this is an extrapolation far outside the trained latents


def estimate_memory(config, options: "GenerateOptions") -> int:
    """Bytes of the largest working set of one run (rough upper estimate): a rendering batch
    (rays x samples x decoder channels), the tri-planes of a seed group, and with shapes the
    density lattice and the mesher's arrays. `config` is the generator's GeneratorConfig."""
    r = config.render
    res = options.neural_resolution or r.neural_resolution
    samples = r.samples_per_ray + r.importance_samples
    channels = 3 * config.plane_channels + config.decoder.hidden + config.decoder.features + 1
    render = options.batch * res * res * samples * channels * RENDER_BYTES_PER_SAMPLE
    planes = options.batch * 3 * config.plane_channels * config.static.resolution ** 2 * 4 * 4
    image = options.batch * options.views * 3 * config.img_resolution ** 2 * 4 * 2
    shape = SHAPE_BYTES_PER_POINT * options.shape_res ** 3 if options.shapes else 0
    return render + planes + image + shape


def check_memory(config, options: "GenerateOptions") -> int:
    """Refuse (GenerateError) a run whose `estimate_memory` exceeds the memory budget
    (`next3d.limits.memory_budget`); returns the estimate."""
    from next3d.limits import LimitError, check_bytes

    need = estimate_memory(config, options)
    try:
        return check_bytes(f"generate (neural resolution {options.neural_resolution or config.render.neural_resolution}, "
                           f"batch {options.batch}{f', shape-res {options.shape_res}' if options.shapes else ''})",
                           need, hint="lower --batch, --neural-res or --shape-res")
    except LimitError as exc:
        raise GenerateError(str(exc)) from None


@dataclass(frozen=True)
class GenerateOptions:
    """Settings of one generation run (defaults: EG3D/Next3D sampling)."""

    truncation_psi: float = 0.7  # Pull ws towards w_avg: 1 = none, 0 = the average face.
    truncation_cutoff: Optional[int] = 14  # Truncate only the first N of the ws (14 = the eg3d ws; None = all).
    views: int = 3  # Views per seed, yaws spread over [-yaw_range, yaw_range].
    yaw_range: float = 0.6  # Largest |yaw| in radians.
    pitch: float = 0.0  # Camera pitch of every view, radians (+ = from above).
    batch: int = 4  # Largest batch of any network call.
    noise_mode: str = "const"  # Per-pixel noise of the StyleGAN2 layers: const, random or none.
    neural_resolution: Optional[int] = None  # Volume-rendering resolution R (None = the generator's).
    shapes: bool = False  # Also evaluate σ on a lattice for mesh export.
    shape_res: int = 128  # Lattice points per axis.
    shape_chunk: int = 1 << 18  # Points per σ query.

    def __post_init__(self):
        if self.batch < 1:
            raise GenerateError(f"batch: expected at least 1, got {self.batch}")
        if self.views < 1:
            raise GenerateError(f"views: expected at least 1, got {self.views}")
        if self.noise_mode not in NOISE_MODES:
            raise GenerateError(f"noise_mode: expected one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.shape_res < 2:
            raise GenerateError(f"shape_res: expected at least 2 lattice points, got {self.shape_res}")
        if self.neural_resolution is not None and self.neural_resolution < 4:
            raise GenerateError(f"neural_resolution: expected at least 4, got {self.neural_resolution}")
        from next3d.config import MAX_NEURAL_RESOLUTION
        from next3d.limits import LimitError, check_float, check_int

        try:
            check_float("truncation_psi", self.truncation_psi, -MAX_ABS_PSI, MAX_ABS_PSI,
                        "1 = no truncation, 0 = the average face")
            check_float("yaw_range", self.yaw_range, 0.0, 3.1416)
            check_float("pitch", self.pitch, -1.5, 1.5)
            check_int("views", self.views, 1, 1024)
            check_int("batch", self.batch, 1, 4096)
            check_int("shape_res", self.shape_res, 2, MAX_SHAPE_RES)
            check_int("shape_chunk", self.shape_chunk, 1, 1 << 26)
            if self.truncation_cutoff is not None:
                check_int("truncation_cutoff", self.truncation_cutoff, 1, 1 << 16)
            if self.neural_resolution is not None:
                check_int("neural_resolution", self.neural_resolution, 4, MAX_NEURAL_RESOLUTION,
                          "published: 64 or 128")
                if self.neural_resolution & (self.neural_resolution - 1):
                    raise GenerateError(f"neural_resolution: {self.neural_resolution} is not a power of two "
                                        f"(e.g. 64, 128)")
        except LimitError as exc:
            raise GenerateError(str(exc)) from None


@dataclass(frozen=True)
class SeedOutput:
    """What `generate` yields per seed (tensors on the CPU, float32)."""

    seed: int
    images: torch.Tensor  # (V, 3, H, W) in ~[-1, 1].
    depths: torch.Tensor  # (V, 1, R, R) depth along the ray, world units.
    yaws: Tuple[float, ...]  # Camera yaw of each view, radians.
    depth_range: Tuple[float, float]  # The renderer's (ray_start, ray_end).
    box_size: float  # Side of the world cube the σ lattice covers (box_warp).
    sigma_grid: Optional[np.ndarray] = None  # (N, N, N) raw σ, or None without shapes.
    surface_level: Optional[float] = None  # Median raw σ at the rendered depths (`surface_level`), with shapes.


def _head_mesh(G: torch.nn.Module, flame: Optional[Mapping[str, torch.Tensor]], device) -> Dict[str, torch.Tensor]:
    """FLAME parameters (batch 1) -> {'vertices' (1, V, 3), 'landmarks' (1, 68, 3)} on `device`."""
    for key, value in (flame or {}).items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise GenerateError(f"flame: '{key}' holds NaN or infinite values; expected finite numbers")
    params = {k: v.to(device) for k, v in (flame or {}).items()}
    vertices, landmarks = G.head_mesh(params if params else {"jaw": torch.zeros(1, 3, device=device)})
    if vertices.shape[0] != 1:
        raise GenerateError(f"flame: expected parameters for one head (batch 1), got batch {vertices.shape[0]}")
    return {"vertices": vertices, "landmarks": landmarks}


def _batched_mesh(mesh: Dict[str, torch.Tensor], count: int) -> Dict[str, torch.Tensor]:
    return {k: v.expand(count, *v.shape[1:]) for k, v in mesh.items()}


@contextlib.contextmanager
def _rng_scope(seed: int, device: torch.device):
    """Fork and seed torch's RNG (for noise_mode='random') so runs repeat; the caller's RNG is untouched."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def density_grid(G: torch.nn.Module, ws: torch.Tensor, planes: torch.Tensor, mesh: Dict[str, torch.Tensor],
                 resolution: int, chunk: int = 1 << 18) -> np.ndarray:
    """Raw σ (N, N, N) of one generated head on the lattice covering the renderer's box.

    ws (1, num_ws, w_dim), planes (1, 3, C, P, P) from the same synthesis.
    """
    from next3d.render.density_grid import evaluate_density_grid

    assert_shape(ws, [1, G.num_ws, G.w_dim], "ws")
    assert_shape(planes, [1, 3, None, None, None], "planes")

    def query(points: torch.Tensor) -> torch.Tensor:
        return G.sample_mixed(points, ws, mesh, planes=planes)["sigma"]

    return evaluate_density_grid(query, resolution, box_size=G.config.render.box_warp, centre=(0.0, 0.0, 0.0),
                                 chunk=chunk, device=planes.device)


@torch.no_grad()
def surface_level(G: torch.nn.Module, ws: torch.Tensor, planes: torch.Tensor, mesh: Dict[str, torch.Tensor],
                  c: torch.Tensor, depth: torch.Tensor) -> Optional[float]:
    """The raw σ that the renders treat as the surface: the median σ at the points where the
    rays of views `c` (V, 25) end at their rendered depth `depth` (V, 1, R, R), over the points
    inside the renderer's box. An iso-surface at this level passes through what the images
    show, whatever the network's density scale (a trained EG3D crosses 10 there; a short
    training run may never reach 10). None when no ray ends inside the box.

    ws (1, num_ws, w_dim), planes (1, 3, C, P, P) from the same synthesis.
    """
    from next3d.render.ray_sampler import make_rays

    assert_shape(ws, [1, G.num_ws, G.w_dim], "ws")
    assert_shape(c, [None, 25], "camera labels")
    assert_shape(depth, [c.shape[0], 1, None, None], "depth")
    origins, dirs = make_rays(c.to(planes.device), depth.shape[-1])
    # Ray r of make_rays is pixel (r // R, r % R), row-major like the depth image.
    points = origins + dirs * depth.to(planes.device).flatten(1)[..., None]
    points = points.reshape(1, -1, 3)
    inside = (points.abs() < 0.5 * G.config.render.box_warp).all(-1)[0]
    if not bool(inside.any()):
        return None
    sigma = G.sample_mixed(points[:, inside], ws, mesh, planes=planes)["sigma"]
    return float(sigma.float().median())


@torch.no_grad()
def generate(G: torch.nn.Module, seeds: Sequence[int], flame: Optional[Mapping[str, torch.Tensor]] = None,
             options: GenerateOptions = GenerateOptions(),
             on_progress: Optional[Callable[[int], None]] = None) -> Iterator[SeedOutput]:
    """Generate every seed; yields one `SeedOutput` per seed, in order.

    G: a Next3D generator (its device is used). flame: FLAME parameters for one head
    (keyword arguments of `FLAME.forward`, batch 1; None = neutral). on_progress(n) is
    called after each rendered batch with the number of images (views) it produced.

    Seeds are processed in groups of `options.batch`: mapping and planes once per seed,
    then the group's (seed, view) renders in batches of `options.batch`.
    """
    seeds = [int(s) for s in seeds]
    check_memory(G.config, options)
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    yaws = view_yaws(options.views, options.yaw_range)
    c_cond = frontal_label(G, device)
    c_views = view_labels(G, yaws, options.pitch, device)
    mesh = _head_mesh(G, flame, device)
    r = G.config.render
    step = options.batch
    try:
        with deterministic_rays(G):
            for start in range(0, len(seeds), step):
                group = seeds[start:start + step]
                with _rng_scope(group[0], device):
                    yield from _generate_group(G, group, mesh, c_cond, c_views, yaws, options, on_progress,
                                               (r.ray_start, r.ray_end), r.box_warp)
    finally:
        G.train(was_training)


def _generate_group(G, group, mesh, c_cond, c_views, yaws, options, on_progress, depth_range, box_size):
    n, views, step = len(group), len(yaws), options.batch
    device = c_cond.device
    z = seeds_to_z(group, G.z_dim).to(device)
    ws = G.mapping(z, c_cond.expand(n, -1), truncation_psi=options.truncation_psi,
                   truncation_cutoff=options.truncation_cutoff)
    kwargs = dict(noise_mode=options.noise_mode)
    planes = G.synthesize_planes(ws, _batched_mesh(mesh, n), **kwargs)

    # (seed, view) pairs, seed-major; every view reuses its seed's planes.
    pairs = [(i, v) for i in range(n) for v in range(views)]
    images: List[torch.Tensor] = []
    depths: List[torch.Tensor] = []
    for lo in range(0, len(pairs), step):
        chunk = pairs[lo:lo + step]
        si = torch.tensor([p[0] for p in chunk], device=device)
        vi = torch.tensor([p[1] for p in chunk], device=device)
        out = G.synthesis(ws[si], c_views[vi], _batched_mesh(mesh, len(chunk)), planes=planes[si],
                          neural_rendering_resolution=options.neural_resolution, **kwargs)
        images.append(out["image"].float().cpu())
        depths.append(out["image_depth"].float().cpu())
        if on_progress is not None:
            on_progress(len(chunk))
    image_all = torch.cat(images).reshape(n, views, *images[0].shape[1:])
    depth_all = torch.cat(depths).reshape(n, views, *depths[0].shape[1:])

    for i, seed in enumerate(group):
        grid = level = None
        if options.shapes:
            grid = density_grid(G, ws[i:i + 1], planes[i:i + 1], mesh, options.shape_res, options.shape_chunk)
            level = surface_level(G, ws[i:i + 1], planes[i:i + 1], mesh, c_views, depth_all[i])
        yield SeedOutput(seed=seed, images=image_all[i], depths=depth_all[i], yaws=tuple(yaws),
                         depth_range=depth_range, box_size=box_size, sigma_grid=grid, surface_level=level)


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class SavedSeed:
    """Files written for one seed, and mesh facts (None without a mesh)."""

    seed: int
    paths: Tuple[Path, ...]
    mesh_vertices: Optional[int] = None
    mesh_faces: Optional[int] = None
    sigma_range: Optional[Tuple[float, float]] = None
    shape_level: Optional[float] = None  # The iso-level of the mesh.


def seed_stem(seed: int) -> str:
    """File-name stem of a seed: 'seed0007'."""
    return f"seed{int(seed):04d}"


def closed_grid(grid: np.ndarray, level: float) -> np.ndarray:
    """A copy of σ (N, N, N) whose outermost lattice layer lies below `level`, so that the
    iso-surface closes at the box faces instead of ending in an open rim."""
    out = np.array(grid, dtype=np.float32, copy=True)
    floor = np.float32(min(float(level), float(out.min())) - 1.0)
    out[[0, -1], :, :] = floor
    out[:, [0, -1], :] = floor
    out[:, :, [0, -1]] = floor
    return out


def seed_output_paths(seed: int, out_dir: Union[str, Path], shapes: bool = False) -> Tuple[Path, ...]:
    """The files `save_seed_output` writes for `seed`: seedNNNN.png, seedNNNN_depth.png[, seedNNNN.ply]."""
    stem = seed_stem(seed)
    out_dir = Path(out_dir)
    names = [f"{stem}.png", f"{stem}_depth.png"] + ([f"{stem}.ply"] if shapes else [])
    return tuple(out_dir / n for n in names)


def check_outputs(seeds: Sequence[int], out_dir: Union[str, Path], shapes: bool = False, force: bool = False) -> None:
    """Before any work: refuse (GenerateError) when files of these seeds already exist in
    `out_dir` (unless `force`) or are not regular files (never replaced)."""
    from next3d.atomic_io import OutputPathError, check_output_path

    clashes = []
    for seed in seeds:
        for path in seed_output_paths(seed, out_dir, shapes):
            if not path.exists() and not path.is_symlink():
                continue
            try:
                check_output_path(path, force=force, what="output")
            except OutputPathError as exc:
                if force or not path.is_file():
                    raise GenerateError(str(exc)) from None
                clashes.append(path.name)
    if clashes:
        shown = ", ".join(clashes[:4]) + (f", ... ({len(clashes)} in all)" if len(clashes) > 4 else "")
        raise GenerateError(f"--out {out_dir}: earlier results would be overwritten ({shown}); pass --force to "
                            f"replace them, or choose another folder")


def save_seed_output(result: SeedOutput, out_dir: Union[str, Path], shape_level: Optional[float] = None) -> SavedSeed:
    """Write `seedNNNN.png`, `seedNNNN_depth.png` and (with a σ grid) `seedNNNN.ply` into `out_dir`.

    Depth maps are scaled over the renderer's depth range (near = white, far = black).
    The mesh is the iso-surface {σ = shape_level} (raw σ; EG3D uses 10 for trained
    networks) in world coordinates, closed at the box faces. shape_level None = the seed's
    `surface_level` (the σ at its rendered depths; 10 when no ray ends inside the box).
    """
    from next3d.image_io import depth_to_image, save_image, tile_images
    from next3d.render.density_grid import write_ply

    out_dir = Path(out_dir)
    stem = seed_stem(result.seed)
    near, far = result.depth_range
    image_path = out_dir / f"{stem}.png"
    depth_path = out_dir / f"{stem}_depth.png"
    save_image(tile_images(list(result.images)), image_path)
    save_image(tile_images([depth_to_image(d, near=near, far=far) for d in result.depths]), depth_path)
    paths = [image_path, depth_path]
    if result.sigma_grid is None:
        return SavedSeed(result.seed, tuple(paths))
    grid = result.sigma_grid
    vertices, faces, shape_level = seed_mesh(result, shape_level)
    ply_path = out_dir / f"{stem}.ply"
    write_ply(ply_path, vertices, faces)
    paths.append(ply_path)
    return SavedSeed(result.seed, tuple(paths), len(vertices), len(faces), (float(grid.min()), float(grid.max())),
                     shape_level)


def seed_mesh(result: SeedOutput, shape_level: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray, float]:
    """The iso-surface {σ = shape_level} of a seed's σ grid in world coordinates, closed at the box
    faces -> vertices (V, 3), faces (F, 3), the level used (None = the seed's `surface_level`,
    10 when no ray ended inside the box)."""
    from next3d.render.density_grid import marching_tetrahedra

    if result.sigma_grid is None:
        raise GenerateError(f"seed {result.seed}: no density grid (generate with shapes=True)")
    if shape_level is None:
        shape_level = result.surface_level if result.surface_level is not None else 10.0
    grid = result.sigma_grid
    vertices, faces = marching_tetrahedra(closed_grid(grid, shape_level), shape_level,
                                          origin=[-0.5 * result.box_size] * 3,
                                          spacing=result.box_size / (grid.shape[0] - 1))
    return vertices, faces, float(shape_level)


__all__ = [
    "GenerateError", "GenerateOptions", "SeedOutput", "SavedSeed", "parse_seeds", "seeds_to_z", "view_yaws",
    "load_generator", "frontal_label", "view_labels", "deterministic_rays", "density_grid", "surface_level", "generate",
    "closed_grid", "save_seed_output", "seed_mesh", "seed_stem", "seed_output_paths", "check_outputs", "estimate_memory",
    "check_memory",
]
