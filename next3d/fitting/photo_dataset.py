"""A training set in the next3d format from a folder or zip of photos, resumable.

`build_photo_dataset(source, out, ...)`:

1. Lists the photos: every file under a folder (recursively, hidden files left out) or every
   member of a zip, sorted by name. Non-image files are tried too and reported as unreadable.
2. Works in `OUT.work/` beside OUT: each photo, once done, leaves a record there (the crop
   and its fit, or why it was skipped), named by a hash of its name; a rerun after an
   interruption skips the photos already recorded. The work folder remembers the settings
   (resolution, head model); rerunning with other settings starts it afresh.
3. Photos are read, detected and cropped (in `workers` processes), then fitted in batches.
   No photo stops the run: each failure is recorded with its stage and reason.
4. Finally writes the data set with `training.dataset.DatasetWriter` (which writes to a
   temporary name and renames at the end, so OUT never holds a half-written set) and removes
   the work folder. The list of skipped photos and why goes into `dataset.json`'s `source`
   and is returned.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from next3d.atomic_io import atomic_write_bytes
from next3d.fitting.landmark_fit import FitConfig
from next3d.fitting.photo_io import PhotoError, read_photo
from next3d.fitting.pipeline import PhotoFailure, PhotoFit, fit_prepared, prepare_photo

WORK_VERSION = 1


class PhotoDatasetError(ValueError):
    """The source or output of a photo data set cannot be used."""


@dataclass
class BuildReport:
    """written: items in the set; skipped: (name, stage, reason) per skipped photo; out: the set's path."""

    out: Path
    written: int = 0
    skipped: List[Tuple[str, str, str]] = field(default_factory=list)


def list_photos(source: Union[str, Path]) -> List[str]:
    """Names of the candidate photos of a folder (relative paths) or zip (member names), sorted."""
    src = Path(source)
    if src.is_dir():
        names = []
        for p in src.rglob("*"):
            rel = p.relative_to(src)
            if p.is_file() and not any(part.startswith(".") for part in rel.parts):
                names.append(rel.as_posix())
        return sorted(names)
    if src.is_file():
        try:
            with zipfile.ZipFile(src) as zf:
                return sorted(n for n in zf.namelist() if not n.endswith("/")
                              and not any(part.startswith(".") or part == "__MACOSX" for part in n.split("/")))
        except zipfile.BadZipFile:
            raise PhotoDatasetError(f"{src}: not a folder and not a readable zip file") from None
    raise PhotoDatasetError(f"{src}: no such folder or zip file")


def _read_bytes(source: Path, name: str) -> bytes:
    if source.is_dir():
        return (source / name).read_bytes()
    with zipfile.ZipFile(source) as zf:
        return zf.read(name)


def _key(name: str) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]


class _Work:
    """The work folder: settings + one record per finished photo."""

    def __init__(self, folder: Path, settings: dict):
        self.folder = folder
        cfg = folder / "settings.json"
        if folder.exists():
            try:
                old = json.loads(cfg.read_text())
            except (OSError, ValueError):
                old = None
            if old != settings:
                shutil.rmtree(folder)
        (folder / "records").mkdir(parents=True, exist_ok=True)
        if not cfg.exists():
            atomic_write_bytes(cfg, json.dumps(settings, sort_keys=True).encode())

    def _path(self, name: str, suffix: str) -> Path:
        return self.folder / "records" / f"{_key(name)}{suffix}"

    def done(self, name: str) -> bool:
        return self._path(name, ".json").exists()

    def record_failure(self, failure: PhotoFailure) -> None:
        rec = {"name": failure.name, "status": "skipped", "stage": failure.stage, "reason": failure.message}
        atomic_write_bytes(self._path(failure.name, ".json"), json.dumps(rec).encode())

    def record_fit(self, fit: PhotoFit) -> None:
        buf = io.BytesIO()
        Image.fromarray(fit.photo.crop).save(buf, format="PNG")
        atomic_write_bytes(self._path(fit.photo.name, ".png"), buf.getvalue())
        rec = {"name": fit.photo.name, "status": "fitted", "camera": [float(x) for x in fit.camera],
               "flame": {k: [float(x) for x in v] for k, v in fit.flame.items()},
               "landmarks_2d": fit.photo.landmarks.tolist(), "error_px": fit.error_px,
               "crop_transform": fit.photo.transform.to_json()}
        atomic_write_bytes(self._path(fit.photo.name, ".json"), json.dumps(rec).encode())  # last: marks it done

    def read(self, name: str) -> Tuple[dict, Optional[np.ndarray]]:
        rec = json.loads(self._path(name, ".json").read_text())
        img = None
        if rec["status"] == "fitted":
            with Image.open(self._path(name, ".png")) as pil:
                img = np.asarray(pil.convert("RGB"))
        return rec, img


_WORKER_DETECTOR = None


def _init_worker():
    global _WORKER_DETECTOR
    from next3d.fitting.detect import DlibDetector

    _WORKER_DETECTOR = DlibDetector()


