"""The project's checkpoint format: JSON configuration + safetensors weights, never pickles.

A checkpoint is one zip file (suggested suffix `.n3d`, members stored uncompressed):

    config.json          {"format": "next3d-checkpoint", "format_version": 1,
                          "next3d_version": ..., "kind": "generator" | "training",
                          "generator": GeneratorConfig.to_dict(),
                          "discriminator": DiscriminatorConfig.to_dict() or null,
                          "groups": {NAME: {"file": "NAME.safetensors",
                                            "tensors": {key: [dtype, [shape...]]}}},
                          "fresh_modules": {NAME: [prefix, ...]},   # deliberately absent weights
                          "head": HeadRecord.to_dict() or null,     # the generator's head model
                          "extra": {...}}                           # caller's JSON data
    G.safetensors        generator state_dict
    G_ema.safetensors    EMA generator (optional)
    D.safetensors        discriminator (optional)
    head.safetensors     the head model's arrays (optional; `embed_head=True`, e.g. the shipped model)
    <other>.safetensors  further tensor groups (e.g. optimiser state) listed in "groups"

The head record (`next3d/flame/head_record.py`: name, version, content hash) says which head
model the generator was built with. When the arrays are embedded, `build_generator` builds the
generator on exactly those arrays, whatever the current head code makes; otherwise it builds
the configured head and warns when its content hash differs from the record.

A folder holding the same members is read too. Loading checks the format and version,
that every listed tensor is present with its dtype and shape, and turns a corrupt or
truncated file into one `CheckpointError` line naming the file. Models are rebuilt from
the configuration (`build_generator`) and then receive the weights by name.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import torch

import next3d
from next3d.errors import Next3DError
from next3d.config import ConfigError, DiscriminatorConfig, GeneratorConfig, check_head_topology, topology_hash

FORMAT = "next3d-checkpoint"
FORMAT_VERSION = 1
CONFIG_MEMBER = "config.json"
NETWORKS = ("G", "G_ema", "D")
HEAD_GROUP = "head"
"""Tensor group holding the embedded head model's arrays (`next3d.flame.head_record.head_to_tensors`)."""

StateDict = Dict[str, torch.Tensor]
PathLike = Union[str, Path]


class CheckpointError(Next3DError, ValueError):
    """A checkpoint cannot be read or does not fit the model it is loaded into."""


@dataclass
class Checkpoint:
    """What `load_checkpoint` returns.

    config: the generator configuration. d_config: the discriminator's, or None.
    state_dicts: group name ("G", "G_ema", "D", ...) -> {tensor name: tensor}.
    meta: the rest of config.json (format_version, next3d_version, kind, fresh_modules, extra).
    """

    config: GeneratorConfig
    state_dicts: Dict[str, StateDict]
    meta: Dict[str, Any] = field(default_factory=dict)
    d_config: Optional[DiscriminatorConfig] = None
    path: Optional[str] = None


def _first(items: Sequence[str], count: int = 5) -> str:
    shown = ", ".join(items[:count])
    return shown + (f", ... ({len(items)} in all)" if len(items) > count else "")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _as_state_dict(obj: Any, name: str) -> StateDict:
    if obj is None:
        return {}
    sd = obj.state_dict() if isinstance(obj, torch.nn.Module) else obj
    if not isinstance(sd, Mapping):
        raise TypeError(f"save_checkpoint: {name} must be a torch.nn.Module or a state dict, got {type(obj).__name__}")
    out: StateDict = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"save_checkpoint: {name}['{key}'] is a {type(value).__name__}; only tensors are stored")
        # Own contiguous CPU copies: safetensors refuses tensors that share memory (tied weights).
        out[str(key)] = value.detach().to("cpu").contiguous().clone()
    return out


