"""The metric registry: names, errors, and a tiny-preset generator through every metric on the CPU."""

import importlib.util

import pytest

if importlib.util.find_spec("stlpips_pytorch") is None:
    pytest.skip("needs the stlpips-pytorch package (its weight files)", allow_module_level=True)
pytest.importorskip("dlib")

import json  # noqa: E402
import math  # noqa: E402

from training.metrics.feature_nets import MetricError
from training.metrics.registry import METRIC_NAMES, check_names, compute_metric, compute_metrics, flat_results


def test_names():
    assert check_names(["fid10k_vgg", " id", "id", "fid2k_inception"]) == ["fid10k_vgg", "id", "fid2k_inception"]
    assert {"fid10k_vgg", "kid10k_vgg", "fid50k_inception", "id", "aed", "apd", "consistency"} <= set(METRIC_NAMES)
    with pytest.raises(MetricError, match="metric 'psnr': unknown"):
        check_names(["psnr"])
    with pytest.raises(MetricError, match="expected fid<N>k_<net>"):
        check_names(["fid10k_alex"])


def test_every_metric_end_to_end(tiny_generator, head_dataset, metrics_cache):
    from next3d.fitting import FitConfig

    names = ["fid1k_vgg", "kid1k_vgg", "id", "aed", "apd", "lmk", "consistency"]
    results = compute_metrics(names, tiny_generator, head_dataset, num_gen=2, batch=2, seed=0, vgg_size=48,
                              id_yaws=(), id_expressions=1, fit_config=FitConfig(rigid_iters=5, full_iters=10))
    assert list(results) == names
    flat = flat_results(results)
    assert flat["fid1k_vgg"] > 0 and math.isfinite(flat["kid1k_vgg"])
    assert results["fid1k_vgg"]["num_gen"] == 2 and results["fid1k_vgg"]["num_real"] == 2
    assert results["fid1k_vgg"]["feature_dim"] == 1472 and results["fid1k_vgg"]["seed"] == 0
    assert "id_views" not in flat and "id_expressions" in flat
    assert -1.0 <= flat["id"] <= 1.0 and 0.0 <= flat["id_detect_rate"] <= 1.0 and flat["id_num"] == 2
    assert 0.0 <= flat["transfer_detect_rate"] <= 1.0
    assert set(results["aed"]["results"]) == {"aed", "transfer_detect_rate", "transfer_num"}
    assert 0 < flat["consistency_coverage"] <= 1 and flat["consistency_l1"] >= 0
    assert json.loads(json.dumps(results, allow_nan=True))["id"]["metric"] == "id"
    # The data-set statistics were cached under NEXT3D_METRICS_CACHE.
    assert len(list(metrics_cache.glob("stats-vgg-*.npz"))) == 1
    with pytest.raises(MetricError, match="inception metrics need"):
        compute_metric("fid1k_inception", tiny_generator, head_dataset, num_gen=2)
