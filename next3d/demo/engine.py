"""Rendering behind the demo page: one generator, a plane cache, PNG and PLY export.

What each control change recomputes (design §1; `Next3DGenerator.synthesize_planes`):

    seed, truncation    mapping -> ws; texture = texture_backbone(ws_tex); static = backbone(ws_eg3d)
    FLAME (expression,  mesh; dynamic = texture_planes(mesh, texture); mouth; blending;
      jaw, neck, gaze)    planes = dynamic * alpha + static * (1 - alpha)
    camera (yaw, pitch) volume rendering + super-resolution only

`DemoEngine` keeps the identity part (ws, texture, static planes) in an LRU keyed by
(seed, truncation) and the blended planes in an LRU keyed by (identity, face), so a
camera move reuses the planes and an expression move reuses the identity. The blended
planes equal `G.synthesize_planes(ws, mesh)` exactly (a test pins this).

Conventions as `next3d.generate`: z of seed s = RandomState(s).randn(z_dim); mapping
conditioned on the frontal camera; truncation cutoff 14 (the eg3d ws); noise 'const';
deterministic ray samples, so the same controls give the same pixels.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Hashable, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

from next3d.demo.controls import DemoControls, DemoError
from next3d.networks.generator import IdentityPlanes
from torch_utils.misc import assert_shape

TRUNCATION_CUTOFF = 14
NOISE_MODE = "const"


class _LRU:
    """A small least-recently-used map."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"cache capacity: expected at least 1, got {capacity}")
        self.capacity = int(capacity)
        self._items: "OrderedDict[Hashable, object]" = OrderedDict()

    def get(self, key: Hashable):
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, value: object) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items


# What depends only on (seed, truncation), batch 1, on the generator's device:
# ws (1, num_ws, w_dim), texture (1, C, T, T), static (1, 3, C, P, P).
Identity = IdentityPlanes


@dataclass(frozen=True)
class Frame:
    """One rendered view for the page."""

    controls: DemoControls
    image: np.ndarray  # (H, W, 3) uint8 RGB.
    depth: np.ndarray  # (H, W) uint8, depth resized to the image: near (ray_start) = 255, far (ray_end) = 0.
    depth_raw: torch.Tensor  # (1, R, R) float32 depth along the ray, world units (CPU).
    seconds: float  # Wall time of this render.
    reused: str  # "planes" (camera-only change), "identity" (face change), or "nothing".


