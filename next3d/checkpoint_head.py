"""Which head model a generator from a checkpoint is built on (the checkpoint side of
next3d/flame/head_record.py).

A checkpoint's config.json carries a head record (name, version, content hash) and may embed
the head's arrays (group "head", `save_checkpoint(..., embed_head=True)`). Embedded arrays are
used as they are, so the file never depends on the head code of a later next3d; a record
without arrays is compared with the head the current code makes.
"""

from __future__ import annotations

import warnings
from typing import Callable

from next3d.checkpoint import HEAD_GROUP, Checkpoint, CheckpointError


def head_record_of(checkpoint: Checkpoint):
    """The checkpoint's `HeadRecord`, or None when it records none (files written before records existed)."""
    from next3d.flame.head_record import HeadRecord

    data = checkpoint.meta.get("head")
    return None if data is None else HeadRecord.from_dict(data, f"checkpoint {checkpoint.path}: head record")


def checkpoint_head(checkpoint: Checkpoint):
    """The head model (`FlameModelData`) a generator from this checkpoint is built on, or None
    for "load `config.flame_dir` as usual".

    Embedded arrays (group "head") are rebuilt and checked against the record's content hash
    (CheckpointError when they disagree). Without them, a recorded built-in head is compared
    with the one the current code makes: a different content hash warns (the network was
    trained on another head; its images will differ) and the current head is used.
    """
    from next3d.flame.head_record import HeadRecordError, describe_head, head_from_tensors

    try:
        record = head_record_of(checkpoint)
    except HeadRecordError as exc:
        raise CheckpointError(str(exc)) from None
    if HEAD_GROUP in checkpoint.state_dicts:
        if record is None:
            raise CheckpointError(f"checkpoint {checkpoint.path}: holds head arrays but no head record")
        try:
            return head_from_tensors(checkpoint.state_dicts[HEAD_GROUP], record,
                                     source=f"{checkpoint.path} (embedded {record.describe()})")
        except HeadRecordError as exc:
            raise CheckpointError(f"checkpoint {checkpoint.path}: {exc}") from None
    if record is None or checkpoint.config.head_model != "builtin" or checkpoint.config.flame_dir is not None:
        return None
    from next3d.flame import load_flame_model

    current = load_flame_model(None)
    now = describe_head(current)
    if now.content_hash != record.content_hash:
        warnings.warn(f"checkpoint {checkpoint.path}: trained on the {record.describe()}, but this next3d builds "
                      f"the {now.describe()}; the network runs on the current head and its images will differ",
                      stacklevel=3)
    return current


def accepts_head(factory: Callable) -> bool:
    """Whether `factory(config, head=...)` can be called (the project's generator can)."""
    import inspect

    try:
        return "head" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
