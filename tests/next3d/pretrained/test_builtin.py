"""The model shipped in the package (next3d/pretrained/builtin.n3d): it loads, it is the demo
preset on the head it names, a fixed seed draws the committed golden image, and its outputs
are not near-constant.

When the shipped file is replaced, regenerate the golden image and values with

    NEXT3D_REGENERATE_GOLDEN=1 python -m pytest -q tests/next3d/pretrained -p no:cacheprovider

and look at tests/data/golden/builtin_seed0000.png before committing it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from golden import GOLDEN_DIR, REGENERATE, check_golden
from next3d.checkpoint import HEAD_GROUP
from next3d.checkpoint_head import head_record_of
from next3d.flame.builtin import BUILTIN_VERSION
from next3d.generate import GenerateOptions, generate, load_generator
from next3d.presets import get_preset
from next3d.pretrained import MAX_BYTES, BuiltinNetworkError, builtin_network_path, load_builtin_checkpoint

VALUES = GOLDEN_DIR / "builtin_model.json"
SEEDS = (0, 1)
OPTIONS = GenerateOptions(views=1, truncation_psi=0.7)
# Not near-constant: each measured value of the shipped file must keep this share of itself,
# and never fall below the absolute floor (images in [-1, 1]).
KEEP = 0.5
FLOOR = {"image_std": 0.05, "seed_mean_abs_diff": 0.02}


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shipped():
    ckpt = load_builtin_checkpoint()
    G = load_generator("builtin")
    images = {r.seed: r.images[0] for r in generate(G, list(SEEDS), None, OPTIONS)}
    return ckpt, G, images


def _measure(images) -> dict:
    a, b = images[SEEDS[0]].float(), images[SEEDS[1]].float()
    return {"image_std": float(a.clamp(-1, 1).std()), "seed_mean_abs_diff": float((a - b).abs().mean())}


def test_the_file_is_small_g_ema_only_and_packaged():
    path = builtin_network_path()
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["G_ema.safetensors", "config.json", "head.safetensors"]
    from helpers import REPO

    assert '"next3d.pretrained" = ["*.n3d"]' in (REPO / "pyproject.toml").read_text()  # shipped in wheel and sdist


def test_config_is_the_demo_preset_on_the_head_it_names(shipped):
    ckpt, G, _ = shipped
    assert ckpt.meta["kind"] == "generator" and set(ckpt.state_dicts) == {"G_ema", HEAD_GROUP}
    want = get_preset("demo").to_dict()
    got = ckpt.config.to_dict()
    assert {k: v for k, v in got.items() if k != "head_topology"} == {k: v for k, v in want.items()
                                                                        if k != "head_topology"}
    record = head_record_of(ckpt)
    assert record.name == "builtin" and record.version.startswith("v")
    assert G.head_record == record  # the generator runs on exactly the recorded head
    assert G.img_resolution == 128 and ckpt.meta["extra"]["preset"] == "demo"


def test_current_head_code_still_makes_the_head_of_that_version(shipped):
    """Fails when the current code, under the version string the file names, makes another head."""
    ckpt, _, _ = shipped
    from next3d.flame import load_flame_model
    from next3d.flame.head_record import describe_head

    record = head_record_of(ckpt)
    if record.version != BUILTIN_VERSION:
        pytest.skip(f"the head code changed since the shipped file ({record.version} -> {BUILTIN_VERSION}); "
                    f"the file carries its own head arrays")
    assert describe_head(load_flame_model(None)).content_hash == record.content_hash


@pytest.mark.slow
def test_head_regenerated_from_code_matches_the_record(shipped, tmp_path):
    """Like the test above, but rebuilds the head from the code instead of the cache (about 10 s)."""
    ckpt, _, _ = shipped
    from next3d.flame.builtin.writer import write_builtin_head
    from next3d.flame.files import load_flame_folder
    from next3d.flame.head_record import head_content_hash

    record = head_record_of(ckpt)
    if record.version != BUILTIN_VERSION:
        pytest.skip("the head code changed since the shipped file; it carries its own head arrays")
    folder = write_builtin_head(tmp_path / BUILTIN_VERSION)
    assert head_content_hash(load_flame_folder(folder)) == record.content_hash


def test_fixed_seed_gives_the_golden_image_and_outputs_vary(shipped):
    ckpt, _, images = shipped
    measured = _measure(images)
    if REGENERATE:
        VALUES.write_text(json.dumps({"file_sha256": _sha256(builtin_network_path()), "seeds": list(SEEDS),
                                      "truncation_psi": OPTIONS.truncation_psi, **measured}, indent=2) + "\n")
    golden = json.loads(VALUES.read_text())
    assert golden["file_sha256"] == _sha256(builtin_network_path()), (
        "the shipped model changed: regenerate the golden image and values (see this module's docstring)")
    check_golden("builtin_seed0000", images[SEEDS[0]])
    for key, floor in FLOOR.items():
        threshold = max(floor, KEEP * golden[key])
        assert measured[key] >= threshold, f"{key} {measured[key]:.4f} is below {threshold:.4f} (near-constant?)"
        assert measured[key] == pytest.approx(golden[key], rel=0.05, abs=1e-3), key


def test_missing_or_corrupt_file_is_a_clear_error(tmp_path, monkeypatch):
    from next3d.cli import main

    monkeypatch.setattr("next3d.pretrained.builtin_network_path", lambda: tmp_path / "builtin.n3d")
    with pytest.raises(BuiltinNetworkError, match="is missing from this installation"):
        load_generator(None)
    (tmp_path / "builtin.n3d").write_bytes(builtin_network_path().read_bytes()[:5000])
    res = CliRunner().invoke(main, ["generate", "--seeds", "0", "--out", str(tmp_path / "out")])
    assert res.exit_code != 0 and "the built-in model file is damaged" in res.output
    assert "reinstall next3d" in res.output and "Traceback" not in res.output


def test_generate_without_network_draws_the_shipped_model(shipped, tmp_path):
    """The README's first usage line: no --network means the shipped model."""
    from PIL import Image

    from next3d.cli import main

    _, _, images = shipped
    res = CliRunner().invoke(main, ["generate", "--seeds", "0", "--views", "1", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "by builtin (demo" in res.output and "images/s" in res.output
    png = np.asarray(Image.open(tmp_path / "seed0000.png").convert("RGB"))
    want = ((images[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert png.shape == (128, 128, 3) and np.abs(png.astype(int) - want.astype(int)).max() <= 1


def test_readme_starts_with_the_builtin_command_and_reproduces_it():
    import re

    from helpers import REPO

    text = (REPO / "README.md").read_text()
    usage = text.split("## Usage", 1)[1]
    first = re.search(r"```bash\n(.*?)\n", usage).group(1)
    assert first.split("#")[0].strip() == "next3d generate --seeds 0-7 --out out/"
    section = text.split("## The built-in model", 1)[1].split("\n## ", 1)[0]
    for step in ("next3d dataset synth", "next3d train --data synth128 --preset demo", "next3d export-model",
                 "NEXT3D_REGENERATE_GOLDEN=1", "gen_scripts/make_readme_pictures.py"):
        assert step in section, step
