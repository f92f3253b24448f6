"""Tabs for capabilities that live in optional packages; each is built only when its package
exists (`next3d.demo.capabilities`). Kept minimal until those packages land: the code calls
the interfaces below and reports a clear message when the package does not offer them.

Expected interfaces (written against the issues that bring them):

* Photo → avatar (`next3d.fitting`, issue 9): through `next3d.demo.photo` (prepare_photo,
  fit_prepared, draw_overlay).
* Video (`next3d.animation`, issue 13): `video.VideoConfig`, `video.video_frames`,
  `trajectories.TrajectoryConfig` and `video_writer.VideoWriter`, as on the issue13 branch
  (not merged here: untested until it is).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from next3d.demo.controls import DemoError


def build_photo_tab(engine, settings, generate_tab) -> None:
    """Photo upload -> crop and fit overlay (`next3d.demo.photo`); the fitted expression and jaw
    can then drive the Generate tab's sliders."""
    import threading

    from next3d.demo.app import guarded
    from next3d.demo.photo import PhotoFitter, controls_from_fit

    holder = {}
    lock = threading.Lock()

    def fitter() -> PhotoFitter:
        with lock:
            if "fitter" not in holder:
                holder["fitter"] = PhotoFitter(engine.G.flame, engine.G.config.flame_dir,
                                               full_iters=settings.photo_fit_iters,
                                               head_data=getattr(engine.G, "head_data", None))
            return holder["fitter"]

    def fit(upload):
        result = fitter().fit(upload, settings.max_upload_bytes, resolution=settings.photo_resolution)
        return result.crop, result.overlay, result, f"fitted: {result.summary}"

    def use_fit(result, *values):
        if result is None:
            raise DemoError("no fit yet: upload a photo first")
        base = generate_tab.controls_from(values)
        controls, note = controls_from_fit(result, base, generate_tab.n_expr)
        frame = engine.render(controls)
        from next3d.demo.app import _status_line

        message = "the fitted expression and jaw now drive the Generate tab" + (f" ({note})" if note else "")
        return (*generate_tab.values_of(controls), frame.image, frame.depth, _status_line(frame), message)

    gr.Markdown("Upload a photo of one face: it is detected (dlib), cropped as the training data, and FLAME "
                "plus the camera are fitted to its landmarks. The inversion into an avatar comes with "
                "`next3d.inversion`; until then the fitted expression and jaw can drive the Generate tab.")
    with gr.Row():
        photo = gr.File(label="Photo (PNG/JPEG)", type="filepath", elem_id="photo_upload")
        crop = gr.Image(label="Crop", type="numpy", format="png", interactive=False, elem_id="photo_crop")
        overlay = gr.Image(label="Fit overlay", type="numpy", format="png", interactive=False,
                           elem_id="photo_overlay")
    status = gr.Markdown("", elem_id="photo_status")
    use = gr.Button("Drive the Generate tab with this face", elem_id="photo_use")
    last_fit = gr.State(None)
    photo.upload(guarded(fit, 4, 3), inputs=[photo], outputs=[crop, overlay, last_fit, status], api_name="fit_photo")
    gen = generate_tab.control_components
    image, depth, gen_status = generate_tab.output_components
    n = len(gen)
    use.click(guarded(use_fit, n + 4, n + 3), inputs=[last_fit, *gen],
              outputs=[*gen, image, depth, gen_status, status], api_name="use_fit")


def build_video_tab(engine, settings, generate_tab) -> None:
    """A camera-path video of one seed, optionally with an expression sweep and depth beside it,
    through `next3d.animation` (`video.VideoConfig`, `video.video_frames`,
    `video_writer.VideoWriter`), with a progress bar and an MP4 download."""
    from next3d.demo.app import guarded

    def render(seed, frames, trajectory, animate, with_depth, progress=gr.Progress()):
        from next3d.animation.trajectories import TrajectoryConfig
        from next3d.animation.video import VideoConfig, video_frames
        from next3d.animation.video_writer import VideoWriter

        if seed is None or frames is None:
            raise DemoError("video: seed and frame count are needed")
        seed, total = int(seed), int(frames)
        config = VideoConfig(frames=total, trajectory=TrajectoryConfig(kind=str(trajectory)),
                             animate=None if animate in (None, "none") else str(animate),
                             depth="beside" if with_depth else "none")
        path = Path(settings.export_dir) / f"{trajectory}-seed{seed:04d}.mp4"
        done = [0]

        def on_progress(n):
            done[0] += n
            progress(done[0] / total, desc="rendering frames")

        with engine.lock:
            with VideoWriter(path, fps=30.0) as writer:
                for frame in video_frames(engine.G, [seed], config, on_progress=on_progress):
                    writer.append(frame)
        return str(path), [str(path)], f"wrote {path.name}: {total} frames at 30 fps"

    gr.Markdown("A video of one identity along a camera path, optionally with an expression sweep.")
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="Seed", elem_id="video_seed")
        frames = gr.Slider(8, 240, value=60, step=1, label="Frames", elem_id="video_frames")
        trajectory = gr.Dropdown(["orbit", "yaw", "pitch", "front"], value="orbit", label="Camera path",
                                 elem_id="video_trajectory")
        animate = gr.Dropdown(["none", "jaw", "smile", "blink"], value="none", label="Expression sweep",
                              elem_id="video_animate")
        with_depth = gr.Checkbox(False, label="Depth beside", elem_id="video_depth")
    go = gr.Button("Render video", elem_id="video_go")
    video = gr.Video(label="Video", elem_id="video_out")
    download = gr.File(label="Download MP4", file_count="multiple", interactive=False, elem_id="video_file")
    status = gr.Markdown("", elem_id="video_status")
    go.click(guarded(render, 3, 2), inputs=[seed, frames, trajectory, animate, with_depth],
             outputs=[video, download, status], api_name="render_video")


__all__ = ["build_photo_tab", "build_video_tab"]