def save_checkpoint(
    path: PathLike,
    *,
    config: GeneratorConfig,
    G: Any = None,
    G_ema: Any = None,
    D: Any = None,
    d_config: Optional[DiscriminatorConfig] = None,
    extra: Optional[dict] = None,
    groups: Optional[Mapping[str, Any]] = None,
    fresh_modules: Optional[Mapping[str, Sequence[str]]] = None,
    kind: Optional[str] = None,
    head: Any = None,
    embed_head: bool = False,
) -> Path:
    """Write a checkpoint to `path` atomically (a temporary file, then a rename).

    G, G_ema, D: modules or state dicts (any may be None, at least one must be given).
    d_config: the discriminator's configuration; taken from `D.config` when omitted.
    extra: JSON-serialisable data kept in config.json (e.g. training progress).
    groups: further named tensor groups (module or state dict) for later use (optimiser state).
    fresh_modules: group -> tensor-name prefixes deliberately left out, which
        `build_generator` initialises freshly instead of reporting them missing.
    kind: "generator" or "training"; defaults to "training" when D is given.
    head: the generator's head model (a `FlameModelData`); default: the `head_data` of G_ema or G
        when they are modules. Its HeadRecord is written to config.json.
    embed_head: also store the head's arrays (group "head"), so the file never depends on the
        head code of a later next3d (the shipped model does this; about 12 MB for the built-in head).
    """
    if not isinstance(config, GeneratorConfig):
        raise TypeError(f"save_checkpoint: config must be a GeneratorConfig, got {type(config).__name__}")
    if d_config is None and D is not None:
        d_config = getattr(D, "config", None)
    if D is not None and not isinstance(d_config, DiscriminatorConfig):
        raise ValueError("save_checkpoint: D was given without its DiscriminatorConfig (pass d_config=...)")
    if groups and HEAD_GROUP in groups:
        raise ValueError(f"save_checkpoint: group name '{HEAD_GROUP}' is reserved for the embedded head model")
    if head is None:
        head = next((getattr(m, "head_data", None) for m in (G_ema, G) if isinstance(m, torch.nn.Module)
                     and getattr(m, "head_data", None) is not None), None)
    head_record = None
    if head is not None:
        from next3d.flame.head_record import describe_head, head_to_tensors

        head_record = describe_head(head)
    elif embed_head:
        raise ValueError("save_checkpoint: embed_head=True needs the head model (head=... or a G_ema/G module "
                         "with head_data)")
    named = {"G": G, "G_ema": G_ema, "D": D, **dict(groups or {})}
    tensors = {name: _as_state_dict(obj, name) for name, obj in named.items() if obj is not None}
    if not tensors:
        raise ValueError("save_checkpoint: nothing to save (give at least one of G, G_ema, D)")
    if embed_head:
        tensors[HEAD_GROUP] = head_to_tensors(head)
    for name in tensors:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"save_checkpoint: group name '{name}' must be letters, digits and underscores")
    fresh = {k: [str(p) for p in v] for k, v in (fresh_modules or {}).items()}
    for name in fresh:
        if name not in tensors:
            raise ValueError(f"save_checkpoint: fresh_modules names group '{name}', which is not saved")
    try:
        extra_json = json.loads(json.dumps(extra if extra is not None else {}, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save_checkpoint: extra must be JSON-serialisable ({exc})") from None

    from safetensors.torch import save as st_save

    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "next3d_version": next3d.__version__,
        "kind": kind or ("training" if D is not None else "generator"),
        "generator": config.to_dict(),
        "discriminator": d_config.to_dict() if d_config is not None else None,
        "groups": {
            name: {"file": f"{name}.safetensors",
                   "tensors": {k: [_dtype_name(t.dtype), list(t.shape)] for k, t in sd.items()}}
            for name, sd in tensors.items()
        },
        "fresh_modules": fresh,
        "head": head_record.to_dict() if head_record is not None else None,
        "extra": extra_json,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(CONFIG_MEMBER, json.dumps(header, indent=2))
            for name, sd in tensors.items():
                zf.writestr(f"{name}.safetensors", st_save(sd, metadata={"group": name}))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


_MEMBER_NAME = __import__("re").compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
_MAX_COMPRESSION_RATIO = 200
MAX_CONFIG_BYTES = 4 << 20
"""Largest config.json read from a checkpoint (a real one is a few KiB)."""
_SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                       "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


def check_safetensors_bytes(data: bytes, what: str) -> Dict[str, Any]:
    """Validate a safetensors buffer *before* handing it to the safetensors library: an 8-byte
    header length within the buffer, a bounded JSON header, and every tensor's declared dtype,
    shape and byte range consistent with each other and inside the buffer. Returns the header."""
    from next3d.safe_json import JsonLimitError, loads_limited

    if len(data) < 8:
        raise CheckpointError(f"{what}: {len(data)} bytes is too short for a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > MAX_CONFIG_BYTES * 4:
        raise CheckpointError(f"{what}: the safetensors header declares {n} bytes, but the member holds "
                              f"{len(data) - 8} (truncated or malformed)")
    try:
        header = loads_limited(data[8:8 + n], f"{what} header", max_bytes=MAX_CONFIG_BYTES * 4, max_depth=4)
    except JsonLimitError as exc:
        raise CheckpointError(str(exc)) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{what}: the safetensors header is a {type(header).__name__}, expected an object")
    body = len(data) - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            continue
        ok = (isinstance(info, dict) and info.get("dtype") in _SAFETENSORS_DTYPES
              and isinstance(info.get("shape"), list) and isinstance(info.get("data_offsets"), list)
              and len(info["data_offsets"]) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                      for v in list(info["shape"]) + list(info["data_offsets"])))
        if not ok:
            raise CheckpointError(f"{what}: tensor '{key}' has a malformed safetensors entry {str(info)[:120]}")
        start, end = info["data_offsets"]
        count = 1
        for d in info["shape"]:
            count *= d
        if not start <= end <= body or end - start != count * _SAFETENSORS_DTYPES[info["dtype"]]:
            raise CheckpointError(f"{what}: tensor '{key}' declares {info['dtype']} {tuple(info['shape'])} at bytes "
                                  f"[{start}, {end}) but the data holds {body} bytes (truncated or malformed)")
    return header


def _check_group_entry(path: Path, name: str, entry: Any) -> None:
    """An entry of config.json's "groups" index: {"file": str, "tensors": {key: [dtype, [ints]]}}."""
    if not isinstance(entry, dict):
        raise CheckpointError(f"checkpoint {path}: groups['{name}'] is a {type(entry).__name__}, expected an object "
                              f"with 'file' and 'tensors'")
    if not isinstance(entry.get("file", f"{name}.safetensors"), str):
        raise CheckpointError(f"checkpoint {path}: groups['{name}'].file must be a file name string")
    tensors = entry.get("tensors", {})
    if not isinstance(tensors, dict):
        raise CheckpointError(f"checkpoint {path}: groups['{name}'].tensors is a {type(tensors).__name__}, "
                              f"expected an object of name: [dtype, shape]")
    for key, spec in tensors.items():
        if not (isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], list)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec[1])):
            raise CheckpointError(f"checkpoint {path}: groups['{name}'].tensors['{key}'] is {str(spec)[:80]}, "
                                  f"expected [dtype, [sizes...]]")


