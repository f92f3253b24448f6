"""The generator benchmark topic, quick variant (tiny preset, CPU)."""

from __future__ import annotations

import torch

from next3d.bench import generator as bench_generator
from next3d.bench.generator import STAGES, StageTimer


def test_quick_run_reports_speed_and_stage_shares():
    out = bench_generator.run(["cpu"], quick=True)
    tiny = out["results"]["tiny"]
    assert list(out["results"]) == ["tiny"]
    assert tiny["output"] == 64 and 0.1 < tiny["parameters_m"] < 5
    rows = tiny["cpu"]
    assert [r["batch"] for r in rows] == [1, 2]
    for row in rows:
        assert row["seconds"] > 0
        assert abs(row["images_per_s"] - row["batch"] / row["seconds"]) < 1e-2 * row["images_per_s"] + 1e-3
        shares = row["stage_percent"]
        assert set(shares) == {name for name, _ in STAGES} | {"other"}
        # Every stage ran (the tiny mapping may round to zero) and the shares add up.
        assert all(shares[name] > 0 for name in ("texture", "planes", "mouth", "blending", "static", "render",
                                                  "superres"))
        assert abs(sum(shares.values()) - 100.0) < 0.5
        assert -5.0 < shares["other"] < 50.0


def test_stage_timer_hooks_accumulate_and_detach():
    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    timer = StageTimer(net, "cpu", stages=(("lin", ("0",)), ("act", ("1",))))
    net(torch.randn(2, 4))
    net(torch.randn(2, 4))
    totals = timer.totals()
    assert set(totals) == {"lin", "act"} and all(v > 0 for v in totals.values())
    timer.remove()
    timer.reset()
    net(torch.randn(2, 4))
    assert timer.totals() == {}
