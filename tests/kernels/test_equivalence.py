"""Every scheme's schedule, run tile by tile, computes what the layer-by-layer reference computes.

Also: tile order and tile size do not change the results, and deliberately broken schedules are
caught, by the legality check or by the numbers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bnsim.config.machine import load_machine
from bnsim.errors import SimulationError
from bnsim.graph import Network, build_network, load_workload
from bnsim.graph.layer import (
    AdaptiveAvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Input,
    Linear,
    ReLU,
    SoftmaxCrossEntropy,
)
from bnsim.graph.zoo import MODELS, build_model
from bnsim.schedule import Kernel, OpKind, Placement, Schedule, check_schedule, decompose
from bnsim.schedule.training import lower_training
from bnsim.schemes import build_schedule, parse_scheme
from bnsim.schemes.rewrite import fuse
from bnsim.verify import (
    check_schedule_against_reference,
    downscale,
    initial_values,
    scaled_spec,
    schedule_structure,
    verify,
)
from bnsim.verify.execute import execute_schedule

REPO = Path(__file__).resolve().parents[2]
WORKLOADS = REPO / "workloads"
CMP16 = load_machine(REPO / "hwconfigs" / "cmp16.yaml")
V100 = load_machine(REPO / "hwconfigs" / "v100.yaml")
ALL_SCHEMES = [
    "baseline",
    "baseline:bn_stats_passes=1",
    "baseline:fuse_bn_relu=true",
    "fission",
    "bnff",
    "bnff:wide_limit=8",
    "recompute",
    "bnff+sampling",
    "sampling:method=feature,fraction=0.25",
    "recompute+sampling:method=virtual",
    "fission+sampling:method=batch,fraction=0.5",
]


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_tiny_cnn_every_scheme_matches_the_reference(scheme: str) -> None:
    report = verify(build_model("tiny_cnn"), scheme)
    assert report.passed, report.worst
    assert report.max_rel_err < 1e-9
    assert report.num_tiles > report.num_kernels  # kernels really were split into tiles


@pytest.mark.parametrize("scheme", ["bnff", "recompute", "sampling:method=virtual"])
def test_hand_written_network_matches_the_reference(scheme: str) -> None:
    report = verify(load_workload(WORKLOADS / "custom_resnet_cifar.yaml"), scheme)
    assert report.passed, report.worst


def bn_first_network() -> Network:
    """A BN reading the network input: its scale and shift need gradients, its input none."""
    layers = [
        Input(name="input", channels=8),
        BatchNorm2d(name="bn", inputs=("input",)),
        ReLU(name="relu", inputs=("bn",)),
        Conv2d(name="conv", inputs=("relu",), out_channels=8, kernel=3, padding=1, bias=False),
        AdaptiveAvgPool2d(name="pool", inputs=("conv",), output_size=1),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=4),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("bn_first", layers, batch=4, image=8)


@pytest.mark.parametrize("scheme", ["baseline", "fission", "bnff", "recompute"])
def test_a_bn_on_the_input_gets_parameter_gradients_only(scheme: str) -> None:
    schedule = build_schedule(bn_first_network(), scheme)
    kinds = [(op.kind, op.layer) for kernel in schedule.kernels for op in kernel.ops]
    assert (OpKind.BN_GRAD_REDUCE, "bn") in kinds
    assert (OpKind.BN_GRAD_APPLY, "bn") not in kinds  # nobody needs the input's gradient
    assert {"dgamma:bn", "dbeta:bn"} <= set(schedule.tensors)
    report = verify(bn_first_network(), scheme)
    assert report.passed, report.worst


@pytest.mark.parametrize(
    "model", ["densenet121", "resnet50", "inception_v3", "mobilenet_v2", "vgg16_bn"]
)
@pytest.mark.parametrize("scheme", ["fission", "bnff", "recompute", "bnff+sampling"])
def test_zoo_schemes_match_the_reference(model: str, scheme: str) -> None:
    """The schedules issue's acceptance grid; each point runs in seconds at the down-scaled size."""
    report = verify(build_model(model), scheme, machine=CMP16)
    assert report.passed, report.worst
    tensors = build_schedule(build_model(model, batch=1), "baseline").tensors
    params = sum(1 for name in tensors if name.startswith(("w:", "b:", "gamma:", "beta:")))
    # every parameter's gradient, new value and momentum, and every BN's four statistics, at least
    assert report.tensors_compared >= 3 * params


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_verified_schedule_is_structurally_the_timed_one(model: str) -> None:
    """Same kernels, ops, placements, operands and fusion decisions at full and verified size."""
    network = build_model(model, batch=32)
    small = downscale(network, batch=8)
    for scheme in ("baseline", "fission", "bnff", "recompute", "bnff+sampling", "sampling"):
        spec = parse_scheme(scheme)
        timed = schedule_structure(build_schedule(network, spec))
        verified = schedule_structure(build_schedule(small, scaled_spec(spec, 8)))
        assert verified == timed, scheme