class _Reader:
    """Members of a checkpoint zip or folder, with errors that name the file."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: Optional[zipfile.ZipFile] = None
        if path.is_dir():
            return
        if not path.exists():
            raise CheckpointError(f"checkpoint {path}: no such file")
        try:
            self.zip = zipfile.ZipFile(path, "r")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            hint = ""
            with open(path, "rb") as fh:
                if fh.read(1) == b"\x80":
                    hint = "; it looks like a pickle: convert published networks with `next3d convert`"
            raise CheckpointError(f"checkpoint {path}: corrupt, truncated or not a next3d checkpoint "
                                  f"(not a readable zip archive: {exc}){hint}") from None

    def read(self, member: str, max_bytes: Optional[int] = None) -> bytes:
        """The bytes of `member`, after checking its name (no folders, no '..') and its declared
        size against `max_bytes` and the memory budget (a zip bomb is refused before inflating)."""
        from next3d.limits import LimitError, check_bytes, format_bytes

        if not isinstance(member, str) or not _MEMBER_NAME.fullmatch(member) or member.startswith("."):
            raise CheckpointError(f"checkpoint {self.path}: member name {member!r} is not allowed (expected a "
                                  f"plain file name such as G.safetensors; no folders or '..')")
        try:
            if self.zip is None:
                size = (self.path / member).stat().st_size
                compressed = size
            else:
                info = self.zip.getinfo(member)
                size, compressed = info.file_size, info.compress_size
        except (KeyError, FileNotFoundError):
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' is missing") from None
        except OSError as exc:
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' cannot be read ({exc})") from None
        if max_bytes is not None and size > max_bytes:
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' declares {format_bytes(size)}, more "
                                  f"than the {format_bytes(max_bytes)} such a member may have")
        if size > _MAX_COMPRESSION_RATIO * max(compressed, 1) and size > (1 << 20):
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' inflates {compressed} bytes to "
                                  f"{format_bytes(size)} (a zip bomb?); next3d stores members uncompressed")
        try:
            check_bytes(f"checkpoint {self.path}: member '{member}'", size)
        except LimitError as exc:
            raise CheckpointError(str(exc)) from None
        try:
            if self.zip is None:
                return (self.path / member).read_bytes()
            return self.zip.read(member)
        except (KeyError, FileNotFoundError):
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' is missing") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {self.path}: member '{member}' is corrupt or truncated ({exc})") from None

    def close(self):
        if self.zip is not None:
            self.zip.close()


def load_checkpoint(path: PathLike, device: Union[str, torch.device] = "cpu",
                    groups: Optional[Sequence[str]] = None) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (zip file or folder).

    device: where the tensors are placed. groups: load only these tensor groups
    (default: all), e.g. ("G_ema",) for inference.
    Raises CheckpointError (one line naming the file) for anything unreadable or inconsistent.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    reader = _Reader(path)
    try:
        from next3d.safe_json import JsonLimitError, loads_limited

        try:
            header = loads_limited(reader.read(CONFIG_MEMBER, MAX_CONFIG_BYTES), f"checkpoint {path}: config.json",
                                   max_bytes=MAX_CONFIG_BYTES)
        except JsonLimitError as exc:
            raise CheckpointError(str(exc)) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {path}: config.json does not describe a next3d checkpoint "
                                  f"(format {header.get('format') if isinstance(header, dict) else None!r}, "
                                  f"expected '{FORMAT}')")
        version = header.get("format_version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise CheckpointError(f"checkpoint {path}: format version {version!r} is not supported by next3d "
                                  f"{next3d.__version__} (reads versions 1..{FORMAT_VERSION}); upgrade next3d")
        for key, kind in (("generator", dict), ("discriminator", (dict, type(None))), ("groups", dict),
                          ("fresh_modules", dict), ("extra", dict), ("head", (dict, type(None)))):
            if key in header and not isinstance(header[key], kind):
                raise CheckpointError(f"checkpoint {path}: config.json '{key}' is a {type(header[key]).__name__}, "
                                      f"expected {'an object' if kind is dict else 'an object or null'}")
        for group, prefixes in (header.get("fresh_modules") or {}).items():
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise CheckpointError(f"checkpoint {path}: fresh_modules['{group}'] must be a list of name prefixes")
        try:
            config = GeneratorConfig.from_dict(header.get("generator") or {})
            d_dict = header.get("discriminator")
            d_config = DiscriminatorConfig.from_dict(d_dict) if d_dict is not None else None
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {path}: invalid configuration: {exc}") from None
        index = header.get("groups")
        if not isinstance(index, dict):
            raise CheckpointError(f"checkpoint {path}: config.json has no 'groups' index of tensors")
        for name, entry in index.items():
            _check_group_entry(path, name, entry)
        wanted = list(index) if groups is None else list(groups)
        if HEAD_GROUP in index and HEAD_GROUP not in wanted:
            wanted.append(HEAD_GROUP)  # the generator cannot be built without it
        if header.get("head") is not None:
            from next3d.flame.head_record import HeadRecord, HeadRecordError

            try:
                HeadRecord.from_dict(header["head"], f"checkpoint {path}: config.json 'head'")
            except HeadRecordError as exc:
                raise CheckpointError(str(exc)) from None
        elif HEAD_GROUP in index:
            raise CheckpointError(f"checkpoint {path}: holds head arrays but config.json has no 'head' record")
        for name in wanted:
            if name not in index:
                raise CheckpointError(f"checkpoint {path}: no tensor group '{name}' (has: {', '.join(index) or 'none'})")
        state_dicts: Dict[str, StateDict] = {}
        for name in wanted:
            entry = index[name]
            member = entry.get("file", f"{name}.safetensors")
            data = reader.read(member)
            check_safetensors_bytes(data, f"checkpoint {path}: member '{member}'")
            try:
                sd = st_load(data)
            except (SafetensorError, ValueError, RuntimeError) as exc:
                if isinstance(exc, CheckpointError):
                    raise
                raise CheckpointError(f"checkpoint {path}: member '{member}' is corrupt ({exc})") from None
            listed = entry.get("tensors", {})
            _check_index(path, name, sd, listed)
            # In the saved (state_dict) order; safetensors itself sorts by name.
            state_dicts[name] = {k: sd[k].to(device) for k in listed}
    finally:
        reader.close()
    meta = {k: v for k, v in header.items() if k not in ("generator", "discriminator", "groups")}
    meta.setdefault("fresh_modules", {})
    meta.setdefault("extra", {})
    meta.setdefault("head", None)
    return Checkpoint(config=config, state_dicts=state_dicts, meta=meta, d_config=d_config, path=str(path))


def _check_index(path: Path, name: str, sd: StateDict, listed: Dict[str, Any]) -> None:
    missing = [k for k in listed if k not in sd]
    unexpected = [k for k in sd if k not in listed]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {_first(missing)}")
        if unexpected:
            parts.append(f"unlisted {_first(unexpected)}")
        raise CheckpointError(f"checkpoint {path}: group '{name}' does not match its index: {'; '.join(parts)}")
    for key, (dtype, shape) in listed.items():
        t = sd[key]
        if _dtype_name(t.dtype) != dtype or list(t.shape) != list(shape):
            raise CheckpointError(f"checkpoint {path}: tensor {name}['{key}'] is {_dtype_name(t.dtype)} "
                                  f"{tuple(t.shape)}, the index says {dtype} {tuple(shape)}")


def load_weights(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], what: str = "weights",
                 allow_missing: Sequence[str] = ()) -> Dict[str, list]:
    """Copy `state_dict` into `module` by name, refusing any mismatch with a clear message.

    allow_missing: name prefixes that may be absent (they keep the module's fresh values).
    Returns {"loaded": [...], "fresh": [...]} tensor names.
    """
    own = module.state_dict()
    prefixes = tuple(allow_missing)
    missing = [k for k in own if k not in state_dict]
    fresh = [k for k in missing if prefixes and k.startswith(prefixes)]
    missing = [k for k in missing if k not in fresh]
    unexpected = [k for k in state_dict if k not in own]
    problems = []
    if missing:
        problems.append(f"missing tensors {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_first(unexpected)}")
    wrong = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
             for k in state_dict if k in own and tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if wrong:
        problems.append(f"shape mismatch {_first(wrong, 3)}")
    # A silent cast (float64 -> float32, float -> int buffers) would hide a wrong file: refuse it.
    wrong_dtype = [f"{k} {_dtype_name(state_dict[k].dtype)} vs model {_dtype_name(own[k].dtype)}"
                   for k in state_dict if k in own and state_dict[k].dtype != own[k].dtype]
    if wrong_dtype:
        problems.append(f"dtype mismatch {_first(wrong_dtype, 3)}")
    nonfinite = [k for k in state_dict if k in own and state_dict[k].is_floating_point()
                 and not bool(torch.isfinite(state_dict[k]).all())]
    if nonfinite:
        problems.append(f"non-finite values (NaN/inf) in {_first(nonfinite, 3)}")
    if problems:
        raise CheckpointError(f"{what} do not fit {type(module).__name__}: {'; '.join(problems)}")
    module.load_state_dict({k: v for k, v in state_dict.items()}, strict=False)
    return {"loaded": list(state_dict), "fresh": fresh}


def generator_factory() -> Callable[[GeneratorConfig], torch.nn.Module]:
    """The project's generator class, `next3d.networks.generator.Next3DGenerator(config)`.

    Raises RuntimeError (saying why) when it cannot be imported."""
    import importlib

    try:
        return getattr(importlib.import_module("next3d.networks.generator"), "Next3DGenerator")
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"next3d.networks.generator.Next3DGenerator is not available ({exc}); "
                           f"pass factory=...") from None


def build_seeded(config: Any, factory: Callable[[Any], torch.nn.Module], seed: int) -> torch.nn.Module:
    """`factory(config)` with fresh parameters drawn from `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(config)


def built_head_topology(module: torch.nn.Module) -> Optional[str]:
    """`topology_hash` of the head model inside a built generator (`module.flame` with
    faces, uv_faces, uv_coords), or None when it has none."""
    flame = getattr(module, "flame", None)
    parts = [getattr(flame, name, None) for name in ("faces", "uv_faces", "uv_coords")]
    if any(not isinstance(p, torch.Tensor) for p in parts):
        return None
    faces, uv_faces, uv_coords = (p.detach().cpu() for p in parts)
    return topology_hash(faces.numpy(), uv_faces.numpy(), uv_coords.shape[-2])


def _resolve(source: Any) -> Any:
    return load_checkpoint(source) if isinstance(source, (str, Path)) else source


def build_generator(source: Union[Checkpoint, GeneratorConfig, PathLike],
                    factory: Optional[Callable[[GeneratorConfig], torch.nn.Module]] = None, *,
                    which: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                    seed: int = 0) -> torch.nn.Module:
    """Build a generator from a configuration, or from a checkpoint and load its weights.

    factory: callable(GeneratorConfig) -> module; default `next3d.networks.generator.Next3DGenerator`.
    which: the tensor group to load ("G_ema" when present, else "G").
    seed: seeds the initialisation of anything the checkpoint does not hold.
    Returns the module on `device` in eval mode.
    """
    source = _resolve(source)
    factory = factory or generator_factory()
    if isinstance(source, GeneratorConfig):
        return build_seeded(source, factory, seed).to(device).eval()
    if not isinstance(source, Checkpoint):
        raise TypeError(f"build_generator: expected a Checkpoint, GeneratorConfig or path, got {type(source).__name__}")
    if which is None:
        which = next((g for g in ("G_ema", "G") if g in source.state_dicts), None)
        if which is None:
            raise CheckpointError(f"checkpoint {source.path}: holds no generator weights "
                                  f"(groups: {', '.join(source.state_dicts) or 'none'})")
    if which not in source.state_dicts:
        raise CheckpointError(f"checkpoint {source.path}: no tensor group '{which}' "
                              f"(has: {', '.join(source.state_dicts) or 'none'})")
    from next3d.checkpoint_head import accepts_head, checkpoint_head

    head = checkpoint_head(source)
    if head is not None and accepts_head(factory):
        base_factory = factory

        def factory(config):  # noqa: F811 - the same factory, on the checkpoint's head model
            return base_factory(config, head=head)
    module = build_seeded(source.config, factory, seed)
    try:
        check_head_topology(source.config, built_head_topology(module))
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {source.path}: {exc} (set flame_dir to that head model's folder)") from None
    allow = source.meta.get("fresh_modules", {}).get(which, [])
    report = load_weights(module, source.state_dicts[which], f"checkpoint {source.path} [{which}]", allow)
    if report["fresh"]:
        warnings.warn(f"checkpoint {source.path}: {', '.join(allow)} not in the checkpoint; "
                      f"initialised freshly (seed {seed})", stacklevel=2)
    return module.to(device).eval()


def discriminator_from_config(config: DiscriminatorConfig) -> torch.nn.Module:
    """`next3d.networks.discriminator.DualDiscriminator` built from a DiscriminatorConfig."""
    from next3d.networks.discriminator import DualDiscriminator

    return DualDiscriminator(
        c_dim=config.c_dim, img_resolution=config.img_resolution, img_channels=config.img_channels,
        mesh_channels=config.mesh_channels, architecture=config.architecture, channel_base=config.channel_base,
        channel_max=config.channel_max, num_fp16_res=config.num_fp16_res, conv_clamp=config.conv_clamp,
        cmap_dim=config.cmap_dim, mapping_kwargs={"num_layers": config.mapping_layers},
        epilogue_kwargs={"mbstd_group_size": config.mbstd_group_size,
                         "mbstd_num_channels": config.mbstd_num_channels},
    )


def build_discriminator(source: Union[Checkpoint, DiscriminatorConfig, PathLike],
                        factory: Optional[Callable[[DiscriminatorConfig], torch.nn.Module]] = None, *,
                        device: Union[str, torch.device] = "cpu", seed: int = 0) -> torch.nn.Module:
    """Like `build_generator` for the discriminator (group "D" and the checkpoint's d_config).

    factory default: `discriminator_from_config` (the dual discriminator).
    """
    source = _resolve(source)
    factory = factory or discriminator_from_config
    if isinstance(source, DiscriminatorConfig):
        return build_seeded(source, factory, seed).to(device)
    if not isinstance(source, Checkpoint):
        raise TypeError(f"build_discriminator: expected a Checkpoint, DiscriminatorConfig or path, "
                        f"got {type(source).__name__}")
    if source.d_config is None or "D" not in source.state_dicts:
        raise CheckpointError(f"checkpoint {source.path}: holds no discriminator")
    module = build_seeded(source.d_config, factory, seed)
    load_weights(module, source.state_dicts["D"], f"checkpoint {source.path} [D]")
    return module.to(device)
