"""Options shared by several commands: the FLAME options and loading the FLAME layer from them,
the device choice, and the output folder check."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Dict, List, Optional

import click
import torch


MAX_COEFFICIENT = 20.0
"""Largest |value| of a shape or expression coefficient (FLAME coefficients are in units of
standard deviations; +-3 covers nearly every real face)."""
MAX_ANGLE = 3.1416
"""Largest |angle| in radians of a pose option."""


class FiniteFloat(click.ParamType):
    """A float option that refuses NaN and infinities (and, with bounds, values outside [lo, hi])."""

    name = "float"

    def __init__(self, lo: Optional[float] = None, hi: Optional[float] = None):
        self.lo, self.hi = lo, hi

    def get_metavar(self, param, ctx=None):
        if self.lo is None and self.hi is None:
            return "FLOAT"
        return f"FLOAT {'' if self.lo is None else f'{self.lo:g}'}..{'' if self.hi is None else f'{self.hi:g}'}"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value) and self._inside(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if not self._inside(number):
            lo = "-inf" if self.lo is None else f"{self.lo:g}"
            hi = "inf" if self.hi is None else f"{self.hi:g}"
            self.fail(f"{number:g} is not in the range [{lo}, {hi}]", param, ctx)
        return number

    def _inside(self, x: float) -> bool:
        return (self.lo is None or x >= self.lo) and (self.hi is None or x <= self.hi)


class FloatOrAuto(FiniteFloat):
    """A finite float, or the word 'auto' (returned as None: the library picks the value)."""

    name = "float|auto"

    def get_metavar(self, param, ctx=None):
        return "FLOAT|auto"

    def convert(self, value, param, ctx):
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        return super().convert(value, param, ctx)


def _float_list(ctx, param, value: Optional[str]) -> Optional[List[float]]:
    if value is None or value == "":
        return None
    try:
        values = [float(x) for x in value.split(",") if x.strip() != ""]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers like 0.5,-1,0.2, got {value!r}") from None
    for i, x in enumerate(values):
        if not math.isfinite(x) or abs(x) > MAX_COEFFICIENT:
            raise click.BadParameter(f"value {i + 1} ({x:g}) must be a finite number in "
                                     f"[-{MAX_COEFFICIENT:g}, {MAX_COEFFICIENT:g}]")
    return values


def flame_options(fn):
    """Add --flame-dir, --shape, --expression, --jaw-open, --neck-yaw, --gaze-yaw to a click command."""
    opts = [
        click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
                     help="FLAME folder (default: $NEXT3D_FLAME_DIR, else the built-in head)."),
        click.option("--shape", callback=_float_list, default=None, metavar="B0,B1,...",
                     help="Shape coefficients (leading components; the rest are zero)."),
        click.option("--expression", callback=_float_list, default=None, metavar="E0,E1,...",
                     help="Expression coefficients (leading components; the rest are zero)."),
        click.option("--jaw-open", type=FiniteFloat(-MAX_ANGLE, MAX_ANGLE), default=0.0, show_default=True,
                     help="Jaw opening angle, radians."),
        click.option("--neck-yaw", type=FiniteFloat(-MAX_ANGLE, MAX_ANGLE), default=0.0, show_default=True,
                     help="Head turn about the vertical axis at the neck, radians (+ = towards the subject's left)."),
        click.option("--gaze-yaw", type=FiniteFloat(-MAX_ANGLE, MAX_ANGLE), default=0.0, show_default=True,
                     help="Eyeball yaw, radians."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


FLAME_OPTION_NAMES = ("flame_dir", "shape", "expression", "jaw_open", "neck_yaw", "gaze_yaw")


def flame_params_from_options(flame, shape=None, expression=None, jaw_open=0.0, neck_yaw=0.0, gaze_yaw=0.0,
                              **_ignored) -> Dict[str, torch.Tensor]:
    """Options -> keyword arguments for `FLAME.forward` (batch 1). Raises click.ClickException on bad counts."""
    out = {}
    for name, values, limit in (("shape", shape, flame.num_shape), ("expression", expression, flame.num_expression)):
        if values:
            if len(values) > limit:
                raise click.ClickException(f"--{name} has {len(values)} values but this head model has {limit} "
                                           f"{name} components")
            out[name] = torch.tensor([values], dtype=torch.float32)
    out["jaw"] = torch.tensor([[jaw_open, 0.0, 0.0]])
    out["neck"] = torch.tensor([[0.0, neck_yaw, 0.0]])
    out["left_eye"] = torch.tensor([[0.0, gaze_yaw, 0.0]])
    out["right_eye"] = torch.tensor([[0.0, gaze_yaw, 0.0]])
    return out


def load_flame_from_options(flame_dir):
    """Load the FLAME layer for --flame-dir, turning file errors into click errors."""
    from next3d.flame import FLAME, FlameFilesError, load_flame_model

    try:
        return FLAME(load_flame_model(flame_dir))
    except FlameFilesError as exc:
        raise click.ClickException(str(exc)) from None


def resolve_device(choice: str) -> str:
    """--device auto|cpu|cuda -> a torch device string; cuda without a GPU is a click error."""
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    return choice


def align_option(fn):
    """`--align eg3d|ffhq`: the crop of `next3d.fitting.align.crop_transform`."""
    from next3d.fitting.align import ALIGNMENTS

    return click.option("--align", type=click.Choice(ALIGNMENTS), default="eg3d", show_default=True,
                        help="Crop: eg3d = the published in-the-wild crop (keeps the head's roll); "
                             "ffhq = FFHQ's eye-levelling alignment first, then the same crop.")(fn)


def force_option(what: str = "existing output files"):
    """--force: overwriting earlier results is a choice the help text names."""
    return click.option("--force", is_flag=True, help=f"Overwrite {what} (default: refuse and say which).")


def check_outputs(paths: Dict[str, object], force: bool = False, inputs=()) -> Dict[str, Path]:
    """Check every output path of a command before any work (see `next3d.atomic_io.check_output_paths`);
    problems become click errors naming the option and the path."""
    from next3d.atomic_io import OutputPathError, check_output_paths

    try:
        return check_output_paths(paths, force=force, inputs=inputs)
    except OutputPathError as exc:
        raise click.ClickException(str(exc)) from None


def prepare_out_dir(out_dir: str) -> Path:
    """Create --out if needed and check it is a writable folder (click errors otherwise)."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise click.ClickException(f"--out {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"--out {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise click.ClickException(f"--out {path}: the folder is not writable")
    return path


def frame_render_options(truncation_help: str):
    """--trunc, --trunc-cutoff, --flame-dir, --device, --batch, --noise-mode, --neural-res: how
    frames are rendered (the video commands share them; `truncation_help` says what --trunc acts on)."""
    opts = [
        click.option("--trunc", "truncation_psi", type=float, default=0.7, show_default=True, help=truncation_help),
        click.option("--trunc-cutoff", "truncation_cutoff", type=click.IntRange(min=1), default=14, show_default=True,
                     help="Truncate only the first N ws."),
        click.option("--flame-dir", type=click.Path(file_okay=False), default=None,
                     help="FLAME folder (default: the network's head model)."),
        click.option("--device", "device_choice", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True, help="Where to run: auto = CUDA when present, else CPU."),
        click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Frames per renderer call."),
        click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const",
                     show_default=True, help="Per-pixel noise of the StyleGAN2 layers (const repeats exactly)."),
        click.option("--neural-res", "neural_resolution", type=click.IntRange(min=4), default=None,
                     help="Volume-rendering resolution R  [default: the network's]"),
    ]

    def decorate(fn):
        for opt in reversed(opts):
            fn = opt(fn)
        return fn
    return decorate


