"""`next3d reenact`: drive a seed or an avatar with a FLAME sequence, a folder of meshes or a video.

Thin: parse options, load the generator (as `next3d generate`), the identity and the
driver, call `next3d.animation.reenact.reenact_frames`, write, report. Formats: the
driver in `next3d/animation/drivers.py`, the avatar in `next3d/animation/avatar.py`.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from next3d.cli.options import frame_render_options, load_network, network_option, resolve_device


@click.command("reenact")
@network_option(default=None, default_help="with --avatar its tuned generator when it names one, else builtin")
@click.option("--seed", type=click.IntRange(0, 2 ** 32 - 1), default=None, help="Drive the identity of this seed.")
@click.option("--avatar", type=click.Path(dir_okay=False), default=None,
              help="Drive this avatar file (.npz: ws, FLAME shape, optional tuned generator).")
@click.option("--driver", required=True, type=click.Path(),
              help="FLAME sequence (.npz/.json), folder of per-frame .obj + landmark .txt, or a driving video.")
@click.option("--out", "out_path", required=True, type=click.Path(),
              help="Output video (.mp4), or with --frames-dir the folder of PNG frames.")
@click.option("--frames-dir", is_flag=True, help="Write frame_000000.png, ... into --out instead of an MP4.")
@click.option("--camera", type=click.Choice(["fixed", "orbit", "driver"]), default="fixed", show_default=True,
              help="fixed: the identity's camera; orbit: an orbit over the video; driver: the driver's cameras.")
@click.option("--relative", is_flag=True,
              help="Transfer the driver's change from its first frame onto the identity's neutral face.")
@click.option("--side-by-side", is_flag=True, help="Write [driver | avatar] frames.")
@click.option("--fps", type=click.FloatRange(min=0.1, max=240.0), default=None,
              help="Frames per second  [default: the driver's, else 30]")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Use only the first N driver frames.")
@click.option("--smoothing", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Temporal smoothing of a tracked video (Gaussian sigma in frames; 0 = none).")
@frame_render_options("Truncation psi for --seed.")
def reenact(network, seed, avatar, driver, out_path, frames_dir, camera, relative, side_by_side, fps, max_frames,
            smoothing, truncation_psi, truncation_cutoff, flame_dir, device_choice, batch, noise_mode,
            neural_resolution):
    """Reenact a seed (--seed) or an avatar (--avatar) with --driver; frame i uses driver frame i."""
    from tqdm import tqdm

    from next3d.animation.avatar import load_avatar
    from next3d.animation.drivers import load_driver
    from next3d.animation.reenact import ReenactConfig, avatar_identity, reenact_frames, seed_identity
    from next3d.animation.render_video import RenderStats, RenderVideoOptions
    from next3d.animation.video_writer import VideoWriter
    from next3d.cli.summary import video_line

    started = time.perf_counter()
    if (seed is None) == (avatar is None):
        raise click.ClickException("give exactly one of --seed S or --avatar FILE")
    try:
        loaded_avatar = load_avatar(avatar) if avatar is not None else None
        if network is None and loaded_avatar is not None and loaded_avatar.generator is not None:
            network = str(loaded_avatar.generator)
        config = ReenactConfig(camera=camera, relative=relative, side_by_side=side_by_side,
                               render=RenderVideoOptions(batch=batch, noise_mode=noise_mode,
                                                         neural_resolution=neural_resolution))
        device = resolve_device(device_choice)
        G = load_network(network, device, flame_dir=flame_dir)
        if loaded_avatar is not None:
            loaded_avatar.check(G)
            identity = avatar_identity(loaded_avatar)
        else:
            identity = seed_identity(G, seed, truncation_psi, truncation_cutoff)
        seq = load_driver(driver, max_frames=max_frames, smoothing=smoothing, flame_dir=flame_dir)
        writer = VideoWriter(out_path, fps=fps or seq.fps or 30.0, frames_dir=frames_dir)
    except ValueError as exc:  # AvatarError, DriverError, GenerateError, CheckpointError, VideoWriterError, ...
        raise click.ClickException(str(exc)) from None

    for note in seq.notes:
        click.echo(f"note: {note}")
    stats = RenderStats()
    render_started = time.perf_counter()
    try:
        with writer, tqdm(total=seq.num_frames, unit="frame", desc="reenact", dynamic_ncols=True) as bar:
            for frame in reenact_frames(G, identity, seq, config, on_progress=bar.update, stats=stats):
                writer.append(frame)
    except ValueError as exc:  # ReenactError, RenderVideoError, VideoWriterError: the partial file is gone
        raise click.ClickException(str(exc)) from None
    render_s = time.perf_counter() - render_started
    elapsed = time.perf_counter() - started
    details = (f"driven by {seq.kind} {Path(driver).name} ({'relative' if relative else 'absolute'}, camera "
               f"{camera}; planes built {stats.planes} time(s))")
    click.echo(video_line(writer, out_path, frames_dir, details, G, device, elapsed, render_s))


__all__ = ["reenact"]
