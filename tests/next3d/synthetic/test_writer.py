"""Writing a synthetic set: split parsing, determinism across worker counts, bad options."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from next3d.synthetic.render import SynthError
from next3d.synthetic.writer import item_split, parse_split, write_synthetic_set


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_parse_split():
    assert parse_split("train=0.9,test=0.1") == {"train": 0.9, "test": 0.1}
    assert parse_split("train=1") == {"train": 1.0, "test": 0.0}
    for bad, what in (("train=0.5", "add up to 1"), ("train=0.5,val=0.5", "expected train=F"),
                      ("train=x,test=0.5", "not a number"), ("train=1.5,test=-0.5", "outside"), ("", "add up")):
        with pytest.raises(SynthError, match=what) as err:
            parse_split(bad)
        assert "\n" not in str(err.value)
    splits = [item_split(0, i, {"train": 0.8, "test": 0.2}) for i in range(400)]
    assert 0.7 < splits.count("train") / 400 < 0.9


def test_workers_do_not_change_the_bytes(tmp_path, assets):
    one = write_synthetic_set(tmp_path / "one", 3, 32, seed=4, workers=1, progress=False)
    two = write_synthetic_set(tmp_path / "two", 3, 32, seed=4, workers=2, progress=False)
    assert one.count == two.count == 3 and one.train + one.test == 3
    d1, d2 = _digest(tmp_path / "one"), _digest(tmp_path / "two")
    assert len(d1) == 7 and d1 == d2  # dataset.json + 3 images + 3 ground-truth files
    labels = json.loads((tmp_path / "one" / "dataset.json").read_text())
    assert labels["head_model"] == "builtin" and labels["head_topology"] == assets.head_topology
    assert labels["source"]["seed"] == 4 and len(labels["items"]) == 3
    item = labels["items"][0]
    assert len(item["camera"]) == 25 and np.array(item["landmarks_2d"]).shape == (68, 2)
    assert item["appearance"]["hair"]["style"] in ("bald", "buzz", "short", "bob", "long", "cap")


def test_written_set_loads_with_ground_truth(tmp_path):
    from training.dataset import ImageDataset

    write_synthetic_set(tmp_path / "set.zip", 2, 32, seed=1, progress=False)
    ds = ImageDataset(tmp_path / "set.zip", split=None, load_ground_truth=True)
    sample = ds[1]
    gt = sample["ground_truth"]
    assert tuple(sample["image"].shape) == (3, 32, 32)
    assert gt["segmentation"].shape == (32, 32) and gt["depth"].shape == (32, 32)
    assert (np.asarray(gt["mask"]) == (np.asarray(gt["segmentation"]) > 0)).all()


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count 0: expected at least 1 image"),
    (["--count", "2", "--resolution", "17"], "--resolution 17: expected a multiple of 8"),
    (["--count", "2", "--resolution", "4096"], "--resolution 4096: expected a multiple of 8"),
    (["--count", "2", "--split", "train=0.7"], "--split 'train=0.7': the fractions must add up to 1"),
    (["--count", "2", "--split", "train:0.9"], "--split 'train:0.9': expected train=F,test=F"),
    (["--count", "2", "--workers", "0"], "--workers 0: expected 1..64"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    from next3d.cli import main

    result = CliRunner().invoke(main, ["dataset", "synth", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code != 0
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.output
    assert not (tmp_path / "x").exists()


def test_command_writes_a_set_and_a_summary(tmp_path):
    from next3d.cli import main

    result = CliRunner().invoke(main, ["dataset", "synth", "--out", str(tmp_path / "s"), "--count", "2",
                                       "--resolution", "32", "--seed", "3", "--split", "train=0.5,test=0.5"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 images" in result.output and "images/s" in result.output
    assert len(list((tmp_path / "s" / "images").iterdir())) == 2
