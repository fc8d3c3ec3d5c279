"""A sweep planned into tasks, each validated and keyed by a digest of what decides its result."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any

from bnsim import __version__, units
from bnsim.config.machine import Machine, load_machine
from bnsim.errors import ConfigError
from bnsim.experiment.sweeps.grid import POINT_KEYS, Sweep
from bnsim.graph import Network, load_workload
from bnsim.graph.load import network_to_dict
from bnsim.schemes import parse_scheme
from bnsim.trace import FIDELITIES, SimOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """One simulation of a sweep: a grid combination, a workload and a scheme."""

    index: int  # position in grid order
    values: tuple[tuple[str, str], ...]  # the grid's (key, value) of this task
    workload: str
    scheme: str
    machine: Machine
    network: Network
    options: SimOptions
    key: str  # digest of the inputs


def plan(sweep: Sweep) -> list[Task]:
    """Every task of the sweep, in grid order, validated.

    Raises:
        ConfigError: a bad hardware key or value (naming the grid point), workload, scheme or
            fidelity; WorkloadError: a network that cannot be built.
    """
    if sweep.fidelity not in FIDELITIES:
        raise ConfigError(f"unknown fidelity {sweep.fidelity!r}; expected {', '.join(FIDELITIES)}")
    base = load_machine(sweep.hw, sweep.overrides)
    machines: dict[tuple[str, ...], Machine] = {}
    networks: dict[tuple[str, int | None, int | None], Network] = {}
    documents: dict[int, str] = {}  # id(network) → its canonical JSON
    options = SimOptions(
        fidelity=sweep.fidelity,
        tiles_per_core=sweep.tiles_per_core,
        step_bytes=sweep.step_bytes,
    )
    tasks: list[Task] = []
    keys = [key for key, _ in sweep.grid]
    for combination in itertools.product(*(values for _, values in sweep.grid)):
        values = tuple(zip(keys, combination, strict=True))
        chosen = dict(values)
        hardware = tuple(f"{k}={v}" for k, v in values if k not in POINT_KEYS)
        machine = machines.get(hardware)
        if machine is None:
            try:
                machine = machines[hardware] = base.with_overrides(_whole_sets(base, hardware))
            except ConfigError as err:
                raise ConfigError(f"grid point {', '.join(hardware)}: {err}") from None
            options.check(machine)
        batch = _whole(chosen["batch"], "batch") if "batch" in chosen else sweep.batch
        image = _whole(chosen["image"], "image") if "image" in chosen else sweep.image
        workloads = (chosen["workload"],) if "workload" in chosen else sweep.workloads
        schemes = (chosen["scheme"],) if "scheme" in chosen else sweep.schemes
        for workload in workloads:
            network = networks.get((workload, batch, image))
            if network is None:
                network = networks[workload, batch, image] = load_workload(
                    workload, batch=batch, image=image
                )
                documents[id(network)] = _canonical(network_to_dict(network))
            for scheme in schemes:
                spec = parse_scheme(scheme)
                digest = _digest(machine, documents[id(network)], spec.label(), options)
                tasks.append(
                    Task(
                        len(tasks),
                        values,
                        workload,
                        spec.label(),
                        machine,
                        network,
                        options,
                        digest,
                    )
                )
    return tasks


CACHES = ("private", "llc")


def _whole_sets(base: Machine, hardware: tuple[str, ...]) -> list[str]:
    """A grid point's hardware overrides with each cache size rounded down to whole sets of that
    point's ways × block, with a note: a sweep over sizes (2MiB..64MiB*2) must run on an 11-way
    cache too. `--set` keeps its size exact and refuses one that is not whole sets."""
    sizes = [item for item in hardware if item.split("=", 1)[0] in (f"{c}.size" for c in CACHES)]
    if not sizes:
        return list(hardware)
    others = base.with_overrides([item for item in hardware if item not in sizes])
    rounded = []
    for item in hardware:
        if item not in sizes:
            rounded.append(item)
            continue
        key, text = item.split("=", 1)
        cache = getattr(others, key.split(".")[0])
        set_bytes = cache.ways * cache.block_bytes
        size = units.parse_bytes(text)
        whole = size // set_bytes * set_bytes
        if whole != size and whole > 0:
            logger.warning(
                "grid point %s: %s %s is not whole sets of %d ways × %s; simulated at %s B "
                "(%s sets)",
                ", ".join(hardware),
                key,
                text,
                cache.ways,
                units.bytes_text(cache.block_bytes),
                f"{whole:,}",
                f"{whole // set_bytes:,}",
            )
        rounded.append(f"{key}={whole}B" if whole not in (size, 0) else item)
    return rounded


def _whole(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--grid {key}={text}: expected a positive whole number") from None
    if value < 1:
        raise ConfigError(f"--grid {key}={text}: expected a positive whole number")
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _digest(machine: Machine, network_json: str, scheme: str, options: SimOptions) -> str:
    inputs = {
        "machine": machine.to_dict(),
        "network": network_json,
        "scheme": scheme,
        "fidelity": options.fidelity,
        "tiles_per_core": options.tiles_per_core,
        "step_bytes": options.step(),
        "bnsim": __version__,
    }
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()[:32]
