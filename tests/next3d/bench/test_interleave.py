"""Interleaved side-by-side timing helpers and the --compare switch of `next3d bench`."""

import pytest
from click.testing import CliRunner

from next3d.bench.interleave import interleaved, summarize


def test_interleaved_runs_in_turn_and_summarize_gives_the_ratio():
    calls = []
    times = interleaved({"project": lambda: calls.append("a"), "published": lambda: calls.append("b")}, "cpu",
                        repeat=3, warmup=1)
    assert calls == ["a", "b"] * 4  # warm-up round, then A B A B A B
    assert [len(v) for v in times.values()] == [3, 3]
    s = summarize({"project": [1.0, 2.0, 3.0], "published": [3.0, 5.0, 9.0]}, per=4)
    assert s["project_s"] == 2.0 and s["published_s"] == 5.0 and s["ratio"] == 2.5
    assert s["ratio_per_repeat"] == [3.0, 2.5, 3.0]
    assert s["project_s_per_item"] == 0.5 and s["published_s_per_item"] == 1.25
    with pytest.raises(ValueError, match="repeat"):
        interleaved({"a": lambda: None}, "cpu", repeat=0)


def test_compare_is_refused_for_topics_without_it():
    from next3d.bench import compare_topics
    from next3d.cli.bench import bench

    assert set(compare_topics()) == {"generator", "video", "train"}
    result = CliRunner().invoke(bench, ["ops", "--compare", "published-loop"])
    assert result.exit_code != 0
    assert "--compare is not available for ops" in result.output
