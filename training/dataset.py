"""Data sets: the next3d format (folder or zip + `dataset.json`) and the published Next3D
layout, read by one PyTorch Dataset; the writer; horizontal flips.

Format: `docs/dataset_format.md`. Every check that can be made without decoding whole
images runs at construction (labels, counts, shapes, image headers, truncated files, the
resolution, the head topology, whether flipping is possible), so a bad data set fails
with one clear DatasetError before any DataLoader worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from training.dataset_mirror import (DEFAULT_MAX_VERTEX_ERROR, IBUG_MIRROR, MirrorError, MirrorOperator,
                                     build_mirror_operator, mirror_camera, mirror_flame, mirror_ground_truth,
                                     mirror_landmarks_2d, mirror_points)
from training.dataset_schema import (FLAME_KEYS, LABELS_FILE, SPLITS, DatasetError, DatasetLabels, head_identity,
                                     parse_labels)
from training.dataset_storage import IMAGE_SUFFIXES, Storage, decode_image, probe_image, read_npz
from training.dataset_writer import DatasetWriter
from training.published_layout import (PUBLISHED_LABELS, PublishedLabels, parse_published, read_landmarks_3d,
                                       read_vertices)

__all__ = ["DatasetError", "DatasetWriter", "ImageDataset", "MirrorOperator", "mirror_camera", "mirror_flame",
           "build_mirror_operator", "head_identity", "project_landmarks", "IBUG_MIRROR"]

PathLike = Union[str, Path]


def project_landmarks(points_flame: np.ndarray, camera: np.ndarray, resolution: int) -> np.ndarray:
    """FLAME-space points (..., N, 3) seen by camera labels (..., 25) -> pixels (..., N, 2)
    (the FLAME -> world convention of `next3d.render.triplane_coords`)."""
    from next3d.render.cameras import project
    from next3d.render.triplane_coords import flame_to_world

    pts = torch.as_tensor(np.asarray(points_flame, np.float32))
    cam = torch.as_tensor(np.asarray(camera, np.float32))
    batched = pts.ndim == 3
    if not batched:
        pts, cam = pts[None], cam[None]
    uv = project(flame_to_world(pts), cam)[..., :2] * resolution
    return (uv if batched else uv[0]).numpy()


class ImageDataset(torch.utils.data.Dataset):
    """Images with camera labels and FLAME parameters (or meshes, for the published layout).

    Args:
        path: a data-set folder or zip (next3d format, or the published Next3D layout).
        split: "train", "test", or None for every item (the published layout is all train).
        resolution: the expected image side; DatasetError when the set has another.
        xflip: add a horizontally flipped copy of every item (indices len/2 .. len-1), with
            the camera, FLAME parameters, landmarks and ground truth mirrored consistently;
            DatasetError when the head model's basis cannot mirror the items.
        max_size: keep at most this many items: a fixed random subset chosen by `subset_seed`.
        subset_seed: seed of that subset.
        load_ground_truth: also return the `gt/*.npz` arrays (every item must have them).
        expected_topology: the head topology hash the consumer (a generator) expects.
        flame_dir: the FLAME folder of a `head_model: flame` set (needed for xflip only).
        head_data: an already loaded `FlameModelData` for xflip (instead of loading one).
        verify_images: probe every image header and tail at construction (cheap; no decoding).
        max_mirror_error: largest RMS vertex error (metres) a flipped item may have.

    Items: see `docs/dataset_format.md` ("What the loader returns").
    """

    def __init__(self, path: PathLike, *, split: Optional[str] = "train", resolution: Optional[int] = None,
                 xflip: bool = False, max_size: Optional[int] = None, subset_seed: int = 0,
                 load_ground_truth: bool = False, expected_topology: Optional[str] = None,
                 flame_dir: Optional[PathLike] = None, head_data: Any = None, verify_images: bool = True,
                 max_mirror_error: float = DEFAULT_MAX_VERTEX_ERROR):
        self.path = Path(path)
        self._storage = Storage(self.path)
        if split is not None and split not in SPLITS:
            raise DatasetError(f"{self.path}: split must be one of {', '.join(SPLITS)} or None, got {split!r}")
        self.split = split
        self.xflip = bool(xflip)
        self.load_ground_truth = bool(load_ground_truth)
        self._labels: Optional[DatasetLabels] = None
        self._published: Optional[PublishedLabels] = None
        if self._storage.exists(LABELS_FILE):
            self._labels = parse_labels(self._storage.read(LABELS_FILE), self._storage.where(LABELS_FILE))
            splits = self._labels.splits
            cameras = self._labels.cameras
            images = self._labels.images
        elif self._storage.exists(PUBLISHED_LABELS):
            self._published = parse_published(self._storage)
            splits = ["train"] * len(self._published)
            cameras = self._published.cameras
            images = self._published.images
        else:
            raise DatasetError(f"{self.path}: no {LABELS_FILE} (the next3d format, docs/dataset_format.md) and no "
                               f"{PUBLISHED_LABELS} (the published Next3D layout)")
        self.num_items_total = len(images)

        order = np.array([i for i, s in enumerate(splits) if split is None or s == split], dtype=np.int64)
        if order.size == 0:
            raise DatasetError(f"{self.path}: no items in split {split!r} (the set has "
                               f"{', '.join(f'{s}: {splits.count(s)}' for s in SPLITS)})")
        if max_size is not None:
            if int(max_size) < 1:
                raise DatasetError(f"{self.path}: max_size must be >= 1, got {max_size}")
            if order.size > max_size:
                rng = np.random.RandomState(int(subset_seed) % (2 ** 32))
                order = np.sort(rng.choice(order, size=int(max_size), replace=False))
        self._order = order

        self._resolution = self._check_images(images, order, verify_images)
        if resolution is not None and int(resolution) != self._resolution:
            raise DatasetError(f"{self.path}: images are {self._resolution}x{self._resolution}, expected "
                               f"{resolution}x{resolution} (make the set at that resolution)")
        if self.load_ground_truth:
            self._check_ground_truth(order)
        if expected_topology is not None:
            self.check_topology(expected_topology)

        self._mirror: Optional[MirrorOperator] = None
        self._vertex_map: Optional[np.ndarray] = None
        if self.xflip:
            self._prepare_flip(flame_dir, head_data, max_mirror_error)
        base = cameras[order]
        self._cameras = np.concatenate([base, mirror_camera(base)]) if self.xflip else base.copy()

    # -- construction-time checks --------------------------------------------------------

    def _check_images(self, images: List[str], order: np.ndarray, verify: bool) -> int:
        declared = self._labels.resolution if self._labels is not None else None
        first = None
        names = self._storage.names()
        if self._labels is not None:
            listed = set(images)
            stored = sorted(n for n in names if n.startswith("images/") and n.lower().endswith(IMAGE_SUFFIXES))
            unlisted = [n for n in stored if n not in listed]
            if unlisted:
                raise DatasetError(f"{self.path}: {LABELS_FILE} lists {len(images)} images but images/ holds "
                                   f"{len(stored)} ({len(unlisted)} not listed, e.g. {unlisted[0]}); the labels do "
                                   f"not match the images")
        for raw in (order if verify else order[:1]):
            name = images[raw]
            if name not in names:
                raise DatasetError(f"{self._storage.where(name)}: missing (the labels list {self.num_items_total} "
                                   f"images; this one is not in the data set)")
            fmt, width, height = probe_image(self._storage, name)
            if width != height:
                raise DatasetError(f"{self._storage.where(name)}: {width}x{height} image, expected a square image")
            want = declared if declared is not None else first
            if want is not None and width != want:
                source = f"{LABELS_FILE} says {want}" if declared is not None else f"the first image is {want}"
                raise DatasetError(f"{self._storage.where(name)}: {width}x{height} image, but {source}x{want}")
            first = first or width
        return declared if declared is not None else int(first)

    def _check_ground_truth(self, order: np.ndarray) -> None:
        if self._labels is None:
            raise DatasetError(f"{self.path}: the published Next3D layout has no ground-truth arrays "
                               f"(load_ground_truth=True needs a next3d-format set)")
        for raw in order:
            gt = self._labels.ground_truth[raw]
            if gt is None:
                raise DatasetError(f"{self._storage.where(LABELS_FILE)}: item {raw} ({self._labels.images[raw]}) has "
                                   f"no 'ground_truth' (load_ground_truth=True needs it for every item)")
            if not self._storage.exists(gt):
                raise DatasetError(f"{self._storage.where(gt)}: missing (listed as ground truth of item {raw})")

    def check_topology(self, expected: Optional[str]) -> None:
        """DatasetError when the set's head topology differs from `expected` (a generator's
        `config.head_topology`); nothing is checked when either is unknown."""
        have = self.head_topology
        if expected is None or have is None or expected == have:
            return
        raise DatasetError(f"{self.path}: the data set's head topology is {have} ({self.head_model}), but "
                           f"{expected} is expected; labels of one head model do not fit another")

    def _prepare_flip(self, flame_dir, head_data, max_error: float) -> None:
        if head_data is None:
            from next3d.flame import load_flame_model

            if self.head_model == "flame" and flame_dir is None:
                from next3d.flame.files import resolve_flame_dir

                if resolve_flame_dir(None) is None:
                    raise DatasetError(f"{self.path}: xflip of a set made with real FLAME needs its FLAME folder "
                                       f"(flame_dir=... or $NEXT3D_FLAME_DIR) to mirror the parameters")
            try:
                head_data = load_flame_model(flame_dir if self.head_model == "flame" else None)
            except ValueError as exc:
                raise DatasetError(f"{self.path}: cannot load the head model for xflip ({exc})") from None
        if self._published is not None:
            if head_data.num_vertices != self._published.num_vertices:
                raise DatasetError(f"{self.path}: cannot flip: the meshes have {self._published.num_vertices} "
                                   f"vertices, the head model {head_data.num_vertices} (pass the matching flame_dir)")
            try:
                self._vertex_map = build_mirror_operator(head_data, 0, 0).vertex_map
            except MirrorError as exc:
                raise DatasetError(f"{self.path}: {exc}") from None
            return
        ident = head_identity(head_data)
        if self.head_topology is not None and ident["head_topology"] != self.head_topology:
            raise DatasetError(f"{self.path}: cannot flip: the set's head topology {self.head_topology} differs from "
                               f"the loaded head model's {ident['head_topology']} ({head_data.name})")
        if self.head_model == "builtin" and self.head_version and ident["head_version"] != self.head_version:
            raise DatasetError(f"{self.path}: cannot flip: the set was made with built-in head {self.head_version}, "
                               f"the loaded one is {ident['head_version']} (its blendshapes differ, so its mirror "
                               f"matrices do not apply)")
        if head_data.num_shape < self.num_shape or head_data.num_expression < self.num_expression:
            raise DatasetError(f"{self.path}: cannot flip: the set has {self.num_shape} shape / {self.num_expression} "
                               f"expression components, the head model {head_data.num_shape} / "
                               f"{head_data.num_expression}")
        try:
            op = build_mirror_operator(head_data, self.num_shape, self.num_expression)
        except MirrorError as exc:
            raise DatasetError(f"{self.path}: {exc}") from None
        flame = self._labels.flame
        err = op.vertex_error(flame["shape"][self._order], flame["expression"][self._order])
        worst = int(np.argmax(err))
        if err[worst] > max_error:
            raw = int(self._order[worst])
            open_c = op.open_components()
            used = {k: [int(c) for c in open_c[k] if np.any(flame[k][self._order, c] != 0)] for k in open_c}
            raise DatasetError(
                f"{self.path}: cannot flip: item {raw} ({self._labels.images[raw]}) would mirror with an RMS vertex "
                f"error of {1000 * err[worst]:.2f} mm (> {1000 * max_error:.2f} mm): the head model's shape components "
                f"{used['shape']} and expression components {used['expression']} have no mirror image in its basis; "
                f"use xflip=False")
        self._mirror = op
        self._vertex_map = op.vertex_map

    # -- properties ----------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def head_model(self) -> str:
        return self._labels.head_model if self._labels is not None else "flame"

    @property
    def head_version(self) -> Optional[str]:
        return self._labels.head_version if self._labels is not None else None

    @property
    def head_topology(self) -> Optional[str]:
        return self._labels.head_topology if self._labels is not None else self._published.head_topology

    @property
    def num_shape(self) -> int:
        return self._labels.num_shape if self._labels is not None else 0

    @property
    def num_expression(self) -> int:
        return self._labels.num_expression if self._labels is not None else 0

    @property
    def has_flame_params(self) -> bool:
        return self._labels is not None

    @property
    def layout(self) -> str:
        """"next3d" (dataset.json) or "published" (dataset_mead.json + meshes)."""
        return "next3d" if self._labels is not None else "published"

    @property
    def cameras(self) -> np.ndarray:
        """(len, 25) float32 camera labels of the items in order (flipped ones mirrored)."""
        return self._cameras

    @property
    def mesh_faces(self) -> Optional[np.ndarray]:
        """(F, 3) faces of the published layout's meshes (None for the next3d format)."""
        return self._published.faces if self._published is not None else None

    @property
    def source(self) -> Optional[dict]:
        return self._labels.source if self._labels is not None else None

    @property
    def labels(self) -> Optional[DatasetLabels]:
        """All labels of a next3d-format set (every split, unselected items too), or None."""
        return self._labels

    def __len__(self) -> int:
        return int(self._order.size) * (2 if self.xflip else 1)

    def raw_index(self, idx: int) -> tuple:
        """(position in the labels file, flipped) of item `idx`."""
        if not -len(self) <= idx < len(self):
            raise IndexError(f"item {idx} out of range for a data set of {len(self)} items")
        idx %= len(self)
        n = self._order.size
        return int(self._order[idx % n]), idx >= n

    def image_name(self, idx: int) -> str:
        raw, _ = self.raw_index(idx)
        return (self._labels.images if self._labels is not None else self._published.images)[raw]

    def flame_params(self, idx: int) -> Dict[str, np.ndarray]:
        """FLAME parameters of item `idx` as float32 arrays (mirrored when flipped)."""
        if self._labels is None:
            raise DatasetError(f"{self.path}: the published Next3D layout has meshes, not FLAME parameters")
        raw, flipped = self.raw_index(idx)
        flame = {k: self._labels.flame[k][raw].copy() for k in FLAME_KEYS}
        return mirror_flame(flame, self._mirror) if flipped else flame

    # -- items ---------------------------------------------------------------------------

    def __getitem__(self, idx: int) -> Dict[str, Any]:
        raw, flipped = self.raw_index(idx)
        name = self.image_name(idx)
        image = decode_image(self._storage, name)
        r = self._resolution
        if image.shape != (r, r, 3):
            raise DatasetError(f"{self._storage.where(name)}: decoded to {image.shape[1]}x{image.shape[0]}, "
                               f"expected {r}x{r}")
        if flipped:
            image = image[:, ::-1]
        item: Dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "camera": torch.from_numpy(self._cameras[idx % len(self)].copy()),
            "index": int(idx % len(self)),
            "flipped": bool(flipped),
        }
        if self._labels is not None:
            item["flame"] = {k: torch.from_numpy(v) for k, v in self.flame_params(idx).items()}
            lmk = self._labels.landmarks_2d[raw]
            item["landmarks_2d"] = torch.from_numpy(mirror_landmarks_2d(lmk, r) if flipped else lmk.copy())
            if self.load_ground_truth:
                arrays = read_npz(self._storage, self._labels.ground_truth[raw])
                if flipped:
                    try:
                        arrays = mirror_ground_truth(arrays, r, self._vertex_map)
                    except DatasetError as exc:
                        raise DatasetError(f"{self._storage.where(self._labels.ground_truth[raw])}: {exc}") from None
                item["ground_truth"] = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
        else:
            pub = self._published
            verts = read_vertices(self._storage, pub.meshes[raw], pub.num_vertices)
            lmk3 = read_landmarks_3d(self._storage, pub.landmark_files[raw])
            if flipped:
                verts, lmk3 = mirror_points(verts, self._vertex_map), mirror_points(lmk3)
            item["vertices"] = torch.from_numpy(verts)
            item["landmarks_3d"] = torch.from_numpy(lmk3)
            item["landmarks_2d"] = torch.from_numpy(
                project_landmarks(lmk3, item["camera"].numpy(), r).astype(np.float32))
        return item

    def __repr__(self) -> str:
        return (f"ImageDataset({str(self.path)!r}, layout={self.layout}, split={self.split}, items={len(self)}, "
                f"resolution={self.resolution}, head={self.head_model}, xflip={self.xflip})")
