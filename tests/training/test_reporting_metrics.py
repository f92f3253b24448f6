"""Reporter: results of `training.metrics.compute_metric` land in metrics.jsonl under their own keys."""

import json
import types

from training.reporting import Reporter


def test_each_metric_result_gets_its_own_key(tmp_path):
    calls = []

    def fake_metric(name, G, dataset):
        calls.append(name)
        value = {"fid1k_vgg": 12.5, "kid1k_vgg": 0.25}[name]
        return {"metric": name, "results": {name: value, "seconds": 3.0}, "num_gen": 1000}

    run_config = types.SimpleNamespace(training=types.SimpleNamespace(metric_images=0))
    rep = Reporter(tmp_path, run_config, metrics=["fid1k_vgg", "kid1k_vgg"], tensorboard=False,
                   metric_fn=fake_metric)
    rep.dataset = object()
    built = types.SimpleNamespace(G_ema=object())
    state = types.SimpleNamespace(cur_nimg=2000)
    rep._metrics(built, state, "snapshot-000002000.n3d")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert calls == ["fid1k_vgg", "kid1k_vgg"]
    assert len(rows) == 1
    row = rows[0]
    assert row["kimg"] == 2.0 and row["snapshot"] == "snapshot-000002000.n3d"
    assert row["fid1k_vgg"] == 12.5 and row["kid1k_vgg"] == 0.25
    assert row["fid1k_vgg/seconds"] == 3.0 and row["kid1k_vgg/seconds"] == 3.0
    assert "metric" not in row and "results" not in row
