"""The demo's controls: one frozen record of every slider, its checks, and the settings file.

Angles on the page are in degrees (the library's are radians; `DemoControls` converts).
Camera: the configuration's orbit (`next3d.render.cameras.orbit_label`): yaw > 0 shows
the subject's left cheek, pitch > 0 looks from above. FLAME pose (axis-angle about the
FLAME axes: x right, y up, z towards the viewer): jaw opens about x (+ = open), neck and
eyes turn about y (yaw, + = towards the subject's left) and x (pitch, + = downwards).

Settings file: JSON `{"format": "next3d-demo-settings", "version": 1, "controls": {...}}`
with the field names of `DemoControls`; missing fields take their defaults, unknown
fields or values out of range are errors naming the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple, Union

import torch

SETTINGS_FORMAT = "next3d-demo-settings"
SETTINGS_VERSION = 1
MAX_SEED = 2 ** 32 - 1
NUM_EXPRESSION_SLIDERS = 8  # Leading FLAME expression components on the page.
MAX_SETTINGS_BYTES = 64 * 1024

# Field -> (low, high) of the value (degrees for angles). The page's sliders use the same ranges.
RANGES: Dict[str, Tuple[float, float]] = {
    "seed": (0, MAX_SEED),
    "truncation": (0.0, 1.5),
    "yaw": (-90.0, 90.0),
    "pitch": (-45.0, 45.0),
    "expression": (-4.0, 4.0),
    "jaw_open": (0.0, 40.0),
    "neck_yaw": (-60.0, 60.0),
    "neck_pitch": (-40.0, 40.0),
    "gaze_yaw": (-40.0, 40.0),
    "gaze_pitch": (-30.0, 30.0),
}


class DemoError(ValueError):
    """A user-facing problem with the demo's inputs (a value, a file); shown on the page as one line."""


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_range(name: str, value: float) -> None:
    lo, hi = RANGES[name]
    if not math.isfinite(value) or not lo <= value <= hi:
        raise DemoError(f"{name}: {value!r} is outside {_fmt(lo)}..{_fmt(hi)}")


