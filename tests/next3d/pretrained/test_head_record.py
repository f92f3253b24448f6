"""Head records: version, content hash, and the head's arrays round-tripped through tensors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from next3d.flame import load_flame_model
from next3d.flame.builtin import BUILTIN_VERSION
from next3d.flame.head_record import (HEAD_ARRAYS, HeadRecord, HeadRecordError, describe_head, head_content_hash,
                                      head_from_tensors, head_to_tensors)


@pytest.fixture(scope="module")
def head():
    return load_flame_model(None)


def test_builtin_record_names_the_code_version(head):
    record = describe_head(head)
    assert record.name == "builtin" and record.version == BUILTIN_VERSION
    assert record.content_hash.startswith("sha256:") and len(record.content_hash) == len("sha256:") + 32
    assert (record.num_vertices, record.num_shape, record.num_expression) == (head.num_vertices, 60, 24)
    assert HeadRecord.from_dict(record.to_dict()) == record


def test_tensors_round_trip_exactly(head):
    tensors = head_to_tensors(head)
    assert set(tensors) == set(HEAD_ARRAYS)
    assert tensors["faces"].dtype == torch.int64 and tensors["shapedirs"].dtype == torch.float32
    back = head_from_tensors(tensors, describe_head(head), source="test")
    for name, (_, get) in HEAD_ARRAYS.items():
        np.testing.assert_array_equal(np.asarray(get(back)), np.asarray(get(head)), err_msg=name)
    assert head_content_hash(back) == head_content_hash(head) and back.name == "builtin"


def test_hash_sees_one_changed_value_and_corruption_is_refused(head):
    moved = head.v_template.copy()
    moved[100, 1] += 1e-6
    assert head_content_hash(dataclasses.replace(head, v_template=moved)) != head_content_hash(head)
    tensors = head_to_tensors(head)
    tensors["exprdirs"][5, 0, 3] += 0.5
    with pytest.raises(HeadRecordError, match="hash to .* but the record says"):
        head_from_tensors(tensors, describe_head(head), source="x.n3d")
    tensors = head_to_tensors(head)
    tensors["faces"] = tensors["faces"].to(torch.int32)
    with pytest.raises(HeadRecordError, match="'faces' is int32, expected int64"):
        head_from_tensors(tensors, describe_head(head), source="x.n3d")
    del tensors["uv_mask"]
    with pytest.raises(HeadRecordError, match="missing \\['uv_mask'\\]"):
        head_from_tensors(tensors, describe_head(head), source="x.n3d")


def test_record_validation_messages():
    with pytest.raises(HeadRecordError, match="'version' must be a non-empty string"):
        HeadRecord.from_dict({"name": "builtin", "version": "", "content_hash": "sha256:00"})
    with pytest.raises(HeadRecordError, match="must start with 'sha256:'"):
        HeadRecord.from_dict({"name": "builtin", "version": "v2", "content_hash": "md5:00"})
    with pytest.raises(HeadRecordError, match="expected an object"):
        HeadRecord.from_dict(["builtin"])
