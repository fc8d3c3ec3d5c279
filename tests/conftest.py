"""Shared fixtures: paths into the repository, small machines and networks, compulsory traffic."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bnsim.config.machine import Machine, load_machine
from bnsim.graph import Network
from bnsim.graph.zoo import build_model
from bnsim.schedule import Schedule
from bnsim.trace import SimOptions, Trace

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MARKERS = "not slow and not benchmark"  # pyproject.toml's addopts


def pytest_configure(config: pytest.Config) -> None:
    """Where the environment variable CI is set (CI services set it), the slow tests run too."""
    if os.environ.get("CI") and config.option.markexpr == DEFAULT_MARKERS:
        config.option.markexpr = "not benchmark"


KernelBytes = Callable[[Schedule, Machine, str], dict[str, int]]


@pytest.fixture(scope="session")
def kernel_bytes() -> KernelBytes:
    """Bytes each tensor streams in kernel `name` of a schedule on a machine, over all its boxes."""

    def by_tensor(schedule: Schedule, machine: Machine, name: str) -> dict[str, int]:
        trace = Trace(schedule, machine, SimOptions())
        index = next(i for i, kernel in enumerate(schedule.kernels) if kernel.name == name)
        boxes, _ = trace.boxes(index)
        found: dict[str, int] = {}
        for box in boxes:
            for _kind, source, _blocks, size in box.streams:
                tensor = trace.sources[source].tensor
                found[tensor] = found.get(tensor, 0) + size
        return found

    return by_tensor


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


def _first_read_bytes(schedule: Schedule, machine: Machine) -> int:
    trace = Trace(schedule, machine, SimOptions())
    seen: set[str] = set()
    total = 0
    for kernel in schedule.kernels:
        for name in kernel.memory_reads():
            if name not in seen and not schedule.tensor(name).transient:
                total += trace.stored_bytes(name)
            seen.add(name)
        seen.update(kernel.memory_writes())
    return total


@pytest.fixture(scope="session")
def first_read_bytes() -> Callable[[Schedule, Machine], int]:
    """Bytes of the tensors an iteration reads before anything writes them: each comes from DRAM
    at least once, whatever the caches (the compulsory reads)."""
    return _first_read_bytes
