"""next3d.limits: bounds, memory budget, declared arrays against the bytes present."""

import io

import numpy as np
import pytest

from next3d import limits
from next3d.limits import LimitError


def test_parse_and_format_bytes():
    assert limits.parse_bytes("8G") == 8 << 30
    assert limits.parse_bytes("512MiB") == 512 << 20
    assert limits.parse_bytes("1.5k") == 1536
    assert limits.parse_bytes("1024") == 1024
    for bad in ("lots", "-1G", "nanG", "0"):
        with pytest.raises(LimitError, match="NEXT3D_MEMORY_LIMIT"):
            limits.parse_bytes(bad)
    assert limits.format_bytes(1536) == "1.5 KiB" and limits.format_bytes(3 << 30) == "3 GiB"


def test_memory_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("NEXT3D_MEMORY_LIMIT", "2G")
    assert limits.memory_budget() == 2 << 30
    monkeypatch.delenv("NEXT3D_MEMORY_LIMIT")
    assert limits.memory_budget() == (limits.physical_memory() or 16 << 30)


def test_check_int_and_float_name_the_value():
    assert limits.check_int("views", 3, 1, 10) == 3
    with pytest.raises(LimitError, match=r"views: 0 is outside \[1, 10\]"):
        limits.check_int("views", 0, 1, 10)
    with pytest.raises(LimitError, match="expected an integer"):
        limits.check_int("views", 2.0)
    with pytest.raises(LimitError, match="expected an integer"):
        limits.check_int("views", True)
    assert limits.check_float("psi", np.float32(0.5), -2, 2) == 0.5
    for bad in (float("nan"), float("inf"), -1e308):
        with pytest.raises(LimitError, match="psi"):
            limits.check_float("psi", bad, -2, 2)


def test_check_finite_array_names_the_first_bad_index():
    arr = np.zeros((2, 3))
    arr[1, 2] = np.inf
    with pytest.raises(LimitError, match=r"first at index \(1, 2\)"):
        limits.check_finite_array("v", arr)
    limits.check_finite_array("ints", np.arange(3))


def test_allocation_checked_in_python_ints_without_overflow(monkeypatch):
    monkeypatch.setenv("NEXT3D_MEMORY_LIMIT", "1G")
    assert limits.check_allocation("grid", (256, 256, 256), 4) == 64 << 20
    with pytest.raises(LimitError, match=r"grid of shape \(1000000, 1000000\): would need 3.64 TiB"):
        limits.check_allocation("grid", (10 ** 6, 10 ** 6), 4)
    # 2**64 elements would overflow int64 arithmetic; Python ints do not.
    with pytest.raises(LimitError):
        limits.check_allocation("grid", (2 ** 32, 2 ** 32), 1)
    with pytest.raises(LimitError, match="not a non-negative integer"):
        limits.check_allocation("grid", (-1, 4), 4)


def test_declared_array_must_fit_the_bytes_present(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(10, dtype=np.float32))
    assert limits.check_npy_file(path) == ((10,), np.dtype(np.float32))
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
        fh.write(b"\0" * 64)
    with pytest.raises(LimitError, match=r"declares a float64 array of shape \(1000000, 1000000\).*holds only 64 B"):
        limits.check_npy_file(path)
    (tmp_path / "b.npy").write_bytes(b"not numpy")
    with pytest.raises(LimitError, match="not a readable .npy"):
        limits.check_npy_file(tmp_path / "b.npy")
