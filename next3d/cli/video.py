"""`next3d video`: an MP4 (or PNG frames) of seeds under a moving camera, latent interpolation
and expression sweeps.

Thin: parse options, load the generator (as `next3d generate`), call
`next3d.animation.video.video_frames`, write with `next3d.animation.video_writer`, report.
"""

from __future__ import annotations

import time

import click

from next3d.cli.options import frame_render_options, load_network, network_option, resolve_device


@click.command("video")
@network_option(default=None, default_help="builtin; with --avatar, the avatar's generator")
@click.option("--seeds", "seeds_spec", default=None, metavar="SPEC",
              help="Seeds such as 0-3 or 1,5,9: one per grid cell, or (with --interp) several per cell.")
@click.option("--avatar", type=click.Path(dir_okay=False), default=None,
              help="Show this avatar (avatar.n3d from `next3d invert`, or an avatar .npz) instead of seeds.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=True),
              help="Output video (.mp4), or with --frames-dir the folder of PNG frames.")
@click.option("--frames-dir", is_flag=True, help="Write frame_000000.png, ... into --out instead of an MP4.")
@click.option("--trajectory", type=click.Choice(["orbit", "yaw", "pitch", "front"]), default="orbit",
              show_default=True, help="Camera path around the pivot.")
@click.option("--yaw-range", type=click.FloatRange(0.0, 3.1416), default=0.35, show_default=True,
              help="Largest |yaw| of orbit and yaw paths, radians.")
@click.option("--pitch-range", type=click.FloatRange(0.0, 1.5), default=0.25, show_default=True,
              help="Largest |pitch| of orbit and pitch paths, radians.")
@click.option("--frames", type=click.IntRange(min=1), default=120, show_default=True, help="Frames of the video.")
@click.option("--fps", type=click.FloatRange(min=0.1, max=240.0), default=30.0, show_default=True,
              help="Frames per second.")
@click.option("--grid", "grid_spec", default=None, metavar="WxH",
              help="Cells, columns x rows  [default: one cell per seed, most square; 1x1 with --interp]")
@click.option("--interp", is_flag=True, help="Interpolate each cell's latent through its seeds (a looping path).")
@click.option("--interp-kind", type=click.Choice(["cubic", "linear"]), default="cubic", show_default=True,
              help="Interpolation between keyframe latents.")
@click.option("--depth", is_flag=True, help="Put each cell's depth map beside its image.")
@click.option("--depth-only", is_flag=True, help="Write depth maps instead of images.")
@click.option("--animate", type=click.Choice(["jaw", "smile", "blink"]), default=None,
              help="Sweep the jaw open, a smile or a blink over the video (neutral face otherwise).")
@click.option("--animate-amount", type=float, default=None,
              help="Size of the sweep (jaw: radians, default 0.3; smile/blink: multiples of full, default 1).")
@frame_render_options("Truncation psi: 1 = none, 0 = the average face.")
def video(network, seeds_spec, avatar, out_path, frames_dir, trajectory, yaw_range, pitch_range, frames, fps, grid_spec,
          interp, interp_kind, depth, depth_only, animate, animate_amount, truncation_psi, truncation_cutoff,
          flame_dir, device_choice, batch, noise_mode, neural_resolution):
    """Render a video of SEEDS: the camera moves along --trajectory around the pivot, optionally
    through interpolated latents (--interp) and an expression sweep (--animate).

    One loop of the camera path (and of the sweep and latent path) spans --frames frames,
    so the video repeats seamlessly.
    """
    from tqdm import tqdm

    from next3d.animation.render_video import RenderStats, RenderVideoOptions
    from next3d.animation.trajectories import TrajectoryConfig
    from next3d.animation.video import VideoConfig, layout_for, parse_grid, video_frames
    from next3d.animation.video_writer import VideoWriter, VideoWriterError
    from next3d.animation.avatar import load_avatar
    from next3d.cli.summary import video_line
    from next3d.generate import parse_seeds

    started = time.perf_counter()
    if depth and depth_only:
        raise click.ClickException("--depth and --depth-only exclude each other")
    if (seeds_spec is None) == (avatar is None):
        raise click.ClickException("give exactly one of --seeds SPEC or --avatar FILE")
    loaded_avatar = None
    try:
        if avatar is not None:
            loaded_avatar = load_avatar(avatar)
            if network is None:
                if loaded_avatar.generator is None:
                    raise click.ClickException("--network is required (the avatar names no generator)")
                network = str(loaded_avatar.generator)
            if interp:
                raise click.ClickException("--interp needs several seeds; an avatar is one latent")
        seeds = parse_seeds(seeds_spec) if loaded_avatar is None else [0]
        config = VideoConfig(
            frames=frames, trajectory=TrajectoryConfig(kind=trajectory, yaw_range=yaw_range, pitch_range=pitch_range),
            grid=parse_grid(grid_spec), interp=interp, interpolation=interp_kind, animate=animate,
            animate_amount=animate_amount, depth="only" if depth_only else ("beside" if depth else "none"),
            truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
            render=RenderVideoOptions(batch=batch, noise_mode=noise_mode, neural_resolution=neural_resolution))
        layout, _ = layout_for(len(seeds), config)
    except ValueError as exc:  # GenerateError, VideoError, TrajectoryError, RenderVideoError
        raise click.ClickException(str(exc)) from None
    device = resolve_device(device_choice)
    try:
        writer = VideoWriter(out_path, fps=fps, frames_dir=frames_dir)
    except VideoWriterError as exc:
        raise click.ClickException(str(exc)) from None
    ws = base_flame = None
    G = load_network(network, device, flame_dir=flame_dir)
    if loaded_avatar is not None:
        try:
            loaded_avatar.check(G)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        ws = loaded_avatar.ws[None]
        base_flame = {"shape": loaded_avatar.shape, **loaded_avatar.neutral}

    stats = RenderStats()
    render_started = time.perf_counter()
    try:
        with writer, tqdm(total=frames, unit="frame", desc="video", dynamic_ncols=True) as bar:
            for frame in video_frames(G, seeds, config, on_progress=bar.update, stats=stats, ws=ws,
                                      base_flame=base_flame):
                writer.append(frame)
    except ValueError as exc:  # AnimationError, RenderVideoError, VideoWriterError: the partial file is gone
        raise click.ClickException(str(exc)) from None
    render_s = time.perf_counter() - render_started
    elapsed = time.perf_counter() - started
    who = f"avatar {avatar}" if loaded_avatar is not None else f"{len(seeds)} seed(s)"
    details = (f"{layout.columns}x{layout.rows} cell(s), {who} (planes built {stats.planes} time(s) "
               f"for {stats.frames} cell renders)")
    click.echo(video_line(writer, out_path, frames_dir, details, G, device, elapsed, render_s))


__all__ = ["video"]
