"""Where a compiler and ninja exist, every CPU op must actually build.

The per-op tests skip their compiled cases when a build falls back, so without this
test a broken C++ source would only show up as skips.
"""

import shutil

import pytest
from torch.utils import cpp_extension

from next3d.info import OP_MODULES
from torch_utils import custom_ops


def test_every_cpu_op_builds(monkeypatch):
    monkeypatch.setenv("NEXT3D_OPS", "auto")
    if not cpp_extension.is_ninja_available() or shutil.which("c++") is None:
        pytest.skip("no ninja or C++ compiler: compiled ops cannot be built here")
    import importlib

    for name in OP_MODULES:
        importlib.import_module(name)
    results = custom_ops.load_all(["cpu"])
    assert {"bias_act", "upfirdn2d", "rasterize"} <= set(results)
    failed = {op: st.reason for op, per_dev in results.items() for st in per_dev.values() if not st.ok}
    assert not failed, f"CPU ops fell back to the reference: {failed}"
