"""The Gradio page of `next3d demo`: Blocks, callbacks, and serving.

Tabs:

* **Generate** (always): seed, truncation, camera yaw/pitch, the leading FLAME expression
  components, jaw, neck and gaze; image and depth side by side; PNG and PLY export; a
  settings file to save and load the controls.
* **Photo → avatar** (when `next3d.fitting` exists) and **Video** (when `next3d.animation`
  exists): see `next3d.demo.optional_tabs`.
* **About**: the network, the device, the capabilities found.

Every callback turns a user-facing problem (`DemoError`, any ValueError from the library)
into a one-line message in the tab's status box; an unexpected exception is logged on
the server with its traceback and the page only says that an internal error happened.
The server keeps running either way.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

import gradio as gr

from next3d.demo.capabilities import available_capabilities
from next3d.demo.controls import (NUM_EXPRESSION_SLIDERS, RANGES, DemoControls, DemoError, read_settings,
                                  settings_json)
from next3d.demo.engine import DemoEngine
from next3d.demo.uploads import DEFAULT_MAX_UPLOAD_BYTES, uploaded_file

log = logging.getLogger("next3d.demo")

UNTRAINED_NOTICE = ("**This network is untrained** (`{name}`: random weights), so the faces are noise-like "
                    "colour fields; the controls, caching and geometry work as with a trained one. A trained "
                    "built-in model will come as `--network builtin`; until then pass a checkpoint with "
                    "`--network PATH`.")
ERROR_PREFIX = "⚠️ **Error:** "
# Small renders (64², 128²) are shown scaled up to the image box, with visible pixels.
PAGE_CSS = """
#image img, #depth img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
"""


def error_text(message: str) -> str:
    """The status-box text of a user-facing error (one line)."""
    return ERROR_PREFIX + " ".join(str(message).split())


def guarded(fn: Callable[..., Any], n_outputs: int, status_index: int) -> Callable[..., Any]:
    """Wrap a callback so that errors become a message in output `status_index` (the other
    outputs stay as they were) instead of an exception reaching Gradio."""

    def wrapper(*args):
        try:
            return fn(*args)
        except ValueError as exc:  # DemoError and the library's one-line errors
            message = error_text(str(exc))
        except Exception:  # noqa: BLE001 - the server must keep running; the log has the traceback
            log.exception("demo callback %s failed", getattr(fn, "__name__", fn))
            message = error_text("internal error while handling this request (details are in the server log)")
        outs: List[Any] = [gr.skip()] * n_outputs
        outs[status_index] = message
        return tuple(outs) if n_outputs > 1 else outs[0]

    wrapper.__name__ = getattr(fn, "__name__", "callback")
    wrapper.__doc__ = fn.__doc__
    return wrapper


@dataclass
class DemoSettings:
    """How the page is built and served."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES  # Largest accepted upload (also Gradio's max_file_size).
    export_dir: Optional[Path] = None  # Where exports are written (None = a new temporary folder).
    show_capabilities: Optional[dict] = None  # Override of the capability check (tests); None = detect.
    owned_dirs: List[Path] = field(default_factory=list)  # Temporary folders to remove on close.
    photo_resolution: int = 256  # Crop size the Photo tab fits on and shows.
    photo_fit_iters: Optional[int] = None  # Adam steps of the fitter's full stage (None = the fitter's default).


# --------------------------------------------------------------------------- Generate tab


def _status_line(frame) -> str:
    h, w = frame.image.shape[:2]
    reused = {"planes": "camera only: planes reused", "identity": "face changed: identity reused",
              "nothing": "new identity"}[frame.reused]
    return f"seed {frame.controls.seed} · {w}×{h} · rendered in {frame.seconds:.2f} s ({reused})"