@dataclass(frozen=True)
class DemoControls:
    """The values of the Generate tab's controls (angles in degrees)."""

    seed: int = 0  # Identity: z = RandomState(seed).randn(z_dim), as `next3d generate`.
    truncation: float = 0.7  # Truncation psi of the eg3d ws: 1 = none, 0 = the average face.
    yaw: float = 0.0  # Camera yaw on the orbit, degrees (+ = the subject's left cheek).
    pitch: float = 0.0  # Camera pitch, degrees (+ = from above).
    expression: Tuple[float, ...] = ()  # Leading FLAME expression coefficients (the rest are zero).
    jaw_open: float = 0.0  # Jaw opening, degrees about FLAME x.
    neck_yaw: float = 0.0  # Head turn at the neck, degrees about FLAME y (+ = the subject's left).
    neck_pitch: float = 0.0  # Head nod at the neck, degrees about FLAME x (+ = downwards).
    gaze_yaw: float = 0.0  # Both eyeballs, degrees about FLAME y.
    gaze_pitch: float = 0.0  # Both eyeballs, degrees about FLAME x (+ = downwards).

    def __post_init__(self):
        seed = self.seed
        if isinstance(seed, float):
            if not seed.is_integer():
                raise DemoError(f"seed: expected a whole number, got {seed!r}")
            seed = int(seed)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DemoError(f"seed: expected a whole number, got {self.seed!r}")
        object.__setattr__(self, "seed", seed)
        _check_range("seed", seed)
        for name in ("truncation", "yaw", "pitch", "jaw_open", "neck_yaw", "neck_pitch", "gaze_yaw", "gaze_pitch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DemoError(f"{name}: expected a number, got {value!r}")
            object.__setattr__(self, name, float(value))
            _check_range(name, float(value))
        try:
            expression = tuple(float(v) for v in self.expression)
        except (TypeError, ValueError):
            raise DemoError(f"expression: expected a list of numbers, got {self.expression!r}") from None
        for i, v in enumerate(expression):
            lo, hi = RANGES["expression"]
            if not math.isfinite(v) or not lo <= v <= hi:
                raise DemoError(f"expression[{i}]: {v!r} is outside {_fmt(lo)}..{_fmt(hi)}")
        # Trailing zeros mean nothing: drop them so equal faces compare (and cache) equal.
        while expression and expression[-1] == 0.0:
            expression = expression[:-1]
        object.__setattr__(self, "expression", expression)

    # ------------------------------------------------------------------ keys

    def identity_key(self) -> Tuple[int, float]:
        """What the ws, texture and static planes depend on."""
        return (self.seed, self.truncation)

    def face_key(self) -> Tuple[Any, ...]:
        """What the FLAME mesh (and so the dynamic planes) depends on."""
        return (self.expression, self.jaw_open, self.neck_yaw, self.neck_pitch, self.gaze_yaw, self.gaze_pitch)

    def camera_key(self) -> Tuple[float, float]:
        return (self.yaw, self.pitch)

    # ------------------------------------------------------------------ library values

    def flame_params(self, num_expression: int) -> Dict[str, torch.Tensor]:
        """Keyword arguments of `FLAME.forward` (batch 1, radians). Raises DemoError when the
        head model has fewer expression components than given."""
        if len(self.expression) > num_expression:
            raise DemoError(f"expression: {len(self.expression)} components given but this head model has "
                            f"{num_expression}")
        rad = math.radians
        out = {
            "jaw": torch.tensor([[rad(self.jaw_open), 0.0, 0.0]]),
            "neck": torch.tensor([[rad(self.neck_pitch), rad(self.neck_yaw), 0.0]]),
            "left_eye": torch.tensor([[rad(self.gaze_pitch), rad(self.gaze_yaw), 0.0]]),
            "right_eye": torch.tensor([[rad(self.gaze_pitch), rad(self.gaze_yaw), 0.0]]),
        }
        if self.expression:
            out["expression"] = torch.tensor([list(self.expression)], dtype=torch.float32)
        return out

    def camera_radians(self) -> Tuple[float, float]:
        """(yaw, pitch) in radians for `orbit_label`."""
        return (math.radians(self.yaw), math.radians(self.pitch))

    def replace(self, **changes) -> "DemoControls":
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ settings file

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["expression"] = list(self.expression)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "controls") -> "DemoControls":
        if not isinstance(values, Mapping):
            raise DemoError(f"{where}: expected an object of control values, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise DemoError(f"{where}: unknown field(s) {', '.join(map(str, unknown))} "
                            f"(known: {', '.join(sorted(names))})")
        try:
            return cls(**dict(values))
        except DemoError as exc:
            raise DemoError(f"{where}: {exc}") from None


def settings_json(controls: DemoControls) -> str:
    """The settings file's text for `controls`."""
    return json.dumps({"format": SETTINGS_FORMAT, "version": SETTINGS_VERSION, "controls": controls.to_dict()},
                      indent=2) + "\n"


def read_settings(path: Union[str, Path]) -> DemoControls:
    """Read a settings file written by the demo. Raises DemoError naming the file and the problem."""
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
    except OSError:
        raise DemoError(f"settings file {name}: cannot be read") from None
    if size > MAX_SETTINGS_BYTES:
        raise DemoError(f"settings file {name}: {size} bytes; a settings file has at most {MAX_SETTINGS_BYTES}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DemoError(f"settings file {name}: not a JSON settings file (expected the demo's "
                        f"'Save settings' output)") from None
    if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
        raise DemoError(f"settings file {name}: JSON but not demo settings (expected \"format\": "
                        f"\"{SETTINGS_FORMAT}\")")
    if data.get("version") != SETTINGS_VERSION:
        raise DemoError(f"settings file {name}: version {data.get('version')!r}; this demo reads version "
                        f"{SETTINGS_VERSION}")
    return DemoControls.from_dict(data.get("controls", {}), where=f"settings file {name}")


__all__ = ["DemoControls", "DemoError", "RANGES", "NUM_EXPRESSION_SLIDERS", "MAX_SEED", "settings_json",
           "read_settings"]
