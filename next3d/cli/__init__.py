"""The `next3d` console command: one click group, subcommands registered from their modules.

All click code lives in this package, one thin module per subcommand that parses
arguments, loads, and calls the library; library modules hold no click code.
"""

from __future__ import annotations

import importlib
import sys

import click

import next3d

# (module, attribute) of each subcommand; imported lazily so `next3d --help` stays fast
# and one broken optional piece cannot take the whole command down.
_SUBCOMMANDS = {
    "info": ("next3d.cli.info", "info"),
    "bench": ("next3d.cli.bench", "bench"),
    "convert": ("next3d.cli.convert", "convert"),
    "flame": ("next3d.cli.flame", "flame"),
    "generate": ("next3d.cli.generate", "generate"),
    "demo": ("next3d.cli.demo", "demo"),
    "fit": ("next3d.cli.fit", "fit"),
    "metrics": ("next3d.cli.metrics", "metrics"),
    "dataset": ("next3d.cli.dataset", "dataset"),
    "train": ("next3d.cli.train", "train"),
    "video": ("next3d.cli.video", "video"),
    "reenact": ("next3d.cli.reenact", "reenact"),
    "invert": ("next3d.cli.invert", "invert"),
    "export-model": ("next3d.cli.export_model", "export_model"),
}


class _LazyGroup(click.Group):
    """Subcommands imported on first use; every failure inside one becomes one line (`next3d.cli.errors`)."""

    def invoke(self, ctx):
        from next3d.cli.errors import debug_enabled, present

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if debug_enabled(ctx.params.get("debug", False)):
                raise
            raise present(exc) from None

    def list_commands(self, ctx):
        return sorted(_SUBCOMMANDS)

    def get_command(self, ctx, name):
        if name not in _SUBCOMMANDS:
            return None
        module, attr = _SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(next3d.__version__, "--version", prog_name="next3d")
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure (also: NEXT3D_DEBUG=1).")
def main(debug):
    """next3d: 3D-aware, animatable head avatars (Next3D) on the FLAME head model.

    Run `next3d COMMAND --help` for the options of each command. A failure prints one line
    (`Error: ...`) and exits with code 2 (bad input), 1 (internal error) or 130 (interrupted).
    """
    from torch_utils import cpu_memory

    # Freed activations stay mapped for the next forward (torch_utils/cpu_memory.py).
    if cpu_memory.enabled_by_environment():
        cpu_memory.keep_freed_memory()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
