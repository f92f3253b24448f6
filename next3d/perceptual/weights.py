"""Where the shipped perceptual weights live, and reading them safely.

The ST-LPIPS weights (Ghildyal & Liu, "Shift-tolerant Perceptual Similarity Metric",
ECCV 2022) are data files inside the `stlpips-pytorch` pip package:
`stlpips_pytorch/weights/vST0.0/{vgg,alex}_shift_tolerant.pth`. Each holds the WHOLE
network: the input scaling (`scaling_layer.shift/scale`), the shift-tolerant backbone
(`net.sliceK.I.weight/bias`, blur-pool filters `net.sliceK.I.filt`) and the five linear
heads (`linL.model.1.weight`). The package's Python code imports torchvision, so it is
never imported here: the folder is located with `importlib.util.find_spec` and the
files are read with `torch.load(weights_only=True)` (tensors only, no code runs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Dict, Optional, Union

import torch

PACKAGE = "stlpips_pytorch"
NETS = ("vgg", "alex")


class PerceptualError(ValueError):
    """A perceptual network's weights are missing or do not fit the module."""


def weights_path(net: str = "vgg") -> Path:
    """Path of the shipped ST-LPIPS weights file for `net` ('vgg' or 'alex')."""
    if net not in NETS:
        raise PerceptualError(f"net: expected one of {', '.join(NETS)}, got {net!r}")
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PerceptualError("the ST-LPIPS weights need the pip package 'stlpips-pytorch' "
                              "(pip install --no-deps stlpips-pytorch); it is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "weights" / "vST0.0" / f"{net}_shift_tolerant.pth"
        if path.is_file():
            return path
    raise PerceptualError(f"stlpips-pytorch is installed but has no weights/vST0.0/{net}_shift_tolerant.pth")


def load_state_dict(path: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """Tensors of a `.pth` state_dict file (weights_only: nothing is executed)."""
    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PerceptualError(f"{path}: no such weights file") from None
    except Exception as exc:  # corrupt file, pickle with code, ...
        raise PerceptualError(f"{path}: not a readable state_dict file ({type(exc).__name__}: {exc})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise PerceptualError(f"{path}: expected a dict of tensors (a state_dict)")
    return sd


def sub_state_dict(sd: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """Entries of `sd` under `prefix` ('net.'), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def load_into(module: torch.nn.Module, sd: Dict[str, torch.Tensor], what: str,
              optional: Optional[tuple] = ("num_batches_tracked",)) -> None:
    """Load `sd` strictly into `module` (key names and shapes must match; keys ending in
    one of `optional` may be absent) with a one-line PerceptualError otherwise."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not (optional and k.endswith(tuple(optional)))]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})" for k in own
             if k in sd and sd[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:4])}{' ...' if len(unexpected) > 4 else ''}")
    if wrong:
        problems.append(f"wrong shape {', '.join(wrong[:3])}")
    if problems:
        raise PerceptualError(f"{what}: the weights do not fit ({'; '.join(problems)})")
    module.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