class GenerateTab:
    """The Generate tab's components and callbacks."""

    def __init__(self, engine: DemoEngine, settings: DemoSettings):
        self.engine = engine
        self.settings = settings
        self.n_expr = min(NUM_EXPRESSION_SLIDERS, engine.num_expression)

    # -- controls <-> values

    def controls_from(self, values: Sequence[Any]) -> DemoControls:
        seed, trunc, yaw, pitch, jaw, neck_yaw, neck_pitch, gaze_yaw, gaze_pitch = values[:9]
        expression = tuple(values[9:9 + self.n_expr])
        if seed is None:
            raise DemoError("seed: empty; expected a whole number")
        return DemoControls(seed=seed, truncation=trunc, yaw=yaw, pitch=pitch, expression=expression,
                            jaw_open=jaw, neck_yaw=neck_yaw, neck_pitch=neck_pitch, gaze_yaw=gaze_yaw,
                            gaze_pitch=gaze_pitch)

    def values_of(self, c: DemoControls) -> List[Any]:
        expr = list(c.expression[:self.n_expr]) + [0.0] * (self.n_expr - len(c.expression[:self.n_expr]))
        return [c.seed, c.truncation, c.yaw, c.pitch, c.jaw_open, c.neck_yaw, c.neck_pitch, c.gaze_yaw,
                c.gaze_pitch] + expr

    # -- callbacks

    def render(self, *values):
        """Controls -> image, depth, status."""
        frame = self.engine.render(self.controls_from(values))
        return frame.image, frame.depth, _status_line(frame)

    def export_png(self, *values):
        controls = self.controls_from(values)
        frame = self.engine.render(controls)
        image_path, depth_path = self.engine.save_png(frame, self.settings.export_dir)
        return [str(image_path), str(depth_path)], f"wrote {image_path.name} and {depth_path.name}"

    def export_ply(self, resolution, level, *values):
        controls = self.controls_from(values)
        if resolution is None:
            raise DemoError("mesh: the lattice resolution is needed")
        how = ""
        if level is None:  # an empty level box: auto
            level, how = self.engine.surface_level(controls), " (auto: the density at the rendered depth)"
        path, n_v, n_f, (lo, hi) = self.engine.save_ply(controls, self.settings.export_dir, int(resolution),
                                                        float(level))
        return [str(path)], (f"wrote {path.name}: {n_v} vertices, {n_f} faces at σ = {float(level):.3g}{how} "
                             f"(σ spans [{lo:.3g}, {hi:.3g}])")

    def save_settings(self, *values):
        controls = self.controls_from(values)
        path = Path(self.settings.export_dir) / f"settings-seed{controls.seed:04d}.json"
        path.write_text(settings_json(controls))
        return [str(path)], f"wrote {path.name}"

    def load_settings(self, upload):
        path = uploaded_file(upload, "settings file", self.settings.max_upload_bytes)
        controls = read_settings(path)
        if len(controls.expression) > self.n_expr:
            raise DemoError(f"settings file {path.name}: {len(controls.expression)} expression components; this "
                            f"page has {self.n_expr}")
        frame = self.engine.render(controls)
        return (*self.values_of(controls), frame.image, frame.depth,
                f"loaded {path.name}; " + _status_line(frame))

    # -- layout

    def build(self):
        lo, hi = RANGES["truncation"]
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                seed = gr.Slider(0, 9999, value=0, step=1, label="Seed (identity)", elem_id="seed")
                trunc = gr.Slider(lo, hi, value=0.7, step=0.05, label="Truncation ψ (1 = none, 0 = average face)",
                                  elem_id="truncation")
                yaw = gr.Slider(*RANGES["yaw"], value=0, step=1, label="Camera yaw (°, + = subject's left)",
                                elem_id="yaw")
                pitch = gr.Slider(*RANGES["pitch"], value=0, step=1, label="Camera pitch (°, + = from above)",
                                  elem_id="pitch")
                jaw = gr.Slider(*RANGES["jaw_open"], value=0, step=0.5, label="Jaw open (°)", elem_id="jaw")
                with gr.Accordion("Neck and gaze", open=False):
                    neck_yaw = gr.Slider(*RANGES["neck_yaw"], value=0, step=1, label="Neck yaw (°)",
                                         elem_id="neck_yaw")
                    neck_pitch = gr.Slider(*RANGES["neck_pitch"], value=0, step=1,
                                           label="Neck pitch (°, + = down)", elem_id="neck_pitch")
                    gaze_yaw = gr.Slider(*RANGES["gaze_yaw"], value=0, step=1, label="Gaze yaw (°)",
                                         elem_id="gaze_yaw")
                    gaze_pitch = gr.Slider(*RANGES["gaze_pitch"], value=0, step=1,
                                           label="Gaze pitch (°, + = down)", elem_id="gaze_pitch")
                with gr.Accordion(f"FLAME expression (first {self.n_expr} components)", open=False):
                    expr = [gr.Slider(*RANGES["expression"], value=0, step=0.05, label=f"Expression {i}",
                                      elem_id=f"expr{i}") for i in range(self.n_expr)]
            with gr.Column(scale=2):
                with gr.Row():
                    image = gr.Image(label="Image", type="numpy", format="png", interactive=False, height=320,
                                     elem_id="image")
                    depth = gr.Image(label="Depth (near = white)", type="numpy", format="png", interactive=False,
                                     height=320, image_mode="L", elem_id="depth")
                status = gr.Markdown("", elem_id="status")
                with gr.Row():
                    png_btn = gr.Button("Export PNG (image + depth)", elem_id="export_png")
                    ply_btn = gr.Button("Export PLY mesh", elem_id="export_ply")
                    save_btn = gr.Button("Save settings", elem_id="save_settings")
                with gr.Accordion("Mesh export options", open=False):
                    with gr.Row():
                        mesh_res = gr.Slider(16, 128, value=64, step=8, label="Mesh lattice (points per axis)",
                                             elem_id="mesh_res")
                        mesh_level = gr.Number(value=None, label="Iso-level on raw density σ (empty = auto: "
                                               "the density where this view's rendered depth lies; EG3D uses 10)",
                                               elem_id="mesh_level")
                with gr.Row():
                    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                        elem_id="downloads", height=120)
                    settings_up = gr.File(label="Load settings (.json from 'Save settings')", type="filepath",
                                          elem_id="settings_upload", height=120)

        controls = [seed, trunc, yaw, pitch, jaw, neck_yaw, neck_pitch, gaze_yaw, gaze_pitch, *expr]
        self.control_components = controls
        self.output_components = (image, depth, status)
        render = guarded(self.render, 3, 2)
        gr.on([c.input for c in controls], render, inputs=controls,
              outputs=[image, depth, status], trigger_mode="always_last", show_progress="hidden",
              api_name="render")
        png_btn.click(guarded(self.export_png, 2, 1), inputs=controls, outputs=[downloads, status],
                      api_name="export_png")
        ply_btn.click(guarded(self.export_ply, 2, 1), inputs=[mesh_res, mesh_level, *controls],
                      outputs=[downloads, status], api_name="export_ply")
        save_btn.click(guarded(self.save_settings, 2, 1), inputs=controls, outputs=[downloads, status],
                       api_name="save_settings")
        n = len(controls)
        settings_up.upload(guarded(self.load_settings, n + 3, n + 2), inputs=[settings_up],
                           outputs=[*controls, image, depth, status], api_name="load_settings")
        return controls, (image, depth, status), render