NETWORK_METAVAR = "builtin|PATH|random:PRESET"


def network_option(default: Optional[str] = "builtin", default_help: Optional[str] = None):
    """--network: `builtin` (the trained model shipped with next3d; the default), a next3d
    checkpoint, or random:PRESET. `default=None` leaves the choice to the command
    (`default_help` then says what it does)."""
    from next3d.presets import PRESET_NAMES

    text = ("builtin = the trained model shipped with next3d (128-px heads of the synthetic set); PATH = a next3d "
            "checkpoint (convert published .pkl files with `next3d convert` first); random:PRESET = an untrained "
            f"generator (presets: {', '.join(PRESET_NAMES)}).")
    if default is None:
        return click.option("--network", default=None, metavar=NETWORK_METAVAR,
                            help=f"{text}  [default: {default_help or 'builtin'}]")
    return click.option("--network", default=default, show_default=True, metavar=NETWORK_METAVAR, help=text)


def load_network(network: Optional[str], device: str, flame_dir: Optional[str] = None):
    """`next3d.generate.load_generator` for a --network value, its errors as click errors."""
    from next3d.generate import load_generator

    try:
        return load_generator(network, device=device, flame_dir=flame_dir)
    except ValueError as exc:  # GenerateError, CheckpointError, BuiltinNetworkError, FlameFilesError, ConfigError
        raise click.ClickException(str(exc)) from None
