"""`next3d generate`: images, depth maps and (optionally) meshes for a list of seeds.

Thin: parse options, load the generator, call `next3d.generate`, write files, report.
Conventions (seeds, conditioning camera, views, files) are in `next3d/generate.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from next3d.cli.options import FiniteFloat, FloatOrAuto, flame_options, load_network, network_option, prepare_out_dir, resolve_device

LARGE_RUN_IMAGES = 10_000


def _list_paths(paths, limit: int = 8) -> str:
    names = [p.name for p in paths]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


@click.command("generate")
@network_option()
@click.option("--seeds", "seeds_spec", required=True, metavar="SPEC",
              help="Seeds: ranges and lists such as 0-3, 1,5,9 or 0-2,7. z = RandomState(seed).randn(z_dim).")
@click.option("--out", "--outdir", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output folder (created when missing).")
@click.option("--trunc", "truncation_psi", type=FiniteFloat(-2.0, 2.0), default=0.7, show_default=True,
              help="Truncation psi: 1 = none, 0 = the average face.")
@click.option("--trunc-cutoff", "truncation_cutoff", type=click.IntRange(min=1), default=14, show_default=True,
              help="Truncate only the first N ws of each mapping.")
@flame_options
@click.option("--views", type=click.IntRange(1, 64), default=3, show_default=True,
              help="Views per seed, side by side in the PNG.")
@click.option("--yaw-range", type=FiniteFloat(0.0, 3.1416), default=0.6, show_default=True,
              help="Views spread over yaw -R..+R radians (+ = the subject's left cheek).")
@click.option("--pitch", type=FiniteFloat(-1.5, 1.5), default=0.0, show_default=True,
              help="Camera pitch of every view, radians (+ = from above).")
@click.option("--shapes", is_flag=True, help="Also write seedNNNN.ply: the iso-surface of density on a grid "
                                              "covering the renderer's box.")
@click.option("--shape-res", type=click.IntRange(8, 1024), default=128, show_default=True,
              help="Grid points per axis for --shapes.")
@click.option("--shape-level", type=FloatOrAuto(), default="auto", show_default=True,
              help="Iso-level on raw density for --shapes: a number (EG3D uses 10), or auto = per seed the "
                   "median density where its rendered depths lie, so the mesh passes through what the images show.")
@click.option("--device", "device_choice", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run: auto = CUDA when present, else CPU.")
@click.option("--batch", type=click.IntRange(1, 4096), default=4, show_default=True,
              help="Largest batch of seeds / views per network call.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True,
              help="Per-pixel noise of the StyleGAN2 layers (const repeats exactly).")
@click.option("--neural-res", "neural_resolution", type=click.IntRange(4, 1024), default=None,
              help="Volume-rendering resolution R, a power of two  [default: the network's, 64 for ffhq512]")
@click.option("--force", is_flag=True, help="Overwrite files of these seeds left in --out by an earlier run "
                                             "(default: refuse and name them).")
@click.option("--yes", is_flag=True, help=f"Run even when the request is large (more than {LARGE_RUN_IMAGES} "
                                           f"images).")
def generate(network, seeds_spec, out_dir, truncation_psi, truncation_cutoff, views, yaw_range, pitch, shapes,
             shape_res, shape_level, device_choice, batch, noise_mode, neural_resolution, force, yes, **flame_opts):
    """Generate images (views side by side), depth maps and optionally meshes for SEEDS.

    Per seed writes seedNNNN.png, seedNNNN_depth.png (near = white) and, with --shapes,
    seedNNNN.ply. The mapping is conditioned on the frontal camera; one FLAME
    expression/pose (the FLAME options) drives every seed. Existing files of the same
    seeds are not replaced without --force; every file is written under a temporary name
    and renamed when complete.
    """
    from tqdm import tqdm

    from next3d.cli.options import flame_params_from_options
    from next3d.cli.summary import network_phrase
    from next3d.generate import (GenerateError, GenerateOptions, check_memory, check_outputs,
                                 generate as run_generate, parse_seeds, save_seed_output)

    started = time.perf_counter()
    try:
        seeds = parse_seeds(seeds_spec)
        options = GenerateOptions(truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, views=views,
                                  yaw_range=yaw_range, pitch=pitch, batch=batch, noise_mode=noise_mode,
                                  neural_resolution=neural_resolution, shapes=shapes, shape_res=shape_res)
    except GenerateError as exc:
        raise click.ClickException(str(exc)) from None
    if len(seeds) * views > LARGE_RUN_IMAGES and not yes:
        raise click.ClickException(f"--seeds {seeds_spec}: {len(seeds)} seed(s) x {views} view(s) = "
                                   f"{len(seeds) * views} images, which can take hours; pass --yes to run it")
    device = resolve_device(device_choice)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise click.ClickException(f"--out {out_dir}: exists and is not a folder")
    if Path(out_dir).is_dir():
        check_outputs(seeds, out_dir, shapes=shapes, force=force)  # before any work
    G = load_network(network, device, flame_dir=flame_opts.get("flame_dir"))
    check_memory(G.config, options)
    out = prepare_out_dir(out_dir)
    flame = flame_params_from_options(G.flame, **flame_opts)

    written, notes, meshes = [], [], []
    size = None
    render_started = time.perf_counter()
    with tqdm(total=len(seeds) * views, unit="img", desc="generate", dynamic_ncols=True) as bar:
        for result in run_generate(G, seeds, flame, options, on_progress=bar.update):
            saved = save_seed_output(result, out, shape_level=shape_level)
            written.extend(saved.paths)
            size = tuple(result.images.shape[-2:])
            if saved.mesh_faces:
                meshes.append(f"{result.seed} at {saved.shape_level:.3g} ({saved.mesh_faces} faces)")
            if saved.mesh_faces == 0:
                lo, hi = saved.sigma_range
                notes.append(f"seed {result.seed}: density spans [{lo:.3g}, {hi:.3g}] and never crosses "
                             f"--shape-level {saved.shape_level:g}; its mesh is empty")
            bar.set_postfix_str(f"seed {result.seed}")
    elapsed = time.perf_counter() - started
    render_s = time.perf_counter() - render_started
    for note in notes:
        click.echo(f"note: {note}")
    if meshes:
        how = "auto: the density at each seed's rendered depths" if shape_level is None else "--shape-level"
        click.echo(f"meshes (iso-level on raw density, {how}): seed " + "; ".join(meshes))
    click.echo(f"wrote {len(written)} files to {out} in {elapsed:.1f} s: {len(seeds)} seed(s) x {views} view(s) "
               f"of {size[1]}x{size[0]}, {network_phrase(G)} on {device} "
               f"({len(seeds) * views / max(render_s, 1e-9):.2f} images/s; {_list_paths(written)})")


__all__ = ["generate"]
