"""The bad-input corpus: every command, fed malformed, absurd and hostile inputs, must fail with
a non-zero exit code and a short message (one `Error:` line) naming the problem, never a
traceback; no payload of a hostile file may run; no earlier output may be damaged.

Each case is (command line, expected words in the message). `{tmp}` in an argument is the
case's temporary folder; `{evil_pkl}`, `{marker}`, ... name files made by `_files`. The
cases stop before any real work (validation happens first), so the whole corpus runs in
seconds. Commands added by other issues append their own cases to CASES (see README,
"Errors").
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hardening.corpus import (deep_json, evil_pickle_bytes, flame_folder_with, npy_declaring, safetensors_bytes,
                              tiny_config, write_n3d)
from next3d.cli import main

GEN = ["generate", "--network", "random:tiny", "--seeds", "0", "--out", "{tmp}/out", "--views", "1"]
EXPORT = ["flame", "export", "--out", "{tmp}/head.obj"]
RENDER = ["flame", "render", "--out", "{tmp}/head.png", "--size", "32"]


def _cfg(**changes):
    cfg = tiny_config()
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def _files(tmp: Path) -> dict:
    """Every hostile/malformed file a case may name, built lazily by name."""
    marker = tmp / "PAYLOAD_RAN"
    return {
        "marker": marker,
        "evil_pkl": lambda: (tmp / "evil.pkl").write_bytes(evil_pickle_bytes(marker, {"G_ema": 1})),
        "not_pkl": lambda: (tmp / "text.pkl").write_text("hello, not a pickle"),
        "truncated_pkl": lambda: (tmp / "cut.pkl").write_bytes(pickle.dumps({"G": list(range(100))})[:20]),
        "evil_n3d": lambda: write_n3d(tmp / "evil.n3d", members={"G.safetensors": evil_pickle_bytes(marker)}),
        "deep_n3d": lambda: write_n3d(tmp / "deep.n3d", raw_config=deep_json(100000)),
        "notjson_n3d": lambda: write_n3d(tmp / "notjson.n3d", raw_config=b"{not json"),
        "nan_n3d": lambda: write_n3d(tmp / "nan.n3d", raw_config=json.dumps(
            {"format": "next3d-checkpoint", "format_version": 1, "generator": {"z_dim": 32},
             "groups": {}}).replace("32", "NaN").encode()),
        "nanfloat_n3d": lambda: write_n3d(tmp / "nanf.n3d", config=_cfg(render__ray_start=float("nan"))),
        "huge_res_n3d": lambda: write_n3d(tmp / "hugeres.n3d", config=_cfg(render__neural_resolution=1 << 20)),
        "huge_plane_n3d": lambda: write_n3d(tmp / "hugeplane.n3d", config=_cfg(static__resolution=1 << 16)),
        "huge_samples_n3d": lambda: write_n3d(tmp / "samples.n3d", config=_cfg(render__samples_per_ray=10 ** 9)),
        "huge_params_n3d": lambda: write_n3d(tmp / "params.n3d", config=_cfg(channel_base=1 << 22, channel_max=4096,
                                                                               w_dim=8192, z_dim=8192)),
        "neg_n3d": lambda: write_n3d(tmp / "neg.n3d", config=_cfg(render__importance_samples=-5)),
        "str_n3d": lambda: write_n3d(tmp / "str.n3d", config=_cfg(z_dim="512")),
        "list_generator_n3d": lambda: write_n3d(tmp / "listgen.n3d", config=[1, 2, 3]),
        "list_section_n3d": lambda: write_n3d(tmp / "listsec.n3d", config=_cfg(render=[64, 48])),
        "list_groups_n3d": lambda: write_n3d(tmp / "listgroups.n3d", groups=["G"]),
        "list_entry_n3d": lambda: write_n3d(tmp / "listentry.n3d", groups={"G": ["G.safetensors"]}),
        "bad_tensors_n3d": lambda: write_n3d(tmp / "badtensors.n3d",
                                             groups={"G": {"file": "G.safetensors", "tensors": {"w": "float32"}}}),
        "fresh_n3d": lambda: write_n3d(tmp / "fresh.n3d", fresh_modules={"G": "mouth"}),
        "version_n3d": lambda: write_n3d(tmp / "version.n3d", format_version=99),
        "traversal_n3d": lambda: write_n3d(tmp / "traversal.n3d", groups={
            "G": {"file": "../../../etc/passwd", "tensors": {}}}),
        "abs_member_n3d": lambda: write_n3d(tmp / "abs.n3d", groups={"G": {"file": "/etc/passwd", "tensors": {}}}),
        "lying_st_n3d": lambda: write_n3d(tmp / "lying.n3d", groups={
            "G": {"file": "G.safetensors", "tensors": {"w": ["float32", [1000000, 1000000]]}}},
            members={"G.safetensors": safetensors_bytes(
                {"w": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 4 * 10 ** 12]}}, b"\0" * 8)}),
        "lying_len_n3d": lambda: write_n3d(tmp / "lyinglen.n3d", members={
            "G.safetensors": (10 ** 12).to_bytes(8, "little") + b"{}"}),
        "bomb_n3d": lambda: write_n3d(tmp / "bomb.n3d", raw_config=b"{" + b" " * (24 << 20) + b"}",
                                      compress_config=True),
        "missing_member_n3d": lambda: write_n3d(tmp / "nomember.n3d", members={}),
        "truncated_n3d": lambda: (tmp / "trunc.n3d").write_bytes(
            write_n3d(tmp / "full.n3d").read_bytes()[:-30]),
        "pkl_as_n3d": lambda: (tmp / "pickle.n3d").write_bytes(evil_pickle_bytes(marker)),
        "list_disc_n3d": lambda: write_n3d(tmp / "listdisc.n3d", discriminator=[1]),
        "list_extra_n3d": lambda: write_n3d(tmp / "listextra.n3d", extra=["x"]),
        "config_list_n3d": lambda: write_n3d(tmp / "cfglist.n3d", raw_config=b"[1, 2]"),
        "no_format_n3d": lambda: write_n3d(tmp / "nofmt.n3d", raw_config=b'{"generator": {}}'),
        "neg_shape_n3d": lambda: write_n3d(tmp / "negshape.n3d", groups={
            "G": {"file": "G.safetensors", "tensors": {"w": ["float32", [-2]]}}}),
        "st_notjson_n3d": lambda: write_n3d(tmp / "stjson.n3d", members={
            "G.safetensors": (5).to_bytes(8, "little") + b"{abc}"}),
        "st_dtype_n3d": lambda: write_n3d(tmp / "stdtype.n3d", members={"G.safetensors": safetensors_bytes(
            {"w": {"dtype": "PYOBJ", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)}),
        "st_offsets_n3d": lambda: write_n3d(tmp / "stoff.n3d", members={"G.safetensors": safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8)}),
        "st_short_n3d": lambda: write_n3d(tmp / "stshort.n3d", members={"G.safetensors": b"\x01"}),
        "index_mismatch_n3d": lambda: write_n3d(tmp / "mismatch.n3d", groups={
            "G": {"file": "G.safetensors", "tensors": {"other": ["float32", [2]]}}}),
        "wrong_weights_n3d": lambda: write_n3d(tmp / "wrongw.n3d"),
        "bool_n3d": lambda: write_n3d(tmp / "bool.n3d", config=_cfg(z_dim=True)),
        "unknown_key_n3d": lambda: write_n3d(tmp / "unknown.n3d", config=_cfg(render__sample_count=5)),
        "a_obj": lambda: (tmp / "old.obj").write_text("v 0 0 0"),
        "a_png": lambda: (tmp / "old.png").write_bytes(b"\x89PNG old"),
        "empty_dir": lambda: (tmp / "emptydir").mkdir(),
        "a_file": lambda: (tmp / "afile").write_text("x"),
        "fifo_obj": lambda: os.mkfifo(tmp / "fifo.obj"),
        "evil_flame": lambda: _evil_flame(tmp, marker),
        "flame_none_count": lambda: flame_folder_with(tmp, "flame_none", num_shape=None),
        "flame_str_count": lambda: flame_folder_with(tmp, "flame_str", num_expression="ten"),
        "flame_nan": lambda: flame_folder_with(tmp, "flame_nan", v_template=np.full((4, 3), np.nan)),
        "flame_nan_full": lambda: _flame_nan_vertices(tmp),
        "flame_ragged": lambda: flame_folder_with(tmp, "flame_ragged", weights="not an array"),
        "flame_big_npy": lambda: _flame_big_npy(tmp),
        "flame_big_sparse": lambda: _flame_big_sparse(tmp),
    }


def _evil_flame(tmp: Path, marker: Path) -> Path:
    folder = flame_folder_with(tmp, "flame_evil")
    (folder / "generic_model.pkl").write_bytes(evil_pickle_bytes(marker, {"v_template": 1}))
    return folder


def _flame_nan_vertices(tmp: Path) -> Path:
    from next3d.flame.builtin import builtin_head_dir
    from next3d.flame.pickles import load_model_pickle

    v = load_model_pickle(builtin_head_dir() / "generic_model.pkl")["v_template"].copy()
    v[3] = np.nan
    return flame_folder_with(tmp, "flame_nan_full", v_template=v)


def _flame_big_npy(tmp: Path) -> Path:
    folder = flame_folder_with(tmp, "flame_big_npy")
    npy_declaring(folder / "landmark_embedding.npy", (1000000, 1000000))
    return folder


def _flame_big_sparse(tmp: Path) -> Path:
    from hardening.corpus import csc_matrix
    from next3d.flame.builtin import builtin_head_dir
    from next3d.flame.pickles import load_model_pickle

    folder = flame_folder_with(tmp, "flame_big_sparse")
    model = load_model_pickle(builtin_head_dir() / "generic_model.pkl")
    model["J_regressor"] = csc_matrix((1000000, 1000000))
    data = pickle.dumps(model, protocol=2).replace(b"hardening.corpus\ncsc_matrix", b"scipy.sparse._csc\ncsc_matrix")
    (folder / "generic_model.pkl").write_bytes(data)
    return folder


# (id, argv, words the message must contain (case-insensitive), env)
CASES = [
    # -- numbers: NaN / inf / absurd / out of range, refused at the option with its name
    ("gen-trunc-nan", GEN + ["--trunc", "nan"], ["--trunc", "finite"], {}),
    ("gen-trunc-inf", GEN + ["--trunc", "inf"], ["--trunc", "finite"], {}),
    ("gen-trunc-overflow", GEN + ["--trunc", "-1e308"], ["--trunc", "range"], {}),
    ("gen-trunc-range", GEN + ["--trunc", "5"], ["--trunc", "range"], {}),
    ("gen-trunc-text", GEN + ["--trunc", "abc"], ["--trunc", "not a number"], {}),
    ("gen-neck-inf", GEN + ["--neck-yaw", "inf"], ["--neck-yaw"], {}),
    ("gen-neck-huge", GEN + ["--neck-yaw", "1e308"], ["--neck-yaw", "range"], {}),
    ("gen-neck-nan", GEN + ["--neck-yaw", "nan"], ["--neck-yaw"], {}),
    ("gen-jaw-nan", GEN + ["--jaw-open", "nan"], ["--jaw-open"], {}),
    ("gen-gaze-ninf", GEN + ["--gaze-yaw", "-inf"], ["--gaze-yaw"], {}),
    ("gen-shape-nan", GEN + ["--shape", "1,nan"], ["--shape", "finite"], {}),
    ("gen-shape-huge", GEN + ["--shape", "1e9"], ["--shape", "finite"], {}),
    ("gen-shape-text", GEN + ["--shape", "1,x"], ["--shape", "comma-separated"], {}),
    ("gen-expr-inf", GEN + ["--expression", "inf"], ["--expression"], {}),
    ("gen-shape-toomany", GEN + ["--shape", ",".join(["0.1"] * 500)], ["--shape", "components"], {}),
    ("gen-yawrange-nan", GEN + ["--yaw-range", "nan"], ["--yaw-range"], {}),
    ("gen-pitch-range", GEN + ["--pitch", "5"], ["--pitch", "range"], {}),
    ("gen-pitch-nan", GEN + ["--pitch", "nan"], ["--pitch"], {}),
    ("gen-level-nan", GEN + ["--shapes", "--shape-level", "nan"], ["--shape-level"], {}),
    ("gen-level-inf", GEN + ["--shapes", "--shape-level", "inf"], ["--shape-level"], {}),
    # -- resource exhaustion, refused before allocating
    ("gen-neural-res-huge", GEN + ["--neural-res", "100000"], ["--neural-res"], {}),
    ("gen-neural-res-npot", GEN + ["--neural-res", "48"], ["neural_resolution", "power of two"], {}),
    ("gen-neural-res-tiny", GEN + ["--neural-res", "2"], ["--neural-res"], {}),
    ("gen-shape-res-huge", GEN + ["--shapes", "--shape-res", "100000"], ["--shape-res"], {}),
    ("gen-shape-res-memory", GEN + ["--shapes", "--shape-res", "1024"], ["memory limit", "--shape-res"],
     {"NEXT3D_MEMORY_LIMIT": "1G"}),
    ("gen-render-memory", GEN + ["--neural-res", "1024", "--batch", "64"], ["memory limit", "--neural-res"],
     {"NEXT3D_MEMORY_LIMIT": "1G"}),
    ("gen-memory-limit-bad", GEN + ["--neural-res", "64"], ["NEXT3D_MEMORY_LIMIT"], {"NEXT3D_MEMORY_LIMIT": "lots"}),
    ("gen-batch-zero", GEN + ["--batch", "0"], ["--batch"], {}),
    ("gen-batch-huge", GEN + ["--batch", "100000000"], ["--batch"], {}),
    ("gen-views-zero", GEN + ["--views", "0"], ["--views"], {}),
    ("gen-views-huge", GEN + ["--views", "1000"], ["--views"], {}),
    ("gen-cutoff-zero", GEN + ["--trunc-cutoff", "0"], ["--trunc-cutoff"], {}),
    ("gen-cutoff-neg", GEN + ["--trunc-cutoff", "-3"], ["--trunc-cutoff"], {}),
    ("gen-noise-bogus", GEN + ["--noise-mode", "bogus"], ["--noise-mode"], {}),
    ("gen-device-bogus", GEN + ["--device", "tpu"], ["--device"], {}),
    # -- seeds
    ("gen-seeds-empty", ["generate", "--network", "random:tiny", "--seeds", "", "--out", "{tmp}/o"], ["seeds"], {}),
    ("gen-seeds-text", ["generate", "--network", "random:tiny", "--seeds", "a-b", "--out", "{tmp}/o"], ["seeds"], {}),
    ("gen-seeds-negative", ["generate", "--network", "random:tiny", "--seeds", "-3", "--out", "{tmp}/o"], ["seeds"], {}),
    ("gen-seeds-backwards", ["generate", "--network", "random:tiny", "--seeds", "5-1", "--out", "{tmp}/o"],
     ["backwards"], {}),
    ("gen-seeds-toolarge", ["generate", "--network", "random:tiny", "--seeds", "99999999999", "--out", "{tmp}/o"],
     ["too large"], {}),
    ("gen-seeds-range-huge", ["generate", "--network", "random:tiny", "--seeds", "0-99999999", "--out", "{tmp}/o"],
     ["at most"], {}),
    ("gen-seeds-two-million", ["generate", "--network", "random:tiny", "--seeds",
                               "0-999999,1000000-1999999,2000000-2000001", "--out", "{tmp}/o"], ["more than"], {}),
    ("gen-seeds-hours", ["generate", "--network", "random:tiny", "--seeds", "0-20000", "--out", "{tmp}/o"],
     ["--yes", "20001"], {}),
    # -- networks: missing, wrong kind, malformed, hostile
    ("gen-net-missing", ["generate", "--network", "{tmp}/nope.n3d", "--seeds", "0", "--out", "{tmp}/o"],
     ["no such file"], {}),
    ("gen-net-preset", ["generate", "--network", "random:huge", "--seeds", "0", "--out", "{tmp}/o"],
     ["unknown preset"], {}),
    ("gen-net-pkl", ["generate", "--network", "{evil_pkl}", "--seeds", "0", "--out", "{tmp}/o"], ["convert"], {}),
    ("gen-net-pickle-n3d", ["generate", "--network", "{pkl_as_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["pickle", "next3d convert"], {}),
    ("gen-net-evil-member", ["generate", "--network", "{evil_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["G.safetensors"], {}),
    ("gen-net-deep", ["generate", "--network", "{deep_n3d}", "--seeds", "0", "--out", "{tmp}/o"], ["nested"], {}),
    ("gen-net-notjson", ["generate", "--network", "{notjson_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["not valid json"], {}),
    ("gen-net-nan-token", ["generate", "--network", "{nan_n3d}", "--seeds", "0", "--out", "{tmp}/o"], ["nan"], {}),
    ("gen-net-nan-float", ["generate", "--network", "{nanfloat_n3d}", "--seeds", "0", "--out", "{tmp}/o"], ["nan"], {}),
    ("gen-net-huge-res", ["generate", "--network", "{huge_res_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["neural_resolution", "at most"], {}),
    ("gen-net-huge-plane", ["generate", "--network", "{huge_plane_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["resolution", "at most"], {}),
    ("gen-net-huge-samples", ["generate", "--network", "{huge_samples_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["samples_per_ray", "at most"], {}),
    ("gen-net-huge-params", ["generate", "--network", "{huge_params_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["parameters"], {"NEXT3D_MEMORY_LIMIT": "4G"}),
    ("gen-net-negative", ["generate", "--network", "{neg_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["importance_samples", "negative"], {}),
    ("gen-net-string", ["generate", "--network", "{str_n3d}", "--seeds", "0", "--out", "{tmp}/o"], ["z_dim"], {}),
    ("gen-net-list-generator", ["generate", "--network", "{list_generator_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["generator", "expected an object"], {}),
    ("gen-net-list-section", ["generate", "--network", "{list_section_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["render"], {}),
    ("gen-net-list-groups", ["generate", "--network", "{list_groups_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["groups"], {}),
    ("gen-net-list-entry", ["generate", "--network", "{list_entry_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["groups['g']"], {}),
    ("gen-net-bad-tensors", ["generate", "--network", "{bad_tensors_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["tensors"], {}),
    ("gen-net-fresh", ["generate", "--network", "{fresh_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["fresh_modules"], {}),
    ("gen-net-version", ["generate", "--network", "{version_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["version 99"], {}),
    ("gen-net-traversal", ["generate", "--network", "{traversal_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["not allowed"], {}),
    ("gen-net-abs-member", ["generate", "--network", "{abs_member_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["not allowed"], {}),
    ("gen-net-lying-header", ["generate", "--network", "{lying_st_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["declares", "1000000"], {}),
    ("gen-net-lying-length", ["generate", "--network", "{lying_len_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["header declares"], {}),
    ("gen-net-zip-bomb", ["generate", "--network", "{bomb_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["config.json"], {}),
    ("gen-net-missing-member", ["generate", "--network", "{missing_member_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["missing"], {}),
    ("gen-net-truncated", ["generate", "--network", "{truncated_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["corrupt"], {}),
    ("gen-net-empty-dir", ["generate", "--network", "{empty_dir}", "--seeds", "0", "--out", "{tmp}/o"],
     ["config.json", "missing"], {}),
    # -- output folders
    ("gen-out-file", ["generate", "--network", "random:tiny", "--seeds", "0", "--out", "{a_file}"],
     ["--out", "is a file"], {}),
    ("gen-out-under-file", ["generate", "--network", "random:tiny", "--seeds", "0", "--out", "{a_file}/sub"],
     ["--out"], {}),
    ("gen-out-device", ["generate", "--network", "random:tiny", "--seeds", "0", "--out", "/dev/null"],
     ["not a folder"], {}),
    # -- FLAME folders: malformed and hostile
    ("gen-flame-missing", GEN + ["--flame-dir", "{tmp}/noflame"], ["does not exist"], {}),
    ("exp-flame-evil", EXPORT + ["--flame-dir", "{evil_flame}"], ["refusing", ".exec"], {}),
    ("exp-flame-none-count", EXPORT + ["--flame-dir", "{flame_none_count}"], ["num_shape", "integer"], {}),
    ("exp-flame-str-count", EXPORT + ["--flame-dir", "{flame_str_count}"], ["num_expression", "integer"], {}),
    ("exp-flame-nan", EXPORT + ["--flame-dir", "{flame_nan}"], ["v_template"], {}),
    ("exp-flame-nan-full", EXPORT + ["--flame-dir", "{flame_nan_full}"], ["v_template", "nan"], {}),
    ("exp-flame-ragged", EXPORT + ["--flame-dir", "{flame_ragged}"], ["weights"], {}),
    ("exp-flame-big-npy", EXPORT + ["--flame-dir", "{flame_big_npy}"], ["landmark_embedding.npy", "declares"], {}),
    ("exp-flame-big-sparse", EXPORT + ["--flame-dir", "{flame_big_sparse}"], ["sparse", "memory limit"], {}),
    ("exp-flame-empty", EXPORT + ["--flame-dir", "{empty_dir}"], ["no model file"], {}),
    ("exp-builtin-unwritable", EXPORT, ["built-in head", "NEXT3D_BUILTIN_HEAD_DIR"],
     {"NEXT3D_BUILTIN_HEAD_DIR": "{a_file}/cache"}),
    # -- flame export outputs
    ("exp-out-png", ["flame", "export", "--out", "{tmp}/head.png", "--preview"], [".obj"], {}),
    ("exp-out-dir", ["flame", "export", "--out", "{empty_dir}"], ["--out"], {}),
    ("exp-out-missing-dir", ["flame", "export", "--out", "{tmp}/nodir/head.obj"], ["does not exist"], {}),
    ("exp-out-fifo", ["flame", "export", "--out", "{fifo_obj}", "--force"], ["not a regular file"], {}),
    ("exp-jaw-nan", EXPORT + ["--jaw-open", "nan"], ["--jaw-open"], {}),
    ("exp-neck-inf", EXPORT + ["--neck-yaw", "inf"], ["--neck-yaw"], {}),
    ("exp-shape-toomany", EXPORT + ["--shape", ",".join(["0.1"] * 500)], ["--shape", "components"], {}),
    # -- flame render
    ("ren-ext", ["flame", "render", "--out", "{tmp}/head.xyz"], [".xyz"], {}),
    ("ren-size-zero", RENDER[:-1] + ["0"], ["--size"], {}),
    ("ren-size-huge", RENDER[:-1] + ["100000"], ["--size"], {}),
    ("ren-yaw-nan", RENDER + ["--yaw", "nan"], ["--yaw"], {}),
    ("ren-yaw-inf", RENDER + ["--yaw", "inf"], ["--yaw"], {}),
    ("ren-pitch-range", RENDER + ["--pitch", "2"], ["--pitch"], {}),
    ("ren-out-dir", ["flame", "render", "--out", "{empty_dir}"], ["--out"], {}),
    ("ren-out-missing-dir", ["flame", "render", "--out", "{tmp}/nodir/x.png"], ["does not exist"], {}),
    ("ren-out-device", ["flame", "render", "--out", "/dev/null", "--force"], ["/dev/null"], {}),
    ("ren-expr-nan", RENDER + ["--expression", "nan"], ["--expression"], {}),
    # -- convert
    ("conv-evil", ["convert", "{evil_pkl}", "{tmp}/o.n3d"], ["refused", ".exec"], {}),
    ("conv-not-pickle", ["convert", "{not_pkl}", "{tmp}/o.n3d"], ["pickle"], {}),
    ("conv-truncated", ["convert", "{truncated_pkl}", "{tmp}/o.n3d"], ["pickle"], {}),
    ("conv-zip", ["convert", "{truncated_n3d}", "{tmp}/o.n3d"], [], {}),
    ("conv-same-file", ["convert", "{evil_pkl}", "{evil_pkl}", "--force"], ["also an input"], {}),
    ("conv-out-missing-dir", ["convert", "{evil_pkl}", "{tmp}/nodir/o.n3d"], ["does not exist"], {}),
    ("conv-out-exists", ["convert", "{evil_pkl}", "{a_file}"], ["--force"], {}),
    ("conv-out-device", ["convert", "{evil_pkl}", "/dev/null", "--force"], ["not a regular file"], {}),
    ("conv-missing", ["convert", "{tmp}/nope.pkl", "{tmp}/o.n3d"], ["does not exist"], {}),
    # -- bench: outputs checked before the benchmark runs
    ("bench-out-missing-dir", ["bench", "flame", "--quick", "--out", "{tmp}/nodir/r.json"], ["does not exist"], {}),
    ("bench-out-dir", ["bench", "flame", "--quick", "--out", "{empty_dir}"], ["--out"], {}),
    ("bench-out-exists", ["bench", "flame", "--quick", "--out", "{a_file}"], ["--force"], {}),
    ("bench-topic", ["bench", "nonsense"], ["nonsense"], {}),
    ("bench-device", ["bench", "flame", "--device", "tpu"], ["--device"], {}),
    # -- more numbers and counts
    ("gen-seeds-blank-part", ["generate", "--network", "random:tiny", "--seeds", "0,,1", "--out", "{tmp}/o"],
     ["seeds"], {}),
    ("gen-seeds-open-range", ["generate", "--network", "random:tiny", "--seeds", "1-", "--out", "{tmp}/o"],
     ["seeds"], {}),
    ("gen-seeds-float", ["generate", "--network", "random:tiny", "--seeds", "1.5", "--out", "{tmp}/o"],
     ["seeds"], {}),
    ("gen-views-negative", GEN + ["--views", "-1"], ["--views"], {}),
    ("gen-batch-negative", GEN + ["--batch", "-4"], ["--batch"], {}),
    ("gen-shape-res-zero", GEN + ["--shapes", "--shape-res", "0"], ["--shape-res"], {}),
    ("gen-neural-res-zero", GEN + ["--neural-res", "0"], ["--neural-res"], {}),
    ("gen-neural-res-100", GEN + ["--neural-res", "100"], ["neural_resolution", "power of two"], {}),
    ("gen-neural-res-text", GEN + ["--neural-res", "big"], ["--neural-res"], {}),
    ("gen-yawrange-negative", GEN + ["--yaw-range", "-1"], ["--yaw-range"], {}),
    ("gen-yawrange-huge", GEN + ["--yaw-range", "10"], ["--yaw-range"], {}),
    ("gen-pitch-ninf", GEN + ["--pitch", "-inf"], ["--pitch"], {}),
    ("gen-trunc-1e309", GEN + ["--trunc", "1e309"], ["--trunc", "finite"], {}),
    ("gen-trunc-empty", GEN + ["--trunc", ""], ["--trunc"], {}),
    ("gen-gaze-range", GEN + ["--gaze-yaw", "4"], ["--gaze-yaw", "range"], {}),
    ("gen-jaw-range", GEN + ["--jaw-open", "100"], ["--jaw-open", "range"], {}),
    ("gen-neck-range", GEN + ["--neck-yaw", "-10"], ["--neck-yaw", "range"], {}),
    ("gen-expr-separator", GEN + ["--expression", "1;2"], ["--expression"], {}),
    ("gen-shape-range", GEN + ["--shape", "21"], ["--shape", "finite"], {}),
    ("gen-expr-range", GEN + ["--expression", "0,-21"], ["--expression", "value 2"], {}),
    ("gen-flame-dir-file", GEN + ["--flame-dir", "{a_file}"], ["--flame-dir"], {}),
    ("gen-level-text", GEN + ["--shapes", "--shape-level", "high"], ["--shape-level"], {}),
    # -- more hostile checkpoints
    ("gen-net-list-discriminator", ["generate", "--network", "{list_disc_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["discriminator"], {}),
    ("gen-net-list-extra", ["generate", "--network", "{list_extra_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["extra"], {}),
    ("gen-net-config-list", ["generate", "--network", "{config_list_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["does not describe a next3d checkpoint"], {}),
    ("gen-net-no-format", ["generate", "--network", "{no_format_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["format"], {}),
    ("gen-net-negative-shape", ["generate", "--network", "{neg_shape_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["tensors['w']"], {}),
    ("gen-net-st-not-json", ["generate", "--network", "{st_notjson_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["header"], {}),
    ("gen-net-st-dtype", ["generate", "--network", "{st_dtype_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["malformed"], {}),
    ("gen-net-st-offsets", ["generate", "--network", "{st_offsets_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["declares"], {}),
    ("gen-net-st-short", ["generate", "--network", "{st_short_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["too short"], {}),
    ("gen-net-index-mismatch", ["generate", "--network", "{index_mismatch_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["does not match its index"], {}),
    ("gen-net-wrong-weights", ["generate", "--network", "{wrong_weights_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["do not fit"], {}),
    ("gen-net-bool-int", ["generate", "--network", "{bool_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["z_dim"], {}),
    ("gen-net-unknown-key", ["generate", "--network", "{unknown_key_n3d}", "--seeds", "0", "--out", "{tmp}/o"],
     ["unknown config key", "render.sample_count"], {}),
    # -- more outputs
    ("exp-out-no-suffix", ["flame", "export", "--out", "{tmp}/head"], [".obj"], {}),
    ("exp-out-exists", ["flame", "export", "--out", "{a_obj}"], ["--force"], {}),
    ("ren-size-small", RENDER[:-1] + ["8"], ["--size"], {}),
    ("ren-size-text", RENDER[:-1] + ["big"], ["--size"], {}),
    ("ren-out-exists", ["flame", "render", "--out", "{a_png}"], ["--force"], {}),
    ("bench-out-device", ["bench", "flame", "--quick", "--out", "/dev/null", "--force"], ["not a regular file"], {}),
    # -- environment
    ("info-ops-bogus", ["info"], ["NEXT3D_OPS"], {"NEXT3D_OPS": "bogus"}),
    ("unknown-command", ["frobnicate"], ["frobnicate"], {}),
]
if os.geteuid() != 0:  # root ignores permission bits
    CASES += [
        ("gen-out-readonly", ["generate", "--network", "random:tiny", "--seeds", "0", "--out", "{readonly}/o"],
         ["--out"], {}),
        ("exp-out-readonly", ["flame", "export", "--out", "{readonly}/h.obj"], ["not writable"], {}),
    ]


def _expand(value: str, tmp: Path, files: dict) -> str:
    if "{tmp}" in value:
        value = value.replace("{tmp}", str(tmp))
    for name, make in files.items():
        token = "{" + name + "}"
        if token in value:
            if name == "readonly":
                continue
            if callable(make):
                result = make()
                files[name] = result if isinstance(result, Path) else _made_path(tmp, name)
            value = value.replace(token, str(files[name]))
    if "{readonly}" in value:
        ro = tmp / "readonly"
        ro.mkdir(exist_ok=True)
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        value = value.replace("{readonly}", str(ro))
    return value


_NAMES = {"a_obj": "old.obj", "a_png": "old.png", "evil_pkl": "evil.pkl", "not_pkl": "text.pkl", "truncated_pkl": "cut.pkl", "truncated_n3d": "trunc.n3d",
          "pkl_as_n3d": "pickle.n3d", "empty_dir": "emptydir", "a_file": "afile", "fifo_obj": "fifo.obj"}


def _made_path(tmp: Path, name: str) -> Path:
    return tmp / _NAMES[name]


def check_clean_failure(res, needles, marker: Path = None):
    """Exit code != 0, no traceback, one `Error:` line naming the problem, no payload run."""
    out = res.output
    assert res.exit_code != 0, f"exit 0 for a bad input:\n{out}"
    assert isinstance(res.exception, SystemExit), f"an exception escaped: {res.exception!r}\n{out}"
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip() and "it/s]" not in ln and "img/s]" not in ln
             and "s/img]" not in ln]
    errors = [ln for ln in lines if ln.startswith("Error")]
    assert len(errors) == 1, f"expected one Error line:\n{out}"
    assert len(lines) <= 6, f"the message should be short:\n{out}"
    text = out.lower()
    for needle in needles:
        assert needle.lower() in text, f"the message does not name {needle!r}:\n{out}"
    if marker is not None:
        assert not marker.exists(), "a payload from a hostile file ran"


@pytest.mark.parametrize("case_id,argv,needles,env", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly(case_id, argv, needles, env, tmp_path, monkeypatch):
    files = _files(tmp_path)
    files["readonly"] = None
    args = [_expand(a, tmp_path, files) for a in argv]
    for key, value in env.items():
        monkeypatch.setenv(key, _expand(value, tmp_path, files))
    monkeypatch.setenv("NEXT3D_OPS", env.get("NEXT3D_OPS", "ref"))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and not stat.S_ISFIFO(p.stat().st_mode)}
    try:
        res = CliRunner().invoke(main, args)
    finally:
        ro = tmp_path / "readonly"
        if ro.exists():
            ro.chmod(0o755)
    check_clean_failure(res, needles, files["marker"])
    # Nothing that existed before was changed, and no temporary file was left behind.
    for path, data in before.items():
        assert path.read_bytes() == data, f"{path} was modified by a failed run"
    leftovers = [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == [], leftovers


def test_corpus_is_large():
    assert len(CASES) >= 150
