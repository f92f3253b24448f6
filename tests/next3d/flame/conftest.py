"""Fixtures for the FLAME tests: the built-in head generated once per session into tmp."""

from __future__ import annotations

import pytest

from next3d.flame.builtin import BUILTIN_VERSION
from next3d.flame.builtin.writer import write_builtin_head
from next3d.flame.files import load_flame_folder


@pytest.fixture(scope="session")
def builtin_root(tmp_path_factory):
    """A built-in head cache root (contains the `BUILTIN_VERSION` folder), generated once."""
    root = tmp_path_factory.mktemp("builtin_head")
    write_builtin_head(root / BUILTIN_VERSION)
    return root


@pytest.fixture(scope="session")
def builtin_data(builtin_root):
    return load_flame_folder(root_folder(builtin_root))


def root_folder(root):
    return root / BUILTIN_VERSION
