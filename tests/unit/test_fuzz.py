"""Fuzzing: mutated configs and workloads are accepted whole or refused cleanly, never crash bnsim;
random valid small networks on random valid machines always simulate, and bnff verifies on them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bnsim.config.machine import machine_from_dict
from bnsim.errors import BnsimError, ConfigError, WorkloadError
from bnsim.graph import build_network
from bnsim.graph.layer import (
    Add,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Linear,
    MaxPool2d,
    ReLU,
    SoftmaxCrossEntropy,
)
from bnsim.graph.load import workload_from_dict
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.verify import verify

REPO = Path(__file__).resolve().parents[2]
TINY_HW: dict[str, Any] = yaml.safe_load((REPO / "hwconfigs" / "tiny.yaml").read_text())
NETWORK: dict[str, Any] = yaml.safe_load(
    (REPO / "tests" / "bad_inputs" / "workloads" / "zero_batch.yaml")
    .read_text()
    .replace("batch: 0", "batch: 4")
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def key_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += key_paths(item, (*prefix, index))
    return paths


def replaced(value: Any, kind: str, factor: float) -> Any:
    if kind == "scale" and isinstance(value, int | float) and not isinstance(value, bool):
        return type(value)(value * factor) if isinstance(value, float) else int(value * factor)
    if kind == "scale" and isinstance(value, str) and value[:1].isdigit():
        number = "".join(ch for ch in value if ch.isdigit() or ch == ".")
        return value.replace(number, f"{float(number) * factor:g}", 1)
    if kind == "string":
        return "fuzz"
    if kind == "list":
        return [value]
    if kind == "none":
        return None
    return -1


@st.composite
def mutations(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 2))):
        paths = key_paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        # scaling keeps many documents valid (so that accepted ones get simulated too)
        kind = draw(st.sampled_from(["scale"] * 6 + ["drop", "string", "list", "none", "negative"]))
        if kind == "drop":
            del parent[path[-1]]
        else:
            factor = draw(st.sampled_from([2.0, 4.0, 0.5, 3.0, 0.0, 1e9, -1.0]))
            parent[path[-1]] = replaced(parent[path[-1]], kind, factor)
    return document


def accepted_or_refused(
    load: Callable[..., Any], document: dict[str, Any], error: type[BnsimError]
) -> tuple[Any, str]:
    """(what `load` built, "") or (None, its error message); any other exception propagates."""
    try:
        built = load(document, source="fuzz.yaml")
    except error as err:
        event("refused")
        return None, str(err)
    event("accepted")
    return built, ""


@FUZZ
@given(mutations(TINY_HW))
def test_a_mutated_machine_is_accepted_or_refused_cleanly(document: dict[str, Any]) -> None:
    machine, refusal = accepted_or_refused(machine_from_dict, document, ConfigError)
    if refusal:
        assert refusal.startswith("fuzz.yaml: ")
        return
    # accepted: it must describe a machine that simulates
    assert machine.llc.size_bytes % (machine.llc.ways * machine.llc.block_bytes) == 0
    network = workload_from_dict(NETWORK)
    try:
        run = simulate(build_schedule(network, "bnff"), machine)
    except BnsimError:
        return  # an infeasible but valid machine is refused with a BnsimError, not a crash
    assert run.cycles > 0
    assert run.dram_bytes() > 0


@st.composite
def rewired(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """The network with one layer's inputs pointed at other layers (or itself, or nothing)."""
    document = draw(mutations(base)) if draw(st.booleans()) else copy.deepcopy(base)
    layers = document.get("layers")
    if not isinstance(layers, list) or not layers:
        return document
    names = [layer.get("name") for layer in layers if isinstance(layer, dict)] + ["input"]
    target = draw(st.sampled_from([layer for layer in layers if isinstance(layer, dict)] or [{}]))
    target["inputs"] = draw(st.lists(st.sampled_from(names), min_size=0, max_size=3))
    return document


@FUZZ
@given(st.one_of(mutations(NETWORK), rewired(NETWORK)))
def test_a_mutated_workload_is_accepted_or_refused_cleanly(document: dict[str, Any]) -> None:
    network, refusal = accepted_or_refused(workload_from_dict, document, WorkloadError)
    if refusal:
        assert refusal.startswith("fuzz.yaml")
        return
    machine = machine_from_dict(TINY_HW)
    run = simulate(build_schedule(network, "bnff"), machine)
    assert run.cycles > 0


@st.composite
def small_networks(draw: st.DrawFn) -> Any:
    """A random valid CNN: conv-BN-ReLU stages, optional residual adds and pooling, a classifier."""
    channels = draw(st.sampled_from([4, 8, 12]))
    layers: list[Any] = [Input(name="input", channels=3)]
    previous, width = "input", 3
    for stage in range(draw(st.integers(1, 3))):
        out = draw(st.sampled_from([4, 8, 12, 16]))
        kernel = draw(st.sampled_from([1, 3]))
        layers += [
            Conv2d(name=f"s{stage}.conv", inputs=(previous,), out_channels=out, kernel=kernel,
                   padding=kernel // 2),
            BatchNorm2d(name=f"s{stage}.bn", inputs=(f"s{stage}.conv",)),
            ReLU(name=f"s{stage}.relu", inputs=(f"s{stage}.bn",)),
        ]  # fmt: skip
        previous, width = f"s{stage}.relu", out
        if draw(st.booleans()):  # a residual block
            layers += [
                Conv2d(name=f"s{stage}.res", inputs=(previous,), out_channels=width, kernel=3,
                       padding=1),
                BatchNorm2d(name=f"s{stage}.resbn", inputs=(f"s{stage}.res",)),
                Add(name=f"s{stage}.add", inputs=(f"s{stage}.resbn", previous)),
            ]  # fmt: skip
            previous = f"s{stage}.add"
        if draw(st.booleans()):
            layers.append(MaxPool2d(name=f"s{stage}.pool", inputs=(previous,), kernel=2))
            previous = f"s{stage}.pool"
    layers += [
        GlobalAvgPool2d(name="gap", inputs=(previous,)),
        Flatten(name="flat", inputs=("gap",)),
        Linear(name="fc", inputs=("flat",), out_features=channels),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("fuzz", layers, batch=draw(st.sampled_from([2, 4])), image=16)


@st.composite
def small_machines(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(TINY_HW)
    document["cores"]["count"] = draw(st.integers(1, 4))
    ways = document["llc"]["ways"]
    document["llc"]["size"] = f"{draw(st.sampled_from([1, 4, 16, 64])) * ways * 64}B"
    document["dram"]["channels"] = draw(st.integers(1, 3))
    return machine_from_dict(document)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_networks(), small_machines())
def test_random_valid_networks_simulate_and_verify(network: Any, machine: Any) -> None:
    runs = {
        scheme: simulate(build_schedule(network, scheme), machine)
        for scheme in ("baseline", "bnff")
    }
    for run in runs.values():
        assert run.cycles > 0
        assert run.dram_bytes() > 0
        assert sum(row["dram_read_bytes"] for row in run.breakdown("phase")) == run.dram_read_bytes
    report = verify(network, "bnff", width_divisor=1)
    assert report.passed, report.worst