@pytest.mark.parametrize(("model", "scheme"), [("resnet50", "recompute"), ("densenet121", "bnff")])
def test_schedules_split_as_the_gpu_library_splits_them_match_the_reference(
    model: str, scheme: str
) -> None:
    report = verify(build_model(model), scheme, machine=V100)
    assert report.passed, report.worst


def test_verification_compares_every_parameter_gradient() -> None:
    report = verify(build_model("tiny_cnn"), "bnff")
    network = build_model("tiny_cnn")
    weights = [
        name
        for name in build_schedule(network, "bnff").tensors
        if name.startswith(("w:", "b:", "gamma:", "beta:"))
    ]
    # d<param>, the updated <param> and v:<param> for each; 4 statistics per BN; logits, loss (the
    # timed schedule computes no input gradient)
    num_bn = sum(1 for layer in network.layers if layer.layer_kind.value == "batchnorm2d")
    assert report.tensors_compared == 3 * len(weights) + 4 * num_bn + 2


def run(schedule: Schedule, **kwargs):
    return execute_schedule(schedule, initial_values(schedule, 0), **kwargs)


@pytest.mark.parametrize("scheme", ["bnff", "recompute", "baseline:fuse_bn_relu=true"])
def test_tile_order_and_tile_size_do_not_change_results(scheme: str) -> None:
    network = downscale(build_model("tiny_cnn"), batch=3)
    schedule = build_schedule(network, scheme, input_grad=True)
    untiled = run(schedule, boxes=lambda kernel: decompose(kernel.space, {}))
    for blocks in ({"n": 1, "c": 1, "h": 1, "e": 7}, {"n": 2, "c": 3, "h": 5}):
        for seed in (None, 1, 2):
            tiled = run(
                schedule,
                boxes=lambda kernel, blocks=blocks: decompose(kernel.space, blocks),
                shuffle_seed=seed,
            )
            for name, value in untiled.items():
                np.testing.assert_allclose(tiled[name], value, rtol=1e-11, atol=1e-13, err_msg=name)


def normalize_inside_the_statistics_kernel():
    """A wrong fusion: BN apply in the same kernel as the statistics that it needs, i.e. normalizing
    with statistics of the tiles seen so far instead of the whole batch."""
    network = downscale(build_model("tiny_cnn"), batch=2)
    draft = lower_training(network, input_grad=True)
    stats = draft.find(OpKind.BN_STATS, "stem.bn", part="var")
    fuse(draft, stats, draft.find(OpKind.BN_APPLY, "stem.bn"), Placement.EPILOGUE)
    return draft


def test_legality_check_rejects_normalizing_before_the_batch_is_reduced() -> None:
    with pytest.raises(
        SimulationError,
        match=r"kernel stem\.bn\.fwd\.var: bn_apply of stem\.bn reads "
        r"var:stem\.bn before the cross-tile reduction that produces it has finished",
    ):
        normalize_inside_the_statistics_kernel().freeze("broken", ())


def test_verification_catches_it_when_the_check_is_bypassed() -> None:
    draft = normalize_inside_the_statistics_kernel()
    schedule = Schedule(
        network=draft.network,
        scheme="broken",
        options=(),
        kernels=tuple(_kernels(draft)),
        tensors=draft.tensors,
    )
    report = check_schedule_against_reference(schedule)
    assert not report.passed
    # the statistics are not there yet, so the normalized tensor and everything after it is wrong
    assert report.worst[0].max_rel_err == float("inf")


