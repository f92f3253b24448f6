"""Folder/zip storage: image probing without decoding, lazy per-process zip handles."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
from PIL import Image

from training.dataset_schema import DatasetError
from training.dataset_storage import Storage, decode_image, probe_image


def _encoded(fmt, size=(24, 24)):
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(0).randint(0, 255, size + (3,), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "a.png").write_bytes(_encoded("PNG"))
    (root / "b.jpg").write_bytes(_encoded("JPEG"))
    jpg = _encoded("JPEG")
    (root / "cut.jpg").write_bytes(jpg[: len(jpg) - 40])
    (root / "c.gif").write_bytes(_encoded("GIF"))
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        for p in root.iterdir():
            zf.write(p, p.name)
    return root


@pytest.mark.parametrize("zipped", [False, True])
def test_probe(store, zipped):
    s = Storage(store.with_suffix(".zip") if zipped else store)
    assert probe_image(s, "a.png") == ("PNG", 24, 24)
    assert probe_image(s, "b.jpg") == ("JPEG", 24, 24)
    with pytest.raises(DatasetError, match=r"cut.jpg: truncated JPEG"):
        probe_image(s, "cut.jpg")
    with pytest.raises(DatasetError, match=r"c.gif: GIF image; the data set format holds PNG or JPEG"):
        probe_image(s, "c.gif")
    assert decode_image(s, "a.png").shape == (24, 24, 3)
    assert s.names() == {"a.png", "b.jpg", "cut.jpg", "c.gif"}
    where = s.where("a.png")
    assert where.endswith("s.zip:a.png") if zipped else where.endswith("s/a.png")


def test_zip_handle_is_per_process(store):
    s = Storage(store.with_suffix(".zip"))
    s.read("a.png")
    first = s._zip
    clone = pickle.loads(pickle.dumps(s))
    assert clone._zip is None and clone.read("a.png") == s.read("a.png")  # pickling drops the handle
    s._zip_pid = -1  # as seen from a forked worker: another process opened it
    s.read("a.png")
    assert s._zip is not first and s._zip_pid > 0
