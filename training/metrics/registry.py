"""One entry point for every metric: `compute_metric(name, G, dataset, ...)` / `compute_metrics`.

Names (`METRIC_NAMES` lists the usual ones; any `fid<N>k_<net>` / `kid<N>k_<net>` works):

| name | value(s) | definition |
|---|---|---|
| `fid10k_vgg`, `fid50k_inception`, ... | FID | `fid` (N k generated images vs up to N k data-set images) |
| `kid10k_vgg`, `kid50k_inception`, ... | KID | `fid` |
| `id` | id, id_views, id_expressions, id_distance | `identity` (num_gen = identities, default 100) |
| `aed`, `apd`, `lmk` | aed (mm), apd (deg), lmk (% side) | `transfer` (num_gen images, default 500) |
| `consistency` | consistency_l1, consistency_l1_raw, consistency_coverage | `consistency` (default 500) |
| `face_rate` | face_rate (share of images where dlib finds a face, yaw within ±30°) | `heads` (default 100) |
| `jaw_mouth` | jaw_gap_<angle>, jaw_gap_increase, jaw_monotonic, ... (jaw 0 → 0.3 rad) | `heads` (identities, default 20) |
| `depth` | depth_l1, normal_deg, depth_mean, depth_gt_mean, depth_relief, ... | `heads` (items with gt/*.npz, default 50) |
| `speed` | images_per_s of `next3d.generate.generate` | `heads` (default 16) |

Metrics requested together share work: FID and KID of one N and network use one set of
generated features; `aed`, `apd` and `lmk` one set of fits. Every result records the
seed, the counts and the settings used. Generated samples are conditioned as in
training (`sampling`). The generator runs on its own device; feature networks on
`device` (default: the generator's).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from training.metrics.feature_nets import MetricError, get_feature_net
from training.metrics.fid import distribution_metric, parse_name

METRIC_NAMES = ("fid10k_vgg", "kid10k_vgg", "fid50k_vgg", "kid50k_vgg", "fid10k_inception", "kid10k_inception",
                "fid50k_inception", "kid50k_inception", "id", "aed", "apd", "lmk", "consistency",
                "face_rate", "jaw_mouth", "depth", "speed")
TRANSFER_NAMES = ("aed", "apd", "lmk")
HEAD_NAMES = ("face_rate", "jaw_mouth", "depth", "speed")
"""Metrics of `training.metrics.heads`; `depth` needs a data set opened with load_ground_truth=True."""
DEFAULT_COUNTS = {"id": 100, "transfer": 500, "consistency": 500, "face_rate": 100, "jaw_mouth": 20, "depth": 50,
                  "speed": 16}


def check_names(names: Sequence[str]) -> List[str]:
    """Validated, de-duplicated metric names (order kept); MetricError naming the bad one."""
    out = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name.startswith(("fid", "kid")):
            parse_name(name)
        elif name not in METRIC_NAMES:
            raise MetricError(f"metric {name!r}: unknown; expected one of {', '.join(METRIC_NAMES)} "
                              f"(or fid<N>k_<net> / kid<N>k_<net>)")
        if name not in out:
            out.append(name)
    if not out:
        raise MetricError("no metric named")
    return out


def _bar(progress: bool, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False, dynamic_ncols=True)


def _generator_device(G) -> torch.device:
    return next(G.parameters()).device


def _distribution(names: List[str], G, dataset, *, num_gen, device, batch, seed, progress, options) -> Dict[str, Any]:
    from training.metrics.feature_stats import StatsAccumulator, compute_dataset_stats
    from training.metrics.sampling import generated_batches

    out = {}
    groups: Dict[tuple, List[str]] = {}
    for name in names:
        kind, count, net = parse_name(name)
        groups.setdefault((int(num_gen or count), net), []).append(name)
    for (count, net_name), members in groups.items():
        started = time.perf_counter()
        net = get_feature_net(net_name, device=device, inception_weights=options.get("inception_weights"),
                              vgg_size=options.get("vgg_size", 224))
        n_real = min(count, len(dataset))
        with _bar(progress, 2 * n_real, f"data set stats ({net_name})") as bar:
            real = compute_dataset_stats(dataset, net, max_items=n_real, batch=max(batch, 8),
                                         use_cache=options.get("cache", True), on_progress=bar.update)
        acc = StatsAccumulator(net.dim)
        with _bar(progress, count, f"generated ({net_name})") as bar:
            for gen in generated_batches(G, dataset, count, batch=batch, seed=seed,
                                         truncation_psi=options.get("truncation_psi", 1.0)):
                acc.append(net(gen.images.to(device)))
                bar.update(gen.images.shape[0])
        fake = acc.stats()
        for name in members:
            kind = parse_name(name)[0]
            value = distribution_metric(kind, real, fake, seed=seed)
            out[name] = {"results": {name: value}, "num_gen": count, "num_real": real.num, "feature_net": net_name,
                         "feature_dim": net.dim, "feature_fingerprint": net.fingerprint,
                         "seconds": time.perf_counter() - started}
    return out


def _head_metric(name, G, dataset, *, num_gen, batch, seed, progress, options) -> Dict[str, Any]:
    from training.metrics import heads

    started = time.perf_counter()
    count = int(num_gen or DEFAULT_COUNTS[name])
    psi = float(options.get("truncation_psi", 1.0))
    with _bar(progress, count, name) as bar:
        if name == "face_rate":
            res = heads.face_detection_rate(G, dataset, count, batch=batch, seed=seed, truncation_psi=psi,
                                            max_yaw_deg=float(options.get("max_yaw_deg", 30.0)),
                                            on_progress=bar.update)
        elif name == "jaw_mouth":
            res = heads.jaw_mouth_opening(G, count, batch=batch, seed=seed, truncation_psi=psi,
                                          on_progress=bar.update)
        elif name == "depth":
            res = heads.depth_against_ground_truth(G, dataset, count, batch=batch, seed=seed, truncation_psi=psi,
                                                   on_progress=bar.update)
        else:
            res = heads.generate_speed(G, count, batch=batch, on_progress=bar.update)
    return {"results": res, "num_gen": count, "seconds": time.perf_counter() - started}


def compute_metrics(names: Sequence[str], G: torch.nn.Module, dataset, *, num_gen: Optional[int] = None,
                    device: Optional[str] = None, batch: int = 4, seed: int = 0, progress: bool = False,
                    **options) -> Dict[str, Dict[str, Any]]:
    """Compute several metrics -> {name: {"metric", "results": {key: value}, "seed", ... settings}}.

    options: inception_weights (path), vgg_size (224), cache (True), truncation_psi (1.0),
    id_yaws, id_expressions, yaw_offset (0.3), fit_config (a next3d.fitting.FitConfig).
    """
    names = check_names(names)
    if batch < 1:
        raise MetricError(f"batch: expected at least 1, got {batch}")
    if num_gen is not None and num_gen < 1:
        raise MetricError(f"num_gen: expected at least 1, got {num_gen}")
    if len(dataset) < 1:
        raise MetricError("the data set is empty")
    device = str(device) if device is not None else str(_generator_device(G))
    was_training = G.training
    G.eval()
    results: Dict[str, Dict[str, Any]] = {}
    try:
        dist = [n for n in names if n.startswith(("fid", "kid"))]
        if dist:
            results.update(_distribution(dist, G, dataset, num_gen=num_gen, device=device, batch=batch, seed=seed,
                                         progress=progress, options=options))
        if "id" in names:
            from training.metrics.identity import DEFAULT_YAWS, IdentityOptions, id_consistency

            started = time.perf_counter()
            opts = IdentityOptions(num_identities=int(num_gen or DEFAULT_COUNTS["id"]),
                                   yaws=tuple(options.get("id_yaws", DEFAULT_YAWS)),
                                   num_expressions=int(options.get("id_expressions", 4)),
                                   truncation_psi=float(options.get("truncation_psi", 1.0)))
            per_id = len(opts.yaws) + 1 + opts.num_expressions
            with _bar(progress, opts.num_identities * per_id, "id") as bar:
                res = id_consistency(G, dataset, options=opts, seed=seed, batch=batch, on_progress=bar.update)
            results["id"] = {"results": res, "num_gen": opts.num_identities, "yaws": list(opts.yaws),
                             "num_expressions": opts.num_expressions, "seconds": time.perf_counter() - started}
        wanted = [n for n in names if n in TRANSFER_NAMES]
        if wanted:
            from training.metrics.transfer import transfer_metrics

            started = time.perf_counter()
            count = int(num_gen or DEFAULT_COUNTS["transfer"])
            with_fit = any(n in ("aed", "apd") for n in wanted)
            with _bar(progress, count, "aed/apd/lmk") as bar:
                res = transfer_metrics(G, dataset, count, batch=batch, seed=seed, with_fit=with_fit,
                                       fit_config=options.get("fit_config"), on_progress=bar.update)
            for name in wanted:
                keep = {k: v for k, v in res.items() if k == name or k.startswith("transfer_")}
                results[name] = {"results": keep, "num_gen": count, "seconds": time.perf_counter() - started}
        if "consistency" in names:
            from training.metrics.consistency import multiview_consistency

            started = time.perf_counter()
            count = int(num_gen or DEFAULT_COUNTS["consistency"])
            yaw_offset = float(options.get("yaw_offset", 0.3))
            with _bar(progress, count, "consistency") as bar:
                res = multiview_consistency(G, dataset, count, batch=batch, seed=seed, yaw_offset=yaw_offset,
                                            on_progress=bar.update)
            results["consistency"] = {"results": res, "num_gen": count, "yaw_offset": yaw_offset,
                                      "seconds": time.perf_counter() - started}
        for name in [n for n in names if n in HEAD_NAMES]:
            results[name] = _head_metric(name, G, dataset, num_gen=num_gen, batch=batch, seed=seed,
                                         progress=progress, options=options)
    finally:
        G.train(was_training)
    for name in names:
        results[name] = {"metric": name, **results[name], "seed": int(seed), "batch": int(batch), "device": device}
    return {name: results[name] for name in names}


def compute_metric(name: str, G: torch.nn.Module, dataset, *, num_gen: Optional[int] = None,
                   device: Optional[str] = "cpu", batch: int = 4, seed: int = 0, progress: bool = False,
                   **options) -> Dict[str, Any]:
    """One metric -> {"metric": name, "results": {key: float}, "seed", "num_gen", "seconds", ...}."""
    return compute_metrics([name], G, dataset, num_gen=num_gen, device=device, batch=batch, seed=seed,
                           progress=progress, **options)[name]


def flat_results(results: Dict[str, Dict[str, Any]]) -> Dict[str, float]:
    """{name: {"results": {...}}} -> one flat {key: value} dict (for logs)."""
    flat = {}
    for entry in results.values():
        for k, v in entry["results"].items():
            flat[k] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
    return flat


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
