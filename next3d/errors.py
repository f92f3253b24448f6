"""The base class of the project's user-facing errors.

Every library error class (ConfigError, CheckpointError, FlameFilesError, GenerateError,
ConvertError, UnsafePickleError, ShapeError, LimitError, OutputPathError, JsonLimitError)
derives from `Next3DError` (and from ValueError, so existing `except ValueError` code keeps
working). Its message is one line that names the file, option or value that was wrong and
what was expected. The command layer (`next3d.cli`) shows such an error as one line with
exit code 2; library code never prints or exits.
"""

from __future__ import annotations


class Next3DError(Exception):
    """A problem with the user's input (a file, an option, a configuration value), described in one line."""


__all__ = ["Next3DError"]
