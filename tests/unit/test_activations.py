"""SiLU, sigmoid, hard-swish, hard-sigmoid and squeeze-excitation's channel scaling: their values
and gradients, a squeeze-excitation block under every scheme, its bytes and its costs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from bnsim.config.machine import load_machine, machine_from_dict
from bnsim.errors import ConfigError, WorkloadError
from bnsim.graph import build_network
from bnsim.graph.layer import (
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Hardsigmoid,
    Hardswish,
    Input,
    Linear,
    Mul,
    ReLU,
    Sigmoid,
    SiLU,
    SoftmaxCrossEntropy,
)
from bnsim.schedule import OpKind
from bnsim.schemes import build_schedule
from bnsim.sim import simulate
from bnsim.trace import SimOptions, library_reorders
from bnsim.trace.dataflow import split_work
from bnsim.verify import activations as act
from bnsim.verify import check_schedule_against_reference

REPO = Path(__file__).resolve().parents[2]
KINDS = ("silu", "sigmoid", "hardswish", "hardsigmoid")


def test_values_as_pytorch_defines_them() -> None:
    x = np.array([-4.0, -3.0, 0.0, 1.0, 3.0, 4.0])
    assert act.activation_fwd("sigmoid", np.array([0.0]))[0] == 0.5
    assert act.activation_fwd("silu", np.array([1.0]))[0] == pytest.approx(0.7310585786300049)
    assert list(act.activation_fwd("hardswish", x)) == pytest.approx([0, 0, 0, 4 / 6, 3, 4])
    assert list(act.activation_fwd("hardsigmoid", x)) == pytest.approx([0, 0, 0.5, 4 / 6, 1, 1])
    assert act.activation_fwd("sigmoid", np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_equal_central_differences(kind: str) -> None:
    """Away from the kinks of the hard functions (±3), the gradient is the derivative."""
    x = np.array([-5.0, -2.5, -0.7, 0.0, 0.4, 1.9, 2.5, 5.0])
    step = 1e-6
    slope = (act.activation_fwd(kind, x + step) - act.activation_fwd(kind, x - step)) / (2 * step)
    saved = act.activation_fwd(kind, x) if kind == "sigmoid" else x
    dy = np.linspace(0.5, 2.0, x.size)
    assert act.activation_bwd(kind, dy, saved) == pytest.approx(dy * slope, abs=1e-8)


def test_channel_scaling_and_its_two_gradients() -> None:
    rng = np.random.default_rng(0)
    x, s, dy = (
        rng.normal(size=(2, 3, 4, 5)),
        rng.normal(size=(2, 3, 1, 1)),
        rng.normal(size=(2, 3, 4, 5)),
    )
    assert act.scale_fwd(x, s)[1, 2, 3, 4] == x[1, 2, 3, 4] * s[1, 2, 0, 0]
    assert np.array_equal(act.scale_bwd_data(dy, s), dy * s)
    ds = act.scale_bwd_scale(dy, x)
    assert ds.shape == (2, 3, 1, 1)
    assert ds[1, 0, 0, 0] == pytest.approx((dy[1, 0] * x[1, 0]).sum())


def squeeze_excitation(batch: int = 4, image: int = 8):
    """A conv-BN-SiLU block with squeeze-and-excitation (EfficientNet's MBConv, in small), then
    BN → hard-swish → hard-sigmoid."""
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="conv0", inputs=("input",), out_channels=16, kernel=3, padding=1),
        BatchNorm2d(name="bn0", inputs=("conv0",)),
        SiLU(name="act0", inputs=("bn0",)),
        GlobalAvgPool2d(name="squeeze", inputs=("act0",)),
        Conv2d(name="reduce", inputs=("squeeze",), out_channels=4, kernel=1, bias=True),
        SiLU(name="act1", inputs=("reduce",)),
        Conv2d(name="expand", inputs=("act1",), out_channels=16, kernel=1, bias=True),
        Sigmoid(name="gate", inputs=("expand",)),
        Mul(name="excite", inputs=("act0", "gate")),
        Conv2d(name="conv1", inputs=("excite",), out_channels=16, kernel=1),
        BatchNorm2d(name="bn1", inputs=("conv1",)),
        Hardswish(name="act2", inputs=("bn1",)),
        Hardsigmoid(name="act3", inputs=("act2",)),
        GlobalAvgPool2d(name="pool", inputs=("act3",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("squeeze_excitation", layers, batch=batch, image=image)


@pytest.mark.parametrize("scheme", ["baseline", "fission", "bnff", "recompute"])
def test_a_squeeze_excitation_block_matches_the_reference(scheme: str) -> None:
    schedule = build_schedule(squeeze_excitation(), scheme, input_grad=True)
    report = check_schedule_against_reference(schedule, seed=0)
    assert report.passed, report.worst


def test_the_backward_reads_what_pytorch_saves() -> None:
    """SiLU, hard-swish and hard-sigmoid read their input; sigmoid its output; the multiply's
    scale gradient reads the map it scaled."""
    schedule = build_schedule(squeeze_excitation(), "baseline")
    reads = {
        kernel.name: kernel.main_op().reads
        for kernel in schedule.kernels
        if kernel.main_op().kind in (OpKind.ACTIVATION_BWD, OpKind.SCALE_GRAD, OpKind.SCALE_BWD)
    }
    assert reads["act0.bwd_data"][1] == "act:bn0"
    assert reads["gate.bwd_data"][1] == "act:gate"
    assert reads["act3.bwd_data"][1] == "act:act2"
    assert reads["excite.bwd_data"][1] == "act:gate"
    assert reads["excite.bwd_data.scale"][1] == "act:act0"


def test_the_scale_is_read_once_per_sample_and_channel_of_a_tile(
    kernel_bytes: Callable[..., dict[str, int]],
) -> None:
    """excite.fwd on one core of tiny: 4 × 16 × 8 × 8 fp32 maps (16 KiB per sample) and a
    4 × 16 scale (64 bytes per sample)."""
    machine = load_machine(REPO / "hwconfigs" / "tiny.yaml").with_overrides(["cores.count=1"])
    schedule = build_schedule(squeeze_excitation(), "baseline")
    assert kernel_bytes(schedule, machine, "excite.fwd") == {
        "act:act0": 4 * 4096,
        "act:gate": 4 * 64,
        "act:excite": 4 * 4096,
    }


def test_every_fidelity_simulates_them_on_every_bundled_machine() -> None:
    network = squeeze_excitation(image=16)
    for name in ("tiny", "cmp16", "v100", "zen4-2c", "zen4-2c-nhwc"):
        machine = load_machine(REPO / "hwconfigs" / f"{name}.yaml")
        schedule = build_schedule(network, "bnff", reorders=library_reorders(machine))
        for fidelity in ("fast", "analytic"):
            result = simulate(schedule, machine, SimOptions(fidelity=fidelity))
            costed = {
                row.op for row in result.traffic if row.op.startswith(("activation", "scale"))
            }
            assert costed == {
                "activation_fwd",
                "activation_bwd",
                "scale_fwd",
                "scale_bwd",
                "scale_grad",
            }, (name, fidelity)


def test_a_machine_without_their_cost_is_refused_by_name() -> None:
    document = yaml.safe_load((REPO / "hwconfigs" / "tiny.yaml").read_text())
    bare = copy.deepcopy(document)
    del bare["compute"]["cycles_per_element"]["activation_fwd"]
    machine = machine_from_dict(bare)
    with pytest.raises(ConfigError, match=r"cycles_per_element\.activation_fwd: required by layer"):
        simulate(build_schedule(squeeze_excitation(), "baseline"), machine)


def test_a_scale_of_the_wrong_shape_is_refused() -> None:
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="conv0", inputs=("input",), out_channels=16, kernel=3, padding=1),
        Conv2d(name="conv1", inputs=("input",), out_channels=8, kernel=3, padding=1),
        Mul(name="excite", inputs=("conv0", "conv1")),
        GlobalAvgPool2d(name="pool", inputs=("excite",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    with pytest.raises(WorkloadError, match=r"layer 'excite' \(mul\): expects a scale of 16×1×1"):
        build_network("bad", layers, batch=2, image=8)


@pytest.mark.parametrize("name", ["cmp16", "v100", "zen4-2c-nhwc"])
def test_the_libraries_splits_of_them_match_the_reference(name: str) -> None:
    machine = load_machine(REPO / "hwconfigs" / f"{name}.yaml")
    schedule = build_schedule(squeeze_excitation(), "bnff", reorders=library_reorders(machine))

    def boxes(kernel):  # type: ignore[no-untyped-def]
        return split_work(schedule, kernel, machine).boxes()

    report = check_schedule_against_reference(schedule, seed=0, boxes=boxes)
    assert report.passed, report.worst


def test_a_resnext_block_with_a_grouped_convolution_matches_the_reference() -> None:
    """ResNeXt's 3×3 convolution in 32 groups of 2 channels, between BN + ReLU pairs that bnff
    fuses into it, split as MKL-DNN and CUTLASS split it."""
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="conv0", inputs=("input",), out_channels=64, kernel=1),
        BatchNorm2d(name="bn0", inputs=("conv0",)),
        ReLU(name="relu0", inputs=("bn0",)),
        Conv2d(name="grouped", inputs=("relu0",), out_channels=64, kernel=3, padding=1, groups=32),
        BatchNorm2d(name="bn1", inputs=("grouped",)),
        ReLU(name="relu1", inputs=("bn1",)),
        Conv2d(name="conv2", inputs=("relu1",), out_channels=64, kernel=1),
        GlobalAvgPool2d(name="pool", inputs=("conv2",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    network = build_network("resnext_block", layers, batch=4, image=8)
    for name in ("cmp16", "v100"):
        machine = load_machine(REPO / "hwconfigs" / f"{name}.yaml")
        schedule = build_schedule(network, "bnff", input_grad=True)
        fused = [k.name for k in schedule.kernels if len(k.ops) > 1 and "grouped" in k.name]
        assert "grouped.fwd" in fused

        def boxes(kernel, schedule=schedule, machine=machine):  # type: ignore[no-untyped-def]
            return split_work(schedule, kernel, machine).boxes()

        report = check_schedule_against_reference(schedule, seed=0, boxes=boxes)
        assert report.passed, (name, report.worst)


def mbconv(batch: int = 4, image: int = 8):
    """EfficientNet's inverted residual, in small: 1×1 expand → BN → SiLU → 3×3 depthwise → BN →
    SiLU → 1×1 project → BN."""
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="stem", inputs=("input",), out_channels=8, kernel=3, padding=1),
        Conv2d(name="expand", inputs=("stem",), out_channels=32, kernel=1),
        BatchNorm2d(name="bn0", inputs=("expand",)),
        SiLU(name="act0", inputs=("bn0",)),
        Conv2d(name="depthwise", inputs=("act0",), out_channels=32, kernel=3, padding=1, groups=32),
        BatchNorm2d(name="bn1", inputs=("depthwise",)),
        SiLU(name="act1", inputs=("bn1",)),
        Conv2d(name="project", inputs=("act1",), out_channels=8, kernel=1),
        BatchNorm2d(name="bn2", inputs=("project",)),
        GlobalAvgPool2d(name="pool", inputs=("bn2",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("mbconv", layers, batch=batch, image=image)


def test_bnff_fuses_bn_and_silu_as_bn_and_relu_and_keeps_what_silu_backward_reads() -> None:
    """Normalize + SiLU in the consumer conv's prologue, SiLU's backward and the BN reductions
    in its backward-data epilogue; unlike ReLU's, SiLU's backward reads the BN output, which bnff
    therefore stores and recompute rebuilds from the BN input where it is read."""
    schedule = build_schedule(mbconv(), "bnff", input_grad=True)
    kernels = {kernel.name: kernel for kernel in schedule.kernels}
    prologue = [(op.kind, op.placement.value) for op in kernels["depthwise.fwd"].ops]
    assert prologue[:2] == [(OpKind.BN_APPLY, "prologue"), (OpKind.ACTIVATION_FWD, "prologue")]
    epilogue = [op.kind for op in kernels["depthwise.bwd_data"].ops]
    assert epilogue[-2:] == [OpKind.ACTIVATION_BWD, OpKind.BN_GRAD_REDUCE]
    assert not schedule.tensor("act:bn0").transient
    assert check_schedule_against_reference(schedule, seed=0).passed
    recompute = build_schedule(mbconv(), "recompute", input_grad=True)
    kernels = {kernel.name: kernel for kernel in recompute.kernels}
    assert recompute.tensor("act:bn0").transient
    assert [op.attr("per_load") for op in kernels["depthwise.fwd"].ops[:2]] == [True, True]
    backward = kernels["depthwise.bwd_data"].ops
    assert (
        next(op for op in backward if op.kind is OpKind.ACTIVATION_BWD).reads[1] == "act:bn0~mask"
    )
    assert check_schedule_against_reference(recompute, seed=0).passed