# --------------------------------------------------------------------------- page


def build_app(engine: DemoEngine, settings: Optional[DemoSettings] = None) -> Tuple[gr.Blocks, DemoSettings]:
    """Build the page for `engine` -> (Blocks, settings with the export folder filled in)."""
    from next3d.demo import optional_tabs

    settings = settings or DemoSettings()
    if settings.export_dir is None:
        settings.export_dir = Path(tempfile.mkdtemp(prefix="next3d-demo-"))
        settings.owned_dirs.append(settings.export_dir)
    caps = settings.show_capabilities if settings.show_capabilities is not None else available_capabilities()

    with gr.Blocks(title="next3d demo", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        gr.Markdown("# next3d — 3D-aware animatable heads\n" + engine.describe(), elem_id="header")
        if not engine.trained:
            gr.Markdown(UNTRAINED_NOTICE.format(name=engine.network_name), elem_id="untrained")
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                tab = GenerateTab(engine, settings)
                controls, outputs, render = tab.build()
            if caps.get("photo"):
                with gr.Tab("Photo → avatar", id="photo"):
                    optional_tabs.build_photo_tab(engine, settings, tab)
            if caps.get("video"):
                with gr.Tab("Video", id="video"):
                    optional_tabs.build_video_tab(engine, settings, tab)
            with gr.Tab("About", id="about"):
                found = ", ".join(f"{k}: {'yes' if v else 'no'}" for k, v in caps.items())
                gr.Markdown(f"{engine.describe()}\n\nOptional capabilities found — {found}. A tab appears when "
                            f"its package is installed.\n\nExports are written to a temporary folder that is "
                            f"removed when the server stops; uploads are limited to "
                            f"{settings.max_upload_bytes / 1e6:.0f} MB.", elem_id="about")
        demo.load(render, inputs=controls, outputs=list(outputs), show_progress="hidden")
    demo.generate_tab = tab  # for tests and the optional tabs
    return demo, settings


@dataclass
class RunningDemo:
    """A started server: its Blocks, local URL, and what `close` cleans up."""

    demo: gr.Blocks
    url: str
    settings: DemoSettings
    share_url: Optional[str] = None

    def close(self) -> None:
        self.demo.close()
        for d in self.settings.owned_dirs:
            shutil.rmtree(d, ignore_errors=True)


def serve(engine: DemoEngine, host: str = "127.0.0.1", port: Optional[int] = None, share: bool = False,
          max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, block: bool = True, quiet: bool = False,
          settings: Optional[DemoSettings] = None) -> RunningDemo:
    """Build and launch the page. `host` 127.0.0.1 keeps it local; `share` asks Gradio for a
    public link (only when requested). block=False returns at once with the server running
    in a thread; block=True serves until interrupted, then cleans up."""
    settings = settings or DemoSettings(max_upload_bytes=max_upload_bytes)
    settings.max_upload_bytes = max_upload_bytes
    demo, settings = build_app(engine, settings)
    demo.queue(default_concurrency_limit=1)
    try:
        _, local_url, share_url = demo.launch(server_name=host, server_port=port, share=share,
                                              max_file_size=max_upload_bytes, prevent_thread_lock=True,
                                              quiet=quiet, show_error=False, ssr_mode=False, inbrowser=False,
                                              css=PAGE_CSS,
                                              footer_links=[])
    except BaseException:
        for d in settings.owned_dirs:
            shutil.rmtree(d, ignore_errors=True)
        raise
    running = RunningDemo(demo=demo, url=local_url, settings=settings, share_url=share_url)
    if block:
        try:
            demo.block_thread()
        finally:
            running.close()
    return running


__all__ = ["build_app", "serve", "RunningDemo", "DemoSettings", "GenerateTab", "guarded", "error_text",
           "UNTRAINED_NOTICE", "ERROR_PREFIX"]