def _kernels(draft):
    return [
        Kernel(name=k.name, phase=k.phase, ops=tuple(k.ops), space=k.space) for k in draft.kernels
    ]


def test_verification_catches_a_relu_backward_without_its_mask() -> None:
    """A wrong recomputation: ReLU backward takes its mask from the gradient instead of z."""
    network = downscale(build_model("tiny_cnn"), batch=2)
    schedule = build_schedule(network, "bnff", input_grad=True)
    kernels = []
    for kernel in schedule.kernels:
        ops = tuple(
            replace(op, reads=(op.reads[0], op.reads[0]))
            if op.kind is OpKind.RELU_BWD and op.layer == "dense.relu2"
            else op
            for op in kernel.ops
        )
        kernels.append(replace(kernel, ops=ops))
    broken = replace(schedule, kernels=tuple(kernels))
    check_schedule(broken)  # legal: the mistake is in what is computed, not when
    report = check_schedule_against_reference(broken)
    assert not report.passed
    assert 1e-3 < report.max_rel_err < float("inf")
    assert any(c.name == "dw:dense.conv1" and c.max_rel_err > 1e-3 for c in report.worst) or (
        report.worst[0].name.endswith(("dense.conv1", "dense.norm2", "dense.norm1", "stem.conv"))
    )


def test_legality_check_rejects_reading_before_producing_and_transient_escapes() -> None:
    network = downscale(build_model("tiny_cnn"), batch=2)
    schedule = build_schedule(network, "bnff")
    # move the kernel that produces z of dense.relu1 after its consumer
    kernels = list(schedule.kernels)
    producer = next(i for i, k in enumerate(kernels) if k.name == "dense.conv1.fwd")
    kernels.insert(producer + 2, kernels.pop(producer))
    with pytest.raises(SimulationError, match=r"reads act:dense\.conv1 before it is produced"):
        check_schedule(replace(schedule, kernels=tuple(kernels)))
    tensors = dict(schedule.tensors)
    tensors["act:dense.relu2"] = replace(tensors["act:dense.relu2"], transient=True)
    with pytest.raises(
        SimulationError,
        match=r"reads transient tensor act:dense\.relu2 produced in "
        r"another kernel",
    ):
        check_schedule(replace(schedule, tensors=tensors))


def test_legality_check_rejects_unknown_tensors_and_misplaced_ops() -> None:
    """Single-op and fused kernels alike (the check has a shortcut for single-op kernels)."""
    schedule = build_schedule(downscale(build_model("tiny_cnn"), batch=2), "bnff")
    single = next(i for i, k in enumerate(schedule.kernels) if len(k.ops) == 1)
    fused = next(i for i, k in enumerate(schedule.kernels) if len(k.ops) > 1)

    def with_kernel(index: int, kernel: Kernel) -> Schedule:
        kernels = list(schedule.kernels)
        kernels[index] = kernel
        return replace(schedule, kernels=tuple(kernels))

    for index in (single, fused):
        kernel = schedule.kernels[index]
        last = kernel.ops[-1]
        unknown = replace(last, reads=(*last.reads, "no:such"))
        with pytest.raises(
            SimulationError,
            match=rf"kernel {kernel.name}: {last.kind} reads unknown tensor no:such",
        ):
            check_schedule(with_kernel(index, replace(kernel, ops=(*kernel.ops[:-1], unknown))))
    kernel = schedule.kernels[single]
    prologue = replace(kernel.ops[0], placement=Placement.PROLOGUE)
    with pytest.raises(SimulationError, match=rf"kernel {kernel.name}: has 0 main ops, not 1"):
        check_schedule(with_kernel(single, replace(kernel, ops=(prologue,))))
    kernel = schedule.kernels[fused]
    with pytest.raises(SimulationError, match="ops must be prologue…, main, epilogue…"):
        check_schedule(with_kernel(fused, replace(kernel, ops=kernel.ops[::-1])))
