"""The bad-input corpus for the commands added after `generate`: train, dataset, metrics, video,
reenact and fit. Same rules as test_bad_inputs.py: non-zero exit, one short `Error:` line that
names the problem, no traceback, nothing written. Every case stops at validation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from next3d.cli import main

from .test_bad_inputs import check_clean_failure


def _files(tmp):
    (tmp / "afile.txt").write_text("not a data set")
    (tmp / "emptydir").mkdir()
    (tmp / "notzip.npz").write_bytes(b"this is not a zip archive")
    np.savez(tmp / "objects.npz", a=np.array([{"x": 1}], dtype=object))
    (tmp / "notjson.json").write_text("{frames: ")
    return tmp


TRAIN = ["train", "--preset", "tiny", "--out", "{tmp}/runs"]
SYNTH = ["dataset", "synth", "--out", "{tmp}/set"]
REENACT = ["reenact", "--network", "random:tiny", "--seed", "0", "--out", "{tmp}/r.mp4"]
VIDEO = ["video", "--network", "random:tiny", "--out", "{tmp}/v.mp4"]

CASES = [
    ("train-data-missing", TRAIN + ["--data", "{tmp}/nothere"], ["nothere", "no such folder"]),
    ("train-data-file", TRAIN + ["--data", "{tmp}/afile.txt"], ["afile.txt", "not a folder"]),
    ("train-data-empty", TRAIN + ["--data", "{tmp}/emptydir"], ["emptydir", "dataset.json"]),
    ("train-set-unknown", TRAIN + ["--data", "{tmp}/emptydir", "--set", "bogus=1"], ["unknown config key", "bogus"]),
    ("train-set-nan", TRAIN + ["--data", "{tmp}/emptydir", "--set", "glr=nan"], ["glr", "nan"]),
    ("train-set-negative", TRAIN + ["--data", "{tmp}/emptydir", "--set", "warmup_kimg=-1"], ["warmup_kimg", "negative"]),
    ("train-set-net", TRAIN + ["--data", "{tmp}/emptydir", "--set", "warmup_perceptual_net=resnet"],
     ["warmup_perceptual_net"]),
    ("train-preset-bogus", ["train", "--preset", "huge", "--data", "{tmp}/emptydir", "--out", "{tmp}/r"], ["--preset"]),
    ("train-resume-empty", TRAIN + ["--data", "{tmp}/emptydir", "--resume", "{tmp}/emptydir"], ["emptydir"]),
    ("synth-count-zero", SYNTH + ["--count", "0"], ["--count", "at least 1"]),
    ("synth-res-odd", SYNTH + ["--count", "2", "--resolution", "30"], ["--resolution", "multiple of 8"]),
    ("synth-split-range", SYNTH + ["--count", "2", "--split", "train=2"], ["--split", "outside"]),
    ("check-missing", ["dataset", "check", "{tmp}/nothere"], ["does not exist"]),
    ("metrics-data-missing", ["metrics", "--network", "random:tiny", "--data", "{tmp}/nothere"], ["--data"]),
    ("video-suffix", VIDEO[:-1] + ["{tmp}/v.avi", "--seeds", "0"], [".mp4", "--frames-dir"]),
    ("video-seeds-text", VIDEO + ["--seeds", "x"], ["seeds", "'x'"]),
    ("video-frames-zero", VIDEO + ["--seeds", "0", "--frames", "0"], ["--frames"]),
    ("reenact-driver-missing", REENACT + ["--driver", "{tmp}/nothere.npz"], ["nothere.npz", "no such file"]),
    ("reenact-driver-notzip", REENACT + ["--driver", "{tmp}/notzip.npz"], ["notzip.npz", "not an .npz"]),
    ("reenact-driver-pickle", REENACT + ["--driver", "{tmp}/objects.npz"], ["objects.npz", "object arrays"]),
    ("reenact-driver-json", REENACT + ["--driver", "{tmp}/notjson.json"], ["notjson.json", "json"]),
    ("fit-resolution", ["fit", "{tmp}/afile.txt", "--out", "{tmp}/f", "--resolution", "7"], ["--resolution"]),
]


@pytest.mark.parametrize("case_id,argv,needles", CASES, ids=[c[0] for c in CASES])
def test_command_bad_input_fails_cleanly(case_id, argv, needles, tmp_path, monkeypatch):
    _files(tmp_path)
    monkeypatch.setenv("NEXT3D_OPS", "ref")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    check_clean_failure(res, needles)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "a failed run wrote files"
