"""The README's Python example runs and its shape comments hold."""

import re

from helpers import REPO


def test_readme_python_example_runs():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our own README
    out = scope["out"]
    assert tuple(out["image"].shape) == (1, 3, 64, 64)
    assert tuple(out["image_raw"].shape) == (1, 3, 32, 32)
    assert tuple(out["image_depth"].shape) == (1, 1, 32, 32)


def test_readme_names_the_ci_commands():
    text = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install torch==2.13.0 -e ".[test]"' in text and 'pip install -q torch==2.13.0 -e ".[test]"' in ci
    assert "python -m pytest -q tests" in text and "python -m pytest -q tests" in ci
