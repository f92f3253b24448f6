"""The error boundary of the `next3d` command: every failure becomes one clear line.

`present(exc)` turns an exception escaping a subcommand into a `click.ClickException`
(printed by click as `Error: <one line>`) with an exit code:

| exception | exit | line |
|---|---|---|
| `next3d.errors.Next3DError` (ConfigError, CheckpointError, FlameFilesError, ...) | 2 | its message |
| ValueError raised inside next3d / torch_utils / training code | 2 | its message |
| OSError (ENOSPC, EACCES, EFBIG, EISDIR, ...) | 2 | `<path>: <what went wrong>` |
| MemoryError, torch's "can't allocate memory" / CUDA out of memory | 2 | out of memory + what to lower |
| RecursionError | 2 | input nested too deeply |
| KeyboardInterrupt | 130 | interrupted (finished outputs are complete) |
| anything else (a bug) | 1 | `internal error (Type: message)` + how to see the traceback |

`next3d --debug COMMAND ...` or `NEXT3D_DEBUG=1` lets the original exception through,
traceback and all. Commands raise `click.ClickException` for option problems, and let the
library's error classes through for everything else (see the README, "Errors").
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import click

ENV_DEBUG = "NEXT3D_DEBUG"
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
_OUR_PACKAGES = tuple(str(Path(__file__).resolve().parents[2] / p) + os.sep
                      for p in ("next3d", "torch_utils", "training"))
_DEBUG_HINT = f"(run `next3d --debug ...` or set {ENV_DEBUG}=1 for the traceback)"


class CommandError(click.ClickException):
    """A failure shown as one line; `exit_code` per the table of the module docstring."""

    def __init__(self, message: str, exit_code: int = EXIT_USER_ERROR):
        super().__init__(" ".join(str(message).split()) or "failed")
        self.exit_code = exit_code


def debug_enabled(flag: bool = False) -> bool:
    return bool(flag) or os.environ.get(ENV_DEBUG, "").strip().lower() in ("1", "true", "yes", "on")


def _raised_in_our_code(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and os.path.abspath(frames[-1].filename).startswith(_OUR_PACKAGES)


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()))


def present(exc: BaseException) -> click.ClickException:
    """The one-line click error for `exc` (which is not a click exception)."""
    from next3d.atomic_io import os_error_message
    from next3d.errors import Next3DError

    if isinstance(exc, KeyboardInterrupt):
        return CommandError("interrupted; files written so far are complete, nothing partial was left under "
                            "a final name", EXIT_INTERRUPTED)
    if isinstance(exc, Next3DError):
        return CommandError(str(exc))
    if _is_out_of_memory(exc):
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return CommandError(f"out of memory ({detail}); lower the batch size or the resolutions, or use a "
                            f"machine with more memory")
    if isinstance(exc, RecursionError):
        return CommandError("an input is nested too deeply to read (RecursionError); check the files given")
    if isinstance(exc, OSError):
        return CommandError(os_error_message(exc))
    if isinstance(exc, ValueError) and _raised_in_our_code(exc):
        return CommandError(str(exc))
    message = str(exc).splitlines()[0] if str(exc) else ""
    return CommandError(f"internal error ({type(exc).__name__}{': ' + message if message else ''}) {_DEBUG_HINT}; "
                        f"please report it", EXIT_INTERNAL_ERROR)


def run_standalone(command: click.Command, prog_name: str):
    """Run one command as its own script (e.g. gen_scripts/gen_samples.py) behind the same
    error boundary as `next3d` (one line per failure; NEXT3D_DEBUG=1 for the traceback)."""
    invoke = command.invoke

    def guarded(ctx):
        try:
            return invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if debug_enabled():
                raise
            raise present(exc) from None

    command.invoke = guarded  # type: ignore[method-assign]
    return command.main(prog_name=prog_name)


__all__ = ["run_standalone", "CommandError", "ENV_DEBUG", "EXIT_USER_ERROR", "EXIT_INTERNAL_ERROR", "EXIT_INTERRUPTED",
           "debug_enabled", "present"]
