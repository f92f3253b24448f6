"""`export_generator` / `next3d export-model`: G_ema + embedded head, atomic, size-checked; and
checkpoints built on their embedded head whatever the current head code makes."""

from __future__ import annotations

import warnings
import zipfile

import pytest
import torch
from click.testing import CliRunner

from next3d.checkpoint import CheckpointError, build_generator, load_checkpoint, save_checkpoint
from next3d.cli import main
from next3d.flame.builtin import BUILTIN_VERSION
from next3d.presets import get_preset
from next3d.pretrained.export import ExportError, export_generator


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A training-style checkpoint of the tiny preset: G, G_ema (perturbed) and D-free extras."""
    G = build_generator(get_preset("tiny"), seed=3)
    G_ema = build_generator(get_preset("tiny"), seed=4)
    path = tmp_path_factory.mktemp("snap") / "snapshot-00000800.n3d"
    save_checkpoint(path, config=G.config, G=G, G_ema=G_ema, kind="training",
                    extra={"run_config": {"preset": "tiny"}, "state": {"cur_nimg": 800}})
    return path, G_ema


def _same_network(a, b) -> bool:
    """Same weights and the same head buffers (faces, UVs, mask, blendshapes): the same images."""
    sa, sb = a.state_dict(), b.state_dict()
    ba, bb = dict(a.flame.named_buffers()), dict(b.flame.named_buffers())
    return (sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
            and ba.keys() == bb.keys() and all(torch.equal(ba[k], bb[k]) for k in ba))


def test_snapshots_record_the_head_without_embedding_it(snapshot):
    path, _ = snapshot
    ckpt = load_checkpoint(path)
    assert ckpt.meta["head"]["version"] == BUILTIN_VERSION and "head" not in ckpt.state_dicts


def test_export_writes_g_ema_and_the_head_only(snapshot, tmp_path):
    path, G_ema = snapshot
    out = tmp_path / "model.n3d"
    result = export_generator(path, out)
    assert result.path == out and result.preset == "tiny" and result.cur_nimg == 800
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["G_ema.safetensors", "config.json", "head.safetensors"]
    ckpt = load_checkpoint(out)
    assert ckpt.meta["kind"] == "generator" and ckpt.meta["extra"]["exported_from"] == path.name
    assert ckpt.meta["head"]["version"] == BUILTIN_VERSION
    for key, value in G_ema.state_dict().items():
        assert torch.equal(ckpt.state_dicts["G_ema"][key], value), key
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    with pytest.raises(ExportError, match="exists; pass --force"):
        export_generator(path, out)
    with pytest.raises(ExportError, match="MiB is more than the 0 MiB"):
        export_generator(path, tmp_path / "small.n3d", max_bytes=1000)
    assert not (tmp_path / "small.n3d").exists()


def test_embedded_head_is_used_instead_of_the_current_code(snapshot, tmp_path, monkeypatch):
    path, G_ema = snapshot
    out = tmp_path / "model.n3d"
    export_generator(path, out)

    def no_head(*args, **kwargs):
        raise AssertionError("the embedded head must be used; the head code was called")

    # Later head code that builds something else (here: nothing at all) does not change the file.
    monkeypatch.setattr("next3d.networks.generator.load_flame_model", no_head)
    monkeypatch.setattr("next3d.flame.load_flame_model", no_head)
    G = build_generator(out)
    assert G.flame.model_name == "builtin" and "embedded" in G.head_data.source
    assert _same_network(G, G_ema)
    G.flame.v_template.add_(1e-3)  # the check above would see a different head
    assert not _same_network(G, G_ema)


def test_a_recorded_head_that_differs_warns(snapshot, tmp_path, monkeypatch):
    path, _ = snapshot
    ckpt = load_checkpoint(path)
    ckpt.meta["head"] = dict(ckpt.meta["head"], content_hash="sha256:" + "0" * 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_generator(ckpt)
    assert any("trained on the builtin head" in str(w.message) and "images will differ" in str(w.message)
               for w in caught)


def test_corrupt_embedded_head_is_a_one_line_error(snapshot, tmp_path):
    path, _ = snapshot
    out = tmp_path / "model.n3d"
    export_generator(path, out)
    ckpt = load_checkpoint(out)
    ckpt.state_dicts["head"]["v_template"][0, 0] += 1.0
    with pytest.raises(CheckpointError, match="stored head arrays hash to"):
        build_generator(ckpt)


def test_export_command(snapshot, tmp_path):
    path, _ = snapshot
    out = tmp_path / "m.n3d"
    res = CliRunner().invoke(main, ["export-model", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output and "G_ema of tiny at 0.8 kimg" in res.output and BUILTIN_VERSION in res.output
    res = CliRunner().invoke(main, ["export-model", str(path), "--out", str(out)])
    assert res.exit_code != 0 and "exists; pass --force" in res.output
    bad = tmp_path / "bad.n3d"
    bad.write_bytes(b"not a zip")
    res = CliRunner().invoke(main, ["export-model", str(bad), "--out", str(tmp_path / "o.n3d")])
    assert res.exit_code != 0 and "corrupt, truncated or not a next3d checkpoint" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o.n3d").exists()
