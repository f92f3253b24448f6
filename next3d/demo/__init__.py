"""The interactive web demo behind `next3d demo` (a Gradio page; `pip install -e ".[demo]"`).

* `controls`: `DemoControls`, the values of the page's sliders (seed, truncation, camera,
  FLAME expression, jaw, neck, gaze), their checks and the settings file (JSON).
* `engine`: `DemoEngine`, the rendering behind the page: a generator plus a small LRU of
  what depends only on the identity (ws, neural texture, static tri-plane) and the last
  blended planes, so a camera change only renders and an expression change skips the
  identity networks; PNG and PLY export.
* `capabilities`: which optional tabs (photo fitting, video) can be shown.
* `uploads`: size and type checks of uploaded files.
* `app`: the Gradio Blocks and their callbacks (imports gradio; nothing else here does).

Only `app` needs gradio, so the engine and its tests run on the core install.
"""

from next3d.demo.controls import DemoControls, DemoError

__all__ = ["DemoControls", "DemoError"]