class DemoEngine:
    """A generator in eval mode with the demo's caches. Thread-safe (one render at a time)."""

    def __init__(self, G: torch.nn.Module, network_name: str = "", trained: bool = True,
                 identity_cache: int = 8, plane_cache: int = 16):
        self.G = G.eval()
        self.network_name = network_name
        self.trained = bool(trained)
        self.device = next(G.parameters()).device
        self._identities = _LRU(identity_cache)
        self._planes = _LRU(plane_cache)
        self._lock = threading.Lock()
        from next3d.generate import frontal_label

        self._c_cond = frontal_label(G, self.device)

    # ------------------------------------------------------------------ facts

    @property
    def lock(self) -> threading.Lock:
        """Held while the generator runs; other users of `G` (e.g. the Video tab) take it too."""
        return self._lock

    @property
    def num_expression(self) -> int:
        return int(self.G.flame.num_expression)

    @property
    def image_size(self) -> Tuple[int, int]:
        return (int(self.G.img_resolution), int(self.G.img_resolution))

    def describe(self) -> str:
        cfg = self.G.config
        return (f"{self.network_name or 'generator'}: {cfg.img_resolution}² output, neural rendering "
                f"{self.G.neural_rendering_resolution}², head model {cfg.head_model} "
                f"({self.G.flame.num_shape} shape / {self.num_expression} expression components), on {self.device}")

    # ------------------------------------------------------------------ stages

    def identity(self, controls: DemoControls) -> Tuple[Identity, bool]:
        """The identity part for (seed, truncation) and whether it came from the cache."""
        from next3d.generate import seeds_to_z

        key = controls.identity_key()
        hit = self._identities.get(key)
        if hit is not None:
            return hit, True
        G = self.G
        z = seeds_to_z([controls.seed], G.z_dim).to(self.device)
        ws = G.mapping(z, self._c_cond, truncation_psi=controls.truncation, truncation_cutoff=TRUNCATION_CUTOFF)
        ident = G.identity_planes(ws, noise_mode=NOISE_MODE)
        self._identities.put(key, ident)
        return ident, False

    def head_mesh(self, controls: DemoControls) -> Dict[str, torch.Tensor]:
        """{'vertices' (1, V, 3), 'landmarks' (1, 68, 3)} in FLAME space for the controls' face."""
        params = {k: v.to(self.device) for k, v in controls.flame_params(self.num_expression).items()}
        vertices, landmarks = self.G.head_mesh(params)
        return {"vertices": vertices, "landmarks": landmarks}

    def blend_planes(self, ident: Identity, mesh: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Blended tri-planes (1, 3, C, P, P) from a cached identity and a mesh; the same
        composition as `Next3DGenerator.synthesize_planes` without the identity networks
        (`Next3DGenerator.mesh_planes`)."""
        G = self.G
        planes = G.mesh_planes(ident, mesh, noise_mode=NOISE_MODE)
        assert_shape(planes, [1, 3, G.config.plane_channels, None, None], "planes")
        return planes

    def planes(self, controls: DemoControls) -> Tuple[Identity, Dict[str, torch.Tensor], torch.Tensor, str]:
        """(identity, mesh, blended planes, what was reused) for the controls."""
        key = (controls.identity_key(), controls.face_key())
        mesh = self.head_mesh(controls)
        hit = self._planes.get(key)
        if hit is not None:
            ident, _ = self.identity(controls)
            return ident, mesh, hit, "planes"
        ident, cached = self.identity(controls)
        planes = self.blend_planes(ident, mesh)
        self._planes.put(key, planes)
        return ident, mesh, planes, "identity" if cached else "nothing"

    # ------------------------------------------------------------------ rendering

    @torch.no_grad()
    def render(self, controls: DemoControls) -> Frame:
        """Render one view for the controls -> `Frame` (image, depth, timing)."""
        from next3d.generate import deterministic_rays, view_labels
        from next3d.image_io import depth_to_image, to_uint8

        with self._lock:
            started = time.perf_counter()
            ident, mesh, planes, reused = self.planes(controls)
            yaw, pitch = controls.camera_radians()
            c = view_labels(self.G, [yaw], pitch, self.device)
            with deterministic_rays(self.G):
                out = self.G.synthesis(ident.ws, c, mesh, planes=planes, noise_mode=NOISE_MODE)
            image = to_uint8(out["image"][0])
            r = self.G.config.render
            depth_raw = out["image_depth"][0].float().cpu()
            depth_small = to_uint8(depth_to_image(depth_raw, near=r.ray_start, far=r.ray_end))[..., 0]
            height, width = image.shape[:2]
            depth = np.asarray(Image.fromarray(depth_small).resize((width, height), Image.NEAREST))
            return Frame(controls=controls, image=image, depth=depth, depth_raw=depth_raw,
                         seconds=time.perf_counter() - started, reused=reused)

    # ------------------------------------------------------------------ export

    def save_png(self, frame: Frame, folder: Union[str, Path]) -> Tuple[Path, Path]:
        """Write `seedNNNN_<hash>.png` and `..._depth.png` of a frame into `folder` (atomic writes)."""
        from next3d.image_io import _atomic_save

        stem = _stem(frame.controls)
        image_path = Path(folder) / f"{stem}.png"
        depth_path = Path(folder) / f"{stem}_depth.png"
        _atomic_save(Image.fromarray(frame.image), image_path)
        _atomic_save(Image.fromarray(frame.depth), depth_path)
        return image_path, depth_path

    @torch.no_grad()
    def surface_level(self, controls: DemoControls) -> float:
        """The raw σ where the controls' view's rays end at their rendered depth (the median;
        `next3d.generate.surface_level`): the iso-level whose mesh passes through the image."""
        from next3d.generate import surface_level, view_labels

        frame = self.render(controls)
        with self._lock:
            ident, mesh, planes, _ = self.planes(controls)
            yaw, pitch = controls.camera_radians()
            c = view_labels(self.G, [yaw], pitch, self.device)
            level = surface_level(self.G, ident.ws, planes, mesh, c, frame.depth_raw[None])
        if level is None:
            raise DemoError("mesh: no rendered depth of this view lies inside the renderer's box; give a level")
        return level

    @torch.no_grad()
    def save_ply(self, controls: DemoControls, folder: Union[str, Path], resolution: int = 64,
                 level: Optional[float] = None) -> Tuple[Path, int, int, Tuple[float, float]]:
        """Mesh {σ = level} of the controls' head on a resolution³ lattice over the renderer's
        box -> (path, vertex count, face count, σ range); level None = `surface_level(controls)`.
        An empty mesh is a DemoError naming the σ range (the level never crossed)."""
        import os
        import tempfile

        from next3d.generate import closed_grid, density_grid
        from next3d.render.density_grid import marching_cubes_to_ply

        if not 8 <= int(resolution) <= 256:
            raise DemoError(f"mesh resolution: {resolution} is outside 8..256")
        if level is None:
            level = self.surface_level(controls)
        if not np.isfinite(level):
            raise DemoError(f"mesh level: {level!r} is not a number")
        with self._lock:
            ident, mesh, planes, _ = self.planes(controls)
            grid = density_grid(self.G, ident.ws, planes, mesh, int(resolution))
        lo, hi = float(grid.min()), float(grid.max())
        if not lo < level < hi:
            raise DemoError(f"mesh: density spans [{lo:.3g}, {hi:.3g}] and never crosses the level {level:g}; "
                            f"choose a level inside that range")
        path = Path(folder) / f"{_stem(controls)}.ply"
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ply", dir=folder)
        os.close(fd)
        try:
            n_v, n_f = marching_cubes_to_ply(closed_grid(grid, level), tmp, level=level,
                                             box_size=self.G.config.render.box_warp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path, n_v, n_f, (lo, hi)


def _stem(controls: DemoControls) -> str:
    """File stem naming the seed and a short hash of every control, e.g. 'seed0007-3fa2c1'."""
    import hashlib
    import json

    digest = hashlib.sha1(json.dumps(controls.to_dict(), sort_keys=True).encode()).hexdigest()[:6]
    return f"seed{controls.seed:04d}-{digest}"


def load_engine(network: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                flame_dir: Optional[str] = None) -> DemoEngine:
    """Build the demo's engine: `builtin` / None (the shipped model), `random:PRESET`
    (untrained) or a checkpoint path (see `next3d.generate.load_generator`). Raises
    ValueError subclasses with one line."""
    from next3d.generate import RANDOM_PREFIX, load_generator
    from next3d.pretrained import BUILTIN

    network = BUILTIN if network is None else network
    G = load_generator(network, device=device, flame_dir=flame_dir)
    return DemoEngine(G, network_name=network, trained=not network.startswith(RANDOM_PREFIX))


__all__ = ["DemoEngine", "Frame", "Identity", "load_engine", "TRUNCATION_CUTOFF", "NOISE_MODE"]
