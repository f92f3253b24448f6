"""Rendering video frames with the generator, in batches, computing each piece only once.

A video is described by a `FramePlan`: tables of latents and meshes, and per frame the
index of its latent, the index of its mesh and its camera:

    ws        (K, num_ws, w_dim)   one row per identity (or per interpolated latent)
    vertices  (M, V, 3), landmarks (M, 68, 3)   FLAME space, one row per distinct head pose/expression
    ws_index  (N,) int64, mesh_index (N,) int64, cameras (N, 25)

What each stage depends on (the generator's forward, `next3d.networks.generator`):

* identity only (ws): the UV neural texture `texture_backbone.synthesis(ws[:, 14:])` and
  the static tri-plane `backbone.synthesis(ws[:, :14])` -> cached per ws row
  (`Next3DGenerator.identity_planes`, an `IdentityPlanes`; the most recent
  `identity_cache` rows);
* identity and mesh: texture rasterisation into planes, the mouth module, neural
  blending and the alpha blend -> cached per (ws row, mesh row) pair for the most recent
  `plane_cache` pairs, so an orbit with a fixed expression synthesises its planes once;
* per frame: volume rendering under the frame's camera and super-resolution.

`compose_planes(G, ws, cache, vertices, landmarks)` (`Next3DGenerator.mesh_planes`) equals
`G.synthesize_planes(ws, mesh)` (a test pins it); `render_frames` yields frames in order, `FrameOutput(index, image
(3, H, W) in ~[-1, 1], depth (1, R, R) world units or None)`, on the CPU.
Rendering uses deterministic depth samples (`next3d.generate.deterministic_rays`) and,
by default, constant StyleGAN noise, so a frame does not depend on its batch.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import torch

from next3d.networks.generator import IdentityPlanes as IdentityCache
from torch_utils.misc import ShapeError, assert_shape


class RenderVideoError(ValueError):
    """A frame plan or render setting that does not fit the generator."""


@dataclass(frozen=True)
class RenderVideoOptions:
    """Settings of `render_frames`."""

    batch: int = 4  # Frames per renderer / super-resolution call.
    noise_mode: str = "const"  # StyleGAN per-pixel noise: const (repeatable), random or none.
    neural_resolution: Optional[int] = None  # Volume-rendering resolution R (None = the generator's).
    depth: bool = False  # Also return each frame's depth map.
    identity_cache: int = 8  # Identities (ws rows) whose texture and static planes are kept.
    plane_cache: int = 16  # (ws row, mesh row) pairs whose blended planes are kept.
    reuse: bool = True  # False recomputes everything per frame (for measuring what reuse saves).

    def __post_init__(self):
        if self.batch < 1:
            raise RenderVideoError(f"batch: expected at least 1, got {self.batch}")
        if self.noise_mode not in ("const", "random", "none"):
            raise RenderVideoError(f"noise_mode: expected const, random or none, got {self.noise_mode!r}")
        if self.identity_cache < 1 or self.plane_cache < 1:
            raise RenderVideoError("identity_cache and plane_cache must be at least 1")


@dataclass(frozen=True)
class FramePlan:
    """What to render (module docstring for the shapes). Tensors may live on any device."""

    ws: torch.Tensor
    vertices: torch.Tensor
    landmarks: torch.Tensor
    ws_index: torch.Tensor
    mesh_index: torch.Tensor
    cameras: torch.Tensor

    @property
    def num_frames(self) -> int:
        return int(self.cameras.shape[0])

    def validate(self, G: torch.nn.Module) -> None:
        """Shapes and index ranges against G; RenderVideoError with one line otherwise."""
        try:
            assert_shape(self.ws, [None, G.num_ws, G.w_dim], "ws")
            assert_shape(self.vertices, [None, G.flame.num_vertices, 3], "vertices")
            assert_shape(self.landmarks, [self.vertices.shape[0], 68, 3], "landmarks")
            assert_shape(self.cameras, [None, 25], "cameras")
            n = self.cameras.shape[0]
            assert_shape(self.ws_index, [n], "ws_index")
            assert_shape(self.mesh_index, [n], "mesh_index")
        except ShapeError as exc:
            raise RenderVideoError(f"frame plan: {exc}") from None
        if self.num_frames < 1:
            raise RenderVideoError("frame plan: no frames")
        for name, index, size in (("ws_index", self.ws_index, self.ws.shape[0]),
                                  ("mesh_index", self.mesh_index, self.vertices.shape[0])):
            if int(index.min()) < 0 or int(index.max()) >= size:
                raise RenderVideoError(f"frame plan: {name} out of range 0..{size - 1}")
        for name, t in (("ws", self.ws), ("vertices", self.vertices), ("landmarks", self.landmarks),
                        ("cameras", self.cameras)):
            if not bool(torch.isfinite(t).all()):
                raise RenderVideoError(f"frame plan: {name} holds NaN or infinite values")


@dataclass(frozen=True)
class FrameOutput:
    """One rendered frame (CPU, float32): image (3, H, W) ~[-1, 1]; depth (1, R, R) or None."""

    index: int
    image: torch.Tensor
    depth: Optional[torch.Tensor] = None


@dataclass
class RenderStats:
    """Counts of what `render_frames` computed (for the summary and for tests)."""

    frames: int = 0
    identities: int = 0  # texture + static synthesised
    planes: int = 0  # dynamic planes (rasterisation, mouth, blending) composed
    render_calls: int = 0


def identity_planes(G: torch.nn.Module, ws: torch.Tensor, **synthesis_kwargs) -> IdentityCache:
    """ws (B, num_ws, w_dim) -> the texture and static planes (`Next3DGenerator.identity_planes`)."""
    return G.identity_planes(ws, **synthesis_kwargs)


def compose_planes(G: torch.nn.Module, ws: torch.Tensor, identity: IdentityCache, vertices: torch.Tensor,
                   landmarks: torch.Tensor, **synthesis_kwargs) -> torch.Tensor:
    """The per-mesh stages -> blended tri-planes (B, 3, C, P, P), equal to `G.synthesize_planes`
    (`Next3DGenerator.mesh_planes`).

    ws (B, num_ws, w_dim) (replaces `identity.ws`: the rows may come from a cache);
    identity from `identity_planes(G, ws)`; vertices (B, V, 3), landmarks (B, 68, 3) FLAME space.
    """
    assert_shape(ws, [None, G.num_ws, G.w_dim], "ws")
    b = ws.shape[0]
    assert_shape(vertices, [b, G.flame.num_vertices, 3], "vertices")
    assert_shape(landmarks, [b, 68, 3], "landmarks")
    identity = IdentityCache(ws=ws, texture=identity.texture, static=identity.static)
    return G.mesh_planes(identity, {"vertices": vertices, "landmarks": landmarks}, **synthesis_kwargs)


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.items: "OrderedDict" = OrderedDict()

    def get(self, key):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return None

    def put(self, key, value):
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


def _planes_for(G, plan: FramePlan, pairs: List[Tuple[int, int]], id_cache: _LRU, plane_cache: _LRU,
                options: RenderVideoOptions, stats: RenderStats, kwargs: dict, device) -> torch.Tensor:
    """Blended planes (len(pairs), 3, C, P, P) for (ws row, mesh row) pairs, computing only missing ones."""
    if not options.reuse:
        wi = torch.tensor([p[0] for p in pairs], device=device)
        mi = torch.tensor([p[1] for p in pairs], device=device)
        ws = plan.ws[wi].to(device)
        stats.identities += len(pairs)
        stats.planes += len(pairs)
        return G.synthesize_planes(ws, {"vertices": plan.vertices[mi].to(device),
                                        "landmarks": plan.landmarks[mi].to(device)}, **kwargs)
    missing = [p for p in dict.fromkeys(pairs) if plane_cache.get(p) is None]
    if missing:
        need_id = [w for w in dict.fromkeys(p[0] for p in missing) if id_cache.get(w) is None]
        if need_id:
            ident = identity_planes(G, plan.ws[torch.tensor(need_id)].to(device), **kwargs)
            stats.identities += len(need_id)
            for j, w in enumerate(need_id):
                id_cache.put(w, ident.select(torch.tensor([j], device=ident.ws.device)))
        ident = IdentityCache.cat([id_cache.get(p[0]) for p in missing])
        wi = torch.tensor([p[0] for p in missing])
        mi = torch.tensor([p[1] for p in missing])
        planes = compose_planes(G, plan.ws[wi].to(device), ident, plan.vertices[mi].to(device),
                                plan.landmarks[mi].to(device), **kwargs)
        stats.planes += len(missing)
        for j, p in enumerate(missing):
            plane_cache.put(p, planes[j:j + 1])
    return torch.cat([plane_cache.get(p) for p in pairs])


@torch.no_grad()
def render_frames(G: torch.nn.Module, plan: FramePlan, options: RenderVideoOptions = RenderVideoOptions(),
                  on_progress: Optional[Callable[[int], None]] = None,
                  stats: Optional[RenderStats] = None) -> Iterator[FrameOutput]:
    """Render every frame of `plan` in order (module docstring); on_progress(n) after each batch."""
    from next3d.generate import deterministic_rays

    plan.validate(G)
    stats = stats if stats is not None else RenderStats()
    device = next(G.parameters()).device
    was_training = G.training
    G.eval()
    kwargs = dict(noise_mode=options.noise_mode)
    id_cache, plane_cache = _LRU(options.identity_cache), _LRU(max(options.plane_cache, options.batch))
    ws_index, mesh_index = plan.ws_index.cpu().tolist(), plan.mesh_index.cpu().tolist()
    try:
        with deterministic_rays(G):
            for lo in range(0, plan.num_frames, options.batch):
                hi = min(lo + options.batch, plan.num_frames)
                pairs = list(zip(ws_index[lo:hi], mesh_index[lo:hi]))
                planes = _planes_for(G, plan, pairs, id_cache, plane_cache, options, stats, kwargs, device)
                wi = torch.tensor([p[0] for p in pairs])
                mi = torch.tensor([p[1] for p in pairs])
                mesh = {"vertices": plan.vertices[mi].to(device), "landmarks": plan.landmarks[mi].to(device)}
                out = G.synthesis(plan.ws[wi].to(device), plan.cameras[lo:hi].to(device), mesh, planes=planes,
                                  neural_rendering_resolution=options.neural_resolution, **kwargs)
                stats.render_calls += 1
                images = out["image"].float().cpu()
                depths = out["image_depth"].float().cpu() if options.depth else None
                for j in range(hi - lo):
                    stats.frames += 1
                    yield FrameOutput(index=lo + j, image=images[j], depth=None if depths is None else depths[j])
                if on_progress is not None:
                    on_progress(hi - lo)
    finally:
        G.train(was_training)


def dedupe_meshes(vertices: torch.Tensor, landmarks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-frame meshes (N, V, 3), (N, 68, 3) -> unique tables (M, V, 3), (M, 68, 3) and mesh_index (N,).

    Consecutive equal meshes share a row (exact equality), so still stretches reuse planes.
    """
    assert_shape(vertices, [None, None, 3], "vertices")
    assert_shape(landmarks, [vertices.shape[0], 68, 3], "landmarks")
    keep = [0]
    index = [0]
    for i in range(1, vertices.shape[0]):
        j = keep[-1]
        if torch.equal(vertices[i], vertices[j]) and torch.equal(landmarks[i], landmarks[j]):
            index.append(len(keep) - 1)
        else:
            keep.append(i)
            index.append(len(keep) - 1)
    sel = torch.tensor(keep)
    return vertices[sel], landmarks[sel], torch.tensor(index, dtype=torch.long)


def head_meshes(G: torch.nn.Module, params: Dict[str, torch.Tensor], chunk: int = 64):
    """Per-frame FLAME parameters (N, k) per key -> vertices (N, V, 3), landmarks (N, 68, 3) on G's device."""
    device = next(G.parameters()).device
    n = next(iter(params.values())).shape[0]
    vs, ls = [], []
    for lo in range(0, n, chunk):
        part = {k: v[lo:lo + chunk].to(device) for k, v in params.items()}
        v, lm = G.head_mesh(part)
        vs.append(v)
        ls.append(lm)
    return torch.cat(vs), torch.cat(ls)


__all__ = ["RenderVideoError", "RenderVideoOptions", "FramePlan", "IdentityCache", "FrameOutput", "RenderStats",
           "identity_planes", "compose_planes", "render_frames", "dedupe_meshes", "head_meshes"]
