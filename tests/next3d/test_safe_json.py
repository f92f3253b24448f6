"""next3d.safe_json: bounded size and depth, no NaN/Infinity, one clear error."""

import pytest

from next3d.safe_json import JsonLimitError, json_depth, load_json_file, loads_limited


def test_depth_ignores_brackets_inside_strings():
    assert json_depth('{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth('"[\\"[["') == 0
    assert json_depth(b"[" * 5000 + b"]" * 5000) == 5000


def test_deep_nesting_is_refused_before_recursing():
    with pytest.raises(JsonLimitError, match="nested 100000 levels deep, more than the 32 allowed"):
        loads_limited(b"[" * 100000 + b"]" * 100000, "config.json")
    assert loads_limited("[[1]]", max_depth=2) == [[1]]


def test_size_constants_and_syntax():
    with pytest.raises(JsonLimitError, match="larger than"):
        loads_limited(b" " * 2000 + b"{}", "x", max_bytes=1000)
    for text in ("NaN", '{"a": Infinity}', "[-Infinity]"):
        with pytest.raises(JsonLimitError, match="not valid JSON"):
            loads_limited(text, "x")
    with pytest.raises(JsonLimitError, match="not valid JSON"):
        loads_limited("{", "x")
    with pytest.raises(JsonLimitError, match="not UTF-8"):
        loads_limited(b"\xff\xfe{}", "x")
    assert loads_limited('{"a": [1.5, "x", null, true]}') == {"a": [1.5, "x", None, True]}


def test_file_size_checked_before_reading(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"k": 1}')
    assert load_json_file(path) == {"k": 1}
    path.write_bytes(b" " * 5000)
    with pytest.raises(JsonLimitError, match=str(path)):
        load_json_file(path, max_bytes=100)