def _prepare_in_worker(args):
    source, name, resolution, face, align = args
    try:
        data = _read_bytes(Path(source), name)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        return PhotoFailure(name, "read", f"{name}: cannot read ({exc})")
    return prepare_photo(data, _WORKER_DETECTOR, resolution, face=face, name=name, align=align)


def build_photo_dataset(source: Union[str, Path], out: Union[str, Path], *, flame, head: Dict, resolution: int = 512,
                        workers: int = 1, batch: int = 64, face: Optional[int] = None, align: str = "eg3d",
                        config: FitConfig = FitConfig(), log: Optional[Callable[[str], None]] = None,
                        progress: bool = False, detector=None, photometric=None,
                        photometric_model=None) -> BuildReport:
    """Build a next3d data set from the photos of `source` (folder or zip) at `out`.

    Args:
        flame: the FLAME layer; head: `training.dataset_schema.head_identity` of its model data.
        resolution: image side of the set; workers: processes for reading/detection/cropping.
        batch: photos per fitting batch; face: which face of multi-face photos (None: largest).
        align: "eg3d" (the published in-the-wild crop) or "ffhq" (eyes levelled first; `align.crop_transform`).
        log: called with one line per skipped photo as it happens.
        detector: a `LandmarkDetector` for workers == 1 (default: dlib, made when first needed).
        photometric: a `photometric.PhotometricConfig` to refine every fit on its pixels (None: landmarks
            only); photometric_model: its head data (`photometric.load_photometric_model`).
    Raises:
        PhotoDatasetError: unusable source, nothing fitted, or an output that is not a data set.
    """
    from training.dataset import DatasetWriter

    source, out = Path(source), Path(out)
    names = list_photos(source)
    if not names:
        raise PhotoDatasetError(f"{source}: no files found")
    if out.exists() and not (out / "dataset.json").exists() and not (out.is_file() and out.suffix == ".zip"):
        raise PhotoDatasetError(f"{out}: exists and is not a next3d data set; choose another --out")
    settings = {"version": WORK_VERSION, "source": str(source.resolve()), "resolution": int(resolution),
                "face": face, "align": align, "head": head, "photometric": photometric is not None}
    work = _Work(out.with_name(out.name + ".work"), settings)
    todo = [n for n in names if not work.done(n)]
    from next3d.fitting.calibrate import load_offsets

    offsets = load_offsets("dlib", head)
    pool = None
    if todo and workers > 1:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="photos", unit="photo")
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            if pool is not None:
                prepared = pool.map(_prepare_in_worker, [(str(source), n, resolution, face, align) for n in chunk])
            else:
                prepared = []
                for n in chunk:
                    try:
                        image = read_photo(_read_bytes(source, n), n)
                    except (OSError, KeyError, zipfile.BadZipFile) as exc:
                        prepared.append(PhotoFailure(n, "read", f"{n}: cannot read ({exc})"))
                        continue
                    except PhotoError as exc:
                        prepared.append(PhotoFailure(n, "read", str(exc)))
                        continue
                    if detector is None:
                        from next3d.fitting.detect import DlibDetector

                        detector = DlibDetector()
                    prepared.append(prepare_photo(image, detector, resolution, face=face, name=n, align=align))
            ok = [p for p in prepared if not isinstance(p, PhotoFailure)]
            for p in prepared:
                if isinstance(p, PhotoFailure):
                    work.record_failure(p)
                    if log:
                        log(f"skipped {p.name} ({p.stage}): {p.message}")
            for result in fit_prepared(ok, flame, config, landmark_offsets=offsets, photometric=photometric,
                                       photometric_model=photometric_model):
                if isinstance(result, PhotoFailure):
                    work.record_failure(result)
                    if log:
                        log(f"skipped {result.name} ({result.stage}): {result.message}")
                else:
                    work.record_fit(result)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()

    report = BuildReport(out=out)
    records = []
    for n in names:
        rec, img = work.read(n)
        if rec["status"] == "skipped":
            report.skipped.append((n, rec["stage"], rec["reason"]))
        else:
            records.append((rec, img))
    if not records:
        raise PhotoDatasetError(f"{source}: no photo could be fitted ({len(report.skipped)} skipped); "
                                f"nothing written (first reason: {report.skipped[0][2]})")
    src_info = {"tool": "next3d dataset from-photos", "input": str(source), "photos": len(names),
                "skipped": [{"image": n, "stage": s, "reason": r} for n, s, r in report.skipped]}
    with DatasetWriter(out, resolution=resolution, source=src_info, **head) as writer:
        for rec, img in records:
            writer.add(img, camera=np.asarray(rec["camera"]), flame={k: np.asarray(v) for k, v in rec["flame"].items()},
                       landmarks_2d=np.asarray(rec["landmarks_2d"]),
                       appearance={"photo": rec["name"], "fit_error_px": rec["error_px"],
                                   "crop_transform": rec["crop_transform"]})
    report.written = len(records)
    shutil.rmtree(work.folder, ignore_errors=True)
    return report
