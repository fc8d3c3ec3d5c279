"""Shared fixtures: paths into the repository and small machines and networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.graph import Network
from bnsim.graph.zoo import build_model
from bnsim.hw import Machine, load_machine

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def tiny_machine() -> Machine:
    """hwconfigs/tiny.yaml."""
    return load_machine(REPO / "hwconfigs" / "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_net() -> Network:
    """tiny_cnn at batch 2."""
    return build_model("tiny_cnn", batch=2)
