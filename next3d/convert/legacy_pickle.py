"""Read published EG3D/Next3D network pickles without executing anything from them.

StyleGAN-family training loops save `pickle.dump(dict(G=..., D=..., G_ema=...,
augment_pipe=..., training_set_kwargs=...))`. Each network object is stored as a call
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with

    meta = dict(type='class', version=6, module_src=<source of the defining module>,
                class_name=..., state=<the object's __dict__>)

and the state holds `_parameters`, `_buffers`, `_modules` (child networks, themselves
persistent objects or plain torch.nn containers), `_init_args` and `_init_kwargs`.
Unpickling it normally compiles and runs `module_src`. Here the unpickler
(`next3d.safe_pickle.restricted_load`) resolves:

* `_reconstruct_persistent_obj` to a function returning a `PersistentRecord` (class name,
  init arguments, state); `module_src` is only hashed, never compiled;
* classes from the training code (`training*`, `torch_utils*`, `dnnlib*`,
  `torch.nn.modules*`) to inert stand-ins that only record what they are given;
* tensors through checked re-implementations of torch's rebuild functions; storage bytes
  (`torch.storage._load_from_bytes`) through `torch.load(..., weights_only=True)`;
* every other global (`os.system`, `builtins.eval`, ...) to an `UnsafePickleError`
  naming it, raised before anything runs.

`read_network_pickle(path)` returns the top-level dict with records in place of the
networks; `state_dict_of(record)` walks `_parameters`/`_buffers`/`_modules` into a
state_dict with the same names `torch.nn.Module.state_dict()` would give.
"""

from __future__ import annotations

import _compat_pickle
import collections
import hashlib
import io
import keyword
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple, Union

import torch

from next3d.safe_pickle import UnsafePickleError, numpy_globals, restricted_load

# Module prefixes whose classes appear in published network pickles; they become inert stand-ins.
STAND_IN_PREFIXES = ("training", "training_avatar_texture", "torch_utils", "dnnlib", "torch.nn.modules")
PERSISTENCE_KEY = ("torch_utils.persistence", "_reconstruct_persistent_obj")


@dataclass
class PersistentRecord:
    """A network object of a published pickle, reduced to data (nothing of it was executed)."""

    class_name: str
    init_args: tuple
    init_kwargs: dict
    state: dict
    version: Any = None
    module_src_sha256: str = ""
    module_src_chars: int = 0

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name}, {len(self.state)} state entries)"


class InertObject:
    """Stand-in for a class named by the pickle: records constructor arguments and state."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None, items={}, list_items=[])
        return obj

    def __init__(self, *args, **kwargs):
        pass  # recorded in __new__; nothing else happens

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.list_items.append(value)

    def extend(self, values):
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


class EasyDictStandIn(dict):
    """Stand-in for dnnlib's EasyDict (a dict with attribute access): a plain dict."""

    def __setstate__(self, state):
        if state:  # EasyDict keeps its data in the dict items; ignore an empty __dict__
            self.update(state if isinstance(state, dict) else {})


_STAND_INS: Dict[Tuple[str, str], type] = {}


def _stand_in(module: str, name: str) -> type:
    key = (module, name)
    if key not in _STAND_INS:
        _STAND_INS[key] = type(name, (InertObject,), {"qualname": f"{module}.{name}", "__module__": __name__})
    return _STAND_INS[key]


# ---------------------------------------------------------------------------------------
# Tensors, checked


