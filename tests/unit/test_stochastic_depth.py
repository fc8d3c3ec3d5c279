"""Stochastic depth by sample (EfficientNet's residual branches): its values, a block under every
scheme, its bytes and its costs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from bnsim.config.machine import load_machine, machine_from_dict
from bnsim.errors import ConfigError
from bnsim.graph import Network, build_network
from bnsim.graph.layer import (
    Add,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Layer,
    Linear,
    SiLU,
    SoftmaxCrossEntropy,
    StochasticDepth,
)
from bnsim.schedule import OpKind
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import library_reorders
from bnsim.trace.dataflow import split_work
from bnsim.verify import check_schedule_against_reference, initial_values
from bnsim.verify import reference as ref
from bnsim.verify.network import reference_step

REPO = Path(__file__).resolve().parents[2]


def residual_block(batch: int = 8, image: int = 8, p: float = 0.5) -> Network:
    """conv → BN → SiLU → conv → BN → stochastic depth, added to the block's input."""
    layers: list[Layer] = [
        Input(name="input", channels=3),
        Conv2d(name="stem", inputs=("input",), out_channels=16, kernel=3, padding=1),
        Conv2d(name="conv0", inputs=("stem",), out_channels=16, kernel=3, padding=1),
        BatchNorm2d(name="bn0", inputs=("conv0",)),
        SiLU(name="act0", inputs=("bn0",)),
        Conv2d(name="conv1", inputs=("act0",), out_channels=16, kernel=1),
        BatchNorm2d(name="bn1", inputs=("conv1",)),
        StochasticDepth(name="drop", inputs=("bn1",), p=p),
        Add(name="sum", inputs=("drop", "stem")),
        GlobalAvgPool2d(name="pool", inputs=("sum",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("residual_block", layers, batch=batch, image=image)


def test_a_sample_is_kept_whole_or_dropped_whole() -> None:
    """Seed 0 keeps some of the 8 samples and drops others; a kept one is scaled by 1/(1 − p)."""
    schedule = build_schedule(residual_block(), "baseline")
    initial = initial_values(schedule, 0)
    params = {name: value.astype(np.float64) for name, value in initial.items()}
    expected = reference_step(
        schedule.network, params, {"act:input": params["act:input"], "labels": initial["labels"]}
    )
    keep = ref.dropout_mask("drop", (8, 1, 1, 1), 0.5, 0).reshape(8)
    assert 0 < keep.sum() < 8
    dropped, kept = expected["act:drop"][~keep], expected["act:drop"][keep]
    assert np.all(dropped == 0)
    assert np.allclose(kept, 2 * expected["act:bn1"][keep])


@pytest.mark.parametrize("scheme", ["baseline", "fission", "bnff", "recompute"])
def test_a_block_with_stochastic_depth_matches_the_reference(scheme: str) -> None:
    schedule = build_schedule(residual_block(), scheme, input_grad=True)
    report = check_schedule_against_reference(schedule, seed=0)
    assert report.passed, report.worst


@pytest.mark.parametrize("name", ["v100", "zen4-2c-nhwc"])
def test_the_libraries_splits_of_it_match_the_reference(name: str) -> None:
    machine = load_machine(REPO / "hwconfigs" / f"{name}.yaml")
    schedule = build_schedule(residual_block(), "bnff", reorders=library_reorders(machine))

    def boxes(kernel):  # type: ignore[no-untyped-def]
        return split_work(schedule, kernel, machine).boxes()

    report = check_schedule_against_reference(schedule, seed=0, boxes=boxes)
    assert report.passed, report.worst


def test_it_moves_the_map_and_one_value_per_sample(
    kernel_bytes: Callable[..., dict[str, int]],
) -> None:
    """drop.fwd and drop.bwd_data on one core of tiny: 8 × 16 × 8 × 8 fp32 maps (4 KiB per
    sample) and 8 keep values of 4 bytes."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml").with_overrides(["cores.count=1"])
    schedule = build_schedule(residual_block(), "baseline")

    def bytes_by_tensor(kernel_name: str) -> dict[str, int]:
        return kernel_bytes(schedule, machine, kernel_name)

    assert bytes_by_tensor("drop.fwd") == {
        "act:bn1": 8 * 4096,
        "act:drop": 8 * 4096,
        "mask:drop": 8 * 4,
    }
    backward = bytes_by_tensor("drop.bwd_data")
    assert backward.pop("mask:drop") == 8 * 4
    assert sorted(backward.values()) == [8 * 4096, 8 * 4096]


def test_it_is_costed_as_a_broadcast_multiply() -> None:
    """torchvision multiplies the map by its sample's value: scale_fwd and scale_bwd."""
    machine = load_machine(REPO / "hwconfigs" / "zen4-2c.yaml")
    schedule = build_schedule(residual_block(), "baseline", reorders=library_reorders(machine))
    result = simulate(schedule, machine)
    ops = {row.op for row in result.traffic}
    assert {OpKind.STOCHASTIC_DEPTH_FWD.value, OpKind.STOCHASTIC_DEPTH_BWD.value} <= ops
    document = yaml.safe_load((REPO / "hwconfigs" / "tiny.yaml").read_text())
    bare = copy.deepcopy(document)
    del bare["compute"]["cycles_per_element"]["scale_bwd"]
    with pytest.raises(
        ConfigError, match=r"cycles_per_element\.scale_bwd: required by layer 'drop'"
    ):
        simulate(build_schedule(residual_block(), "baseline"), machine_from_dict(bare))


def test_a_probability_of_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="less than 1"):
        StochasticDepth(name="drop", inputs=("x",), p=1.0)
