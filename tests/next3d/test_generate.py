"""`next3d generate` and the `next3d.generate` library on the tiny preset (CPU)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from next3d.cli import main
from next3d.generate import (GenerateError, GenerateOptions, closed_grid, deterministic_rays, frontal_label,
                             load_generator, parse_seeds, seeds_to_z, view_yaws)
from next3d.render.cameras import orbit_label
from next3d.render.density_grid import read_ply

TINY_OUT = 64  # tiny preset: output side
TINY_R = 32  # tiny preset: neural rendering resolution
BASE = ["generate", "--network", "random:tiny", "--views", "2", "--device", "cpu"]


def _invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """Two runs of the same seeds: with shapes (the full command) and images only."""
    first = tmp_path_factory.mktemp("gen_a")
    res = _invoke(BASE + ["--seeds", "0-1", "--out", str(first), "--shapes", "--shape-res", "32",
                          "--shape-level", "0"])
    assert res.exit_code == 0, res.output
    second = tmp_path_factory.mktemp("gen_b")
    res2 = _invoke(BASE + ["--seeds", "0-1", "--out", str(second)])
    assert res2.exit_code == 0, res2.output
    return first, second, res.output


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.float64)


def test_writes_exactly_the_expected_files(run_dirs):
    first, second, output = run_dirs
    expected = {f"seed{s:04d}{suffix}" for s in (0, 1) for suffix in (".png", "_depth.png", ".ply")}
    assert {p.name for p in first.iterdir()} == expected
    assert {p.name for p in second.iterdir()} == {n for n in expected if not n.endswith(".ply")}
    assert "wrote 6 files" in output and "2 seed(s) x 2 view(s)" in output


def test_images_have_views_side_by_side_and_content(run_dirs):
    first, _, _ = run_dirs
    for seed in (0, 1):
        img = _png(first / f"seed{seed:04d}.png")
        assert img.shape == (TINY_OUT, 2 * TINY_OUT, 3)
        assert img.std() > 3.0, f"seed {seed}: image is nearly constant (std {img.std():.2f})"
        depth = _png(first / f"seed{seed:04d}_depth.png")
        assert depth.shape == (TINY_R, 2 * TINY_R)
        assert depth.std() > 1.0, f"seed {seed}: depth is nearly constant (std {depth.std():.2f})"
        # Two views from different yaws see different things.
        left, right = img[:, :TINY_OUT], img[:, TINY_OUT:]
        assert np.abs(left - right).mean() > 0.5


def test_meshes_parse_and_lie_in_the_box(run_dirs):
    first, _, _ = run_dirs
    for seed in (0, 1):
        path = first / f"seed{seed:04d}.ply"
        header = path.read_bytes().split(b"end_header\n")[0].decode("ascii")
        counts = {ln.split()[1]: int(ln.split()[2]) for ln in header.splitlines() if ln.startswith("element")}
        assert counts["vertex"] > 0 and counts["face"] > 0
        vertices, faces = read_ply(path)
        assert vertices.shape == (counts["vertex"], 3) and faces.shape == (counts["face"], 3)
        assert faces.min() >= 0 and faces.max() < len(vertices)
        # The grid covers the renderer's box (side box_warp = 1 around the origin).
        assert np.abs(vertices).max() <= 0.5 + 1e-5


def test_same_seed_same_bytes_different_seeds_differ(run_dirs):
    first, second, _ = run_dirs
    for name in ("seed0000.png", "seed0000_depth.png", "seed0001.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    diff = np.abs(_png(first / "seed0000.png") - _png(first / "seed0001.png")).mean()
    assert diff > 2.0, f"seeds 0 and 1 give nearly the same image (mean |diff| {diff:.2f})"


@pytest.mark.parametrize("args, needle", [
    (["--seeds", "3-1"], "3-1"),
    (["--seeds", "1,x"], "'x'"),
    (["--seeds", "0", "--network", "random:nope"], "unknown preset 'nope'"),
])
def test_bad_inputs_give_one_line_errors(tmp_path, args, needle):
    cmd = ["generate", "--network", "random:tiny", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(main, cmd + args)
    assert res.exit_code != 0
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.output
    if "nope" in needle:
        assert "random:tiny" in lines[0]  # lists the valid names


def test_missing_corrupt_and_pickle_networks(tmp_path):
    missing = tmp_path / "missing.n3d"
    res = CliRunner().invoke(main, ["generate", "--network", str(missing), "--seeds", "0", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "missing.n3d" in res.output and "no such file" in res.output
    corrupt = tmp_path / "bad.n3d"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    res = CliRunner().invoke(main, ["generate", "--network", str(corrupt), "--seeds", "0", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "bad.n3d" in res.output and "corrupt" in res.output
    pkl = tmp_path / "network.pkl"
    pkl.write_bytes(b"\x80\x04N.")
    res = CliRunner().invoke(main, ["generate", "--network", str(pkl), "--seeds", "0", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "next3d convert" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_out_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    res = CliRunner().invoke(main, BASE + ["--seeds", "0", "--out", str(target)])
    assert res.exit_code != 0 and "is a file" in res.output
    res = CliRunner().invoke(main, BASE + ["--seeds", "0", "--out", str(target / "sub")])
    assert res.exit_code != 0 and "cannot create the folder" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_help_explains_options_with_defaults():
    res = CliRunner().invoke(main, ["generate", "--help"])
    assert res.exit_code == 0
    for text in ("--network", "--seeds", "--trunc", "default: 0.7", "--trunc-cutoff", "--views", "--yaw-range",
                 "--shapes", "--shape-res", "--batch", "--noise-mode", "--neural-res", "--jaw-open", "--flame-dir"):
        assert text in res.output, text


# --------------------------------------------------------------------------- library


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("0-2, 7,2") == [0, 1, 2, 7]
    assert parse_seeds("4") == [4]
    for bad, needle in (("3-1", "backwards"), ("", "empty"), ("-1", "'-1'"), ("a-b", "'a-b'"),
                        ("1,,2", "''"), (str(2 ** 32), "too large")):
        with pytest.raises(GenerateError, match=needle):
            parse_seeds(bad)


def test_seeds_to_z_matches_stylegan_convention():
    z = seeds_to_z([3, 7], 16)
    assert z.shape == (2, 16) and z.dtype == torch.float32
    np.testing.assert_allclose(z[1].numpy(), np.random.RandomState(7).randn(16).astype(np.float32))


def test_view_yaws_and_conditioning_camera():
    assert view_yaws(1, 0.6) == [0.0]
    np.testing.assert_allclose(view_yaws(3, 0.6), [-0.6, 0.0, 0.6])
    with pytest.raises(GenerateError, match="views"):
        view_yaws(0, 0.6)
    G = load_generator("random:tiny")
    torch.testing.assert_close(frontal_label(G), orbit_label(0.0, 0.0))
    with pytest.raises(GenerateError, match="batch"):
        GenerateOptions(batch=0)


def test_checkpoint_loads_the_same_weights(tmp_path):
    from next3d.checkpoint import save_checkpoint

    G = load_generator("random:tiny")
    path = save_checkpoint(tmp_path / "tiny.n3d", config=G.config, G_ema=G)
    G2 = load_generator(str(path))
    sd, sd2 = G.state_dict(), G2.state_dict()
    assert sd.keys() == sd2.keys()
    assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    assert not G2.training


def test_deterministic_rays_restores_the_renderer():
    G = load_generator("random:tiny")
    before = G.renderer.options
    with deterministic_rays(G):
        assert G.renderer.options.perturb is False and G.renderer.options.det is True
    assert G.renderer.options == before == dataclasses.replace(before)


def test_closed_grid_puts_the_box_faces_below_the_level():
    grid = np.full((5, 5, 5), 3.0, dtype=np.float32)
    closed = closed_grid(grid, level=1.0)
    assert closed[2, 2, 2] == 3.0 and grid[0, 0, 0] == 3.0  # the input is untouched
    for face in (closed[0], closed[-1], closed[:, 0], closed[:, -1], closed[:, :, 0], closed[:, :, -1]):
        assert (face < 1.0).all()


def test_surface_level_is_the_density_where_the_rendered_rays_end():
    from next3d.generate import _head_mesh, surface_level, view_labels
    from next3d.render.ray_sampler import make_rays

    G = load_generator("random:tiny").eval()
    c_cond = frontal_label(G)
    ws = G.mapping(seeds_to_z([0], G.z_dim), c_cond, truncation_psi=0.7)
    mesh = _head_mesh(G, None, "cpu")
    planes = G.synthesize_planes(ws, mesh, noise_mode="const")
    c = view_labels(G, [0.2])
    far = torch.full((1, 1, 4, 4), 100.0)  # every ray ends far outside the box
    assert surface_level(G, ws, planes, mesh, c, far) is None
    # One ray ends inside the box: pixel (row 0, column 1) is ray 1 (row-major), right of ray 0.
    origins, dirs = make_rays(c, 4)
    rot = c[0, :16].view(4, 4)[:3, :3]
    assert float((rot.T @ (dirs[0, 1] - dirs[0, 0]))[0]) > 0  # camera x grows along a row
    one = far.clone()
    one[0, 0, 0, 1] = 2.7
    got = surface_level(G, ws, planes, mesh, c, one)
    point = (origins[0, 1] + 2.7 * dirs[0, 1]).view(1, 1, 3)
    assert point.abs().max() < 0.5
    with torch.no_grad():
        want = float(G.sample_mixed(point, ws, mesh, planes=planes)["sigma"])
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_auto_shape_level_meshes_through_the_rendered_surface(tmp_path):
    res = _invoke(BASE + ["--seeds", "2", "--out", str(tmp_path / "o"), "--shapes", "--shape-res", "24"])
    assert res.exit_code == 0, res.output
    line = res.output[res.output.index("meshes ("):].splitlines()[0]  # after the progress bar's last redraw
    assert "auto" in line and "seed 2 at " in line, res.output
    vertices, faces = read_ply(tmp_path / "o" / "seed0002.ply")
    assert len(faces) > 0 and np.abs(vertices).max() <= 0.5 + 1e-5
    bad = CliRunner().invoke(main, BASE + ["--seeds", "2", "--out", str(tmp_path / "p"), "--shapes",
                                           "--shape-level", "high"])
    assert bad.exit_code != 0 and "'high' is not a number" in bad.output