def _check_ints(values: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(values, (tuple, list, torch.Size)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"tensor {what} must be a tuple of ints, got {values!r}")
    return tuple(int(v) for v in values)


def _tensor_from_storage(storage: Any, offset: Any, size: Any, stride: Any,
                         dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    if isinstance(storage, torch.storage.TypedStorage):
        dtype, untyped = storage.dtype, storage._untyped_storage
    elif isinstance(storage, torch.UntypedStorage) and isinstance(dtype, torch.dtype):
        untyped = storage
    else:
        raise ValueError(f"tensor storage must be a torch storage, got {type(storage).__name__}")
    size, stride = _check_ints(size, "size"), _check_ints(stride, "stride")
    if not isinstance(offset, int) or offset < 0 or len(size) != len(stride) or any(s < 0 for s in size + stride):
        raise ValueError(f"tensor view (offset {offset!r}, size {size}, stride {stride}) is invalid")
    itemsize = torch.empty((), dtype=dtype).element_size()
    available = untyped.nbytes() // itemsize
    needed = 0 if 0 in size else offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if needed > available:
        raise ValueError(f"tensor view of {needed} elements exceeds its storage of {available}")
    out = torch.empty((0,), dtype=dtype)
    out.set_(untyped, offset, size, stride)
    return out


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _tensor_from_storage(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"tensor dtype must be a torch.dtype, got {dtype!r}")
    return _tensor_from_storage(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise ValueError(f"parameter data must be a tensor, got {type(data).__name__}")
    return data  # a plain tensor: the record is data, not a module


_TENSOR_FUNCS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in _TENSOR_FUNCS or not isinstance(args, tuple):
        raise ValueError("_rebuild_from_type_v2 may only rebuild tensors")
    return func(*args)


def _load_storage_from_bytes(data: Any):
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"storage data must be bytes, got {type(data).__name__}")
    try:
        storage = torch.load(io.BytesIO(bytes(data)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsafePickleError(f"tensor storage refused by torch's weights-only loader: {reason}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"tensor storage is unreadable ({exc})") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise ValueError(f"storage data holds a {type(storage).__name__}, not a storage")
    return storage


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, as protocols 0/1 emit it; only for stand-ins built on object or dict.
    if not (isinstance(cls, type) and issubclass(cls, (InertObject, EasyDictStandIn))) or base not in (object, dict):
        raise ValueError(f"copyreg._reconstructor may only build stand-ins, got {cls!r}")
    obj = cls.__new__(cls)
    if base is dict and isinstance(obj, dict) and isinstance(state, dict):
        obj.update(state)  # a dict subclass (EasyDict) carries its items as the base state
    return obj


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    if not isinstance(meta, dict):
        raise ValueError(f"persistent object metadata must be a dict, got {type(meta).__name__}")
    if meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise ValueError(f"persistent object metadata has type {meta.get('type')!r}, expected 'class' with a class_name")
    state = dict(meta.get("state") or {})
    src = meta.get("module_src") or ""
    if not isinstance(src, str):
        raise ValueError("persistent object module_src must be a string")
    init_args = state.pop("_init_args", ())
    init_kwargs = state.pop("_init_kwargs", {})
    return PersistentRecord(
        class_name=meta["class_name"], init_args=tuple(init_args or ()), init_kwargs=dict(init_kwargs or {}),
        state=state, version=meta.get("version"),
        module_src_sha256=hashlib.sha256(src.encode("utf-8", "surrogatepass")).hexdigest(),
        module_src_chars=len(src),
    )


class _AllowList(Mapping):
    """Exact entries plus stand-ins for classes under STAND_IN_PREFIXES; nothing else."""

    def __init__(self):
        self.exact: Dict[Tuple[str, str], Any] = dict(numpy_globals())
        self.exact.update({
            PERSISTENCE_KEY: _reconstruct_persistent_obj,
            ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
            ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
            ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
            ("torch.nn.parameter", "Parameter"): torch.Tensor,  # only as a type tag for _rebuild_from_type_v2
            ("torch._tensor", "Tensor"): torch.Tensor,
            ("torch", "Tensor"): torch.Tensor,
            ("torch", "Size"): torch.Size,
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("copyreg", "_reconstructor"): _reconstructor,
            ("builtins", "object"): object,
            ("builtins", "dict"): dict,
            ("dnnlib.util", "EasyDict"): EasyDictStandIn,
            ("dnnlib", "EasyDict"): EasyDictStandIn,
        })
        for name in dir(torch):
            if isinstance(getattr(torch, name, None), torch.dtype):
                self.exact[("torch", name)] = getattr(torch, name)

    @staticmethod
    def _python3_name(key: Tuple[str, str]) -> Tuple[str, str]:
        # Protocols 0-2 spell some globals the Python 2 way (e.g. __builtin__.set).
        if key in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[key]
        return (_compat_pickle.IMPORT_MAPPING.get(key[0], key[0]), key[1])

    @staticmethod
    def _is_stand_in(key: Tuple[str, str]) -> bool:
        module, name = key
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            return False
        return any(module == p or module.startswith(p + ".") for p in STAND_IN_PREFIXES)

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            return False
        key = self._python3_name(key)
        return key in self.exact or self._is_stand_in(key)

    def __getitem__(self, key: Tuple[str, str]) -> Any:
        key = self._python3_name(key)
        if key in self.exact:
            return self.exact[key]
        if self._is_stand_in(key):
            return _stand_in(*key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self.exact)

    def __len__(self) -> int:
        return len(self.exact)


def read_network_pickle(source: Union[str, Path, bytes], what: Optional[str] = None) -> Any:
    """Unpickle a published network pickle into plain data, executing nothing from it.

    Returns the top-level object (normally a dict with G, D, G_ema, ...), network objects
    replaced by `PersistentRecord`s. Raises UnsafePickleError naming any global outside the
    allow-list, ValueError for anything unreadable (truncated, not a pickle, a zip).
    """
    what = what or (f"network pickle {source}" if isinstance(source, (str, Path)) else "network pickle")
    head = source[:4] if isinstance(source, bytes) else open(source, "rb").read(4)
    if head.startswith(b"PK\x03\x04"):
        raise ValueError(f"{what}: is a zip archive (a torch.save file or a next3d checkpoint), "
                         f"not a StyleGAN/EG3D network pickle")
    return restricted_load(source, _AllowList(), what)


# ---------------------------------------------------------------------------------------
# Walking records


def _state_of(obj: Any, where: str) -> dict:
    if isinstance(obj, PersistentRecord):
        return obj.state
    if isinstance(obj, InertObject):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = state[0]
        return state if isinstance(state, dict) else {}
    raise ValueError(f"'{where or '<root>'}' is a {type(obj).__name__}, not a network object")


def state_dict_of(obj: Any, prefix: str = "") -> "collections.OrderedDict[str, torch.Tensor]":
    """The state_dict (parameters, persistent buffers, children) of a record, as torch names it."""
    out: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
    state = _state_of(obj, prefix.rstrip("."))
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"'{prefix}{name}' in {group} is a {type(value).__name__}, not a tensor")
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(state_dict_of(child, f"{prefix}{name}."))
    return out


def child(record: Any, dotted: str) -> Any:
    """The sub-network at `dotted` (e.g. 'mouth_backbone.synthesis'), or None."""
    obj = record
    for part in dotted.split("."):
        try:
            obj = (_state_of(obj, dotted).get("_modules") or {}).get(part)
        except ValueError:
            return None
        if obj is None:
            return None
    return obj


def to_plain(value: Any) -> Any:
    """Init arguments as JSON-like data: stand-in dicts to dicts, tuples to lists, numpy
    scalars to numbers; tensors and other objects to a short description string."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        try:
            return value.item()
        except (TypeError, ValueError, RuntimeError):
            pass
    if isinstance(value, torch.Tensor):
        return f"<tensor {tuple(value.shape)}>"
    if isinstance(value, PersistentRecord):
        return f"<network {value.class_name}>"
    if isinstance(value, InertObject):
        return f"<{value.qualname}>"
    return f"<{type(value).__name__}>"


@dataclass
class PublishedNetwork:
    """One network of a published pickle: class, constructor kwargs (plain data), weights."""

    name: str
    class_name: str
    init_kwargs: Dict[str, Any]
    state_dict: Dict[str, torch.Tensor]
    record: PersistentRecord = field(repr=False)

    def attribute(self, name: str, default: Any = None) -> Any:
        """A plain attribute the object set on itself (e.g. neural_rendering_resolution)."""
        return to_plain(self.record.state.get(name, default))

    def child_kwargs(self, dotted: str) -> Dict[str, Any]:
        sub = child(self.record, dotted)
        return to_plain(sub.init_kwargs) if isinstance(sub, PersistentRecord) else {}


def load_published(source: Union[str, Path, bytes], what: Optional[str] = None) -> Dict[str, Any]:
    """Networks of a published pickle: {"G": PublishedNetwork, "G_ema": ..., "D": ...,
    "training_set_kwargs": dict, ...}; other entries converted with `to_plain`."""
    what = what or (f"network pickle {source}" if isinstance(source, (str, Path)) else "network pickle")
    data = read_network_pickle(source, what)
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a dict of networks (G, D, G_ema, ...), got {type(data).__name__}")
    out: Dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, PersistentRecord):
            try:
                sd = state_dict_of(value)
            except ValueError as exc:
                raise ValueError(f"{what}: network '{key}': {exc}") from None
            kwargs = to_plain(value.init_kwargs)
            if value.init_args:
                kwargs["_init_args"] = to_plain(value.init_args)
            out[key] = PublishedNetwork(str(key), value.class_name, kwargs, dict(sd), value)
        else:
            out[key] = to_plain(value)
    return out
