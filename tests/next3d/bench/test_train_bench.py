"""`next3d bench train`: the step time counts the regularisers at their intervals."""

import pytest


@pytest.mark.slow
def test_train_bench_quick_tiny():
    from next3d.bench import TOPICS
    from next3d.bench.train import run

    assert "train" in TOPICS
    res = run(["cpu"], quick=True, preset="tiny")["results"]["tiny/cpu"]
    ph = res["phase_s"]
    assert set(ph) == {"G_main", "G_reg", "D_main", "D_reg"} and all(v > 0 for v in ph.values())
    step = ph["G_main"] + ph["D_main"] + ph["G_reg"] / 4 + ph["D_reg"] / 16
    assert res["step_s"] == pytest.approx(step, rel=0.01, abs=2e-3)
    assert res["images_per_s"] == pytest.approx(res["batch"] / step, rel=0.02)
    assert sum(res["share"].values()) == pytest.approx(1.0, abs=0.01)
    assert res["peak_memory_mib"] >= 0 and res["mesh_condition"] == "normals"
