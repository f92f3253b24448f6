"""`next3d demo`: the interactive web page (Gradio; `pip install -e ".[demo]"`).

Thin: parse options, load the generator, call `next3d.demo.app.serve`.
"""

from __future__ import annotations

import click

from next3d.cli.options import network_option, resolve_device


@click.command("demo")
@network_option()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 127.0.0.1 keeps the page on this machine (0.0.0.0 exposes it).")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port (0 = the first free one from 7860).")
@click.option("--share", is_flag=True, help="Also ask Gradio for a public share link (off unless given).")
@click.option("--device", "device_choice", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to run: auto = CUDA when present, else CPU.")
@click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
              help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head).")
@click.option("--max-upload", default="10mb", show_default=True, metavar="SIZE",
              help="Largest accepted upload, e.g. 10mb or 512kb.")
def demo(network, host, port, share, device_choice, flame_dir, max_upload):
    """Serve the interactive demo page: sliders for identity, camera and FLAME expression,
    image and depth side by side, PNG/PLY downloads."""
    from next3d.demo.controls import DemoError
    from next3d.demo.engine import load_engine
    from next3d.demo.uploads import parse_size

    try:
        max_bytes = parse_size(max_upload)
    except DemoError as exc:
        raise click.ClickException(f"--max-upload: {exc}") from None
    try:
        from next3d.demo.app import serve
    except ImportError as exc:
        raise click.ClickException(f"the demo needs gradio ({exc}); install it with pip install -e \".[demo]\"") \
            from None
    device = resolve_device(device_choice)
    try:
        engine = load_engine(network, device=device, flame_dir=flame_dir)
    except ValueError as exc:  # GenerateError, CheckpointError, FlameFilesError, ConfigError
        raise click.ClickException(str(exc)) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"note: listening on {host}: the page is reachable from other machines", err=True)
    click.echo(f"next3d demo: {engine.describe()}")
    try:
        serve(engine, host=host, port=port or None, share=share, max_upload_bytes=max_bytes, block=True)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from None


__all__ = ["demo"]
