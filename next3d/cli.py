"""The `next3d` console command: one click group, subcommands registered from their modules.

Each subcommand lives beside the code it drives (e.g. `next3d/flame/commands.py`) and
only parses arguments, loads, and calls the library.
"""

from __future__ import annotations

import importlib
import sys

import click

import next3d

# (module, attribute) of each subcommand; imported lazily so `next3d --help` stays fast
# and one broken optional piece cannot take the whole command down.
_SUBCOMMANDS = {
    "info": ("next3d.info", "info"),
    "bench": ("next3d.bench", "bench"),
    "convert": ("next3d.convert.commands", "convert"),
    "flame": ("next3d.flame.commands", "flame"),
    "generate": ("next3d.generate_cmd", "generate"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_SUBCOMMANDS)

    def get_command(self, ctx, name):
        if name not in _SUBCOMMANDS:
            return None
        module, attr = _SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(next3d.__version__, "--version", prog_name="next3d")
def main():
    """next3d: 3D-aware, animatable head avatars (Next3D) on the FLAME head model.

    Run `next3d COMMAND --help` for the options of each command.
    """


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
