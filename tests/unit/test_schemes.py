"""Schemes on the canonical group CONV_a → BN → ReLU → CONV_b: exact pass counts, kernels and FLOPs.

The pass counts are docs/schemes.md's ground truth: reads and writes of the BN-sized tensors x (BN
input), y (BN output), z (ReLU output), g (dL/dz), dy (dL/dy), dx (dL/dx), counted once per kernel
that streams them from memory, excluding CONV_a's own write of x and its reads of dx (the same in
every scheme) and the weight-gradient kernels.
"""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from bnsim.errors import ConfigError, SimulationError
from bnsim.graph import Network, build_network
from bnsim.graph.layer import (
    Add,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Linear,
    ReLU,
    SoftmaxCrossEntropy,
)
from bnsim.graph.zoo import build_model
from bnsim.schedule import OpKind, Phase, Schedule, check_schedule
from bnsim.schedule.selection import Sampling, select
from bnsim.schemes import build_schedule, parse_scheme, scheme_names
from bnsim.verify import check_schedule_against_reference

BATCH, CHANNELS, SIZE = 8, 8, 8
GROUP = {
    "x": "act:conv_a",
    "y": "act:bn",
    "z": "act:relu",
    "g": "grad:relu",
    "dy": "grad:bn",
    "dx": "grad:conv_a",
}


def canonical_network():
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="conv0", inputs=("input",), out_channels=4, kernel=3, padding=1),
        Conv2d(name="conv_a", inputs=("conv0",), out_channels=CHANNELS, kernel=3, padding=1),
        BatchNorm2d(name="bn", inputs=("conv_a",)),
        ReLU(name="relu", inputs=("bn",)),
        Conv2d(name="conv_b", inputs=("relu",), out_channels=CHANNELS, kernel=1),
        GlobalAvgPool2d(name="pool", inputs=("conv_b",)),
        Flatten(name="flatten", inputs=("pool",)),
        Linear(name="fc", inputs=("flatten",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("canonical", layers, batch=BATCH, image=SIZE)


def read_fraction(schedule: Schedule, kernel, tensor: str) -> Fraction:
    """Fraction of `tensor` a kernel streams: 1, or the sampled share for sampled statistics."""
    for op in kernel.ops:
        if tensor in op.reads and op.kind is OpKind.BN_STATS and op.attr("sampling"):
            network = schedule.network
            shape = network.in_shapes(op.layer)[0]
            selection = select(Sampling(*op.attr("sampling")), op.layer, shape)
            total = shape.num_elements() * 4
            return Fraction(selection.touched_bytes(shape, 4, 64), total)
        if tensor in op.reads:
            return Fraction(1)
    return Fraction(1)


def passes(schedule: Schedule, forward: bool) -> tuple[Fraction, Fraction]:
    """(reads, writes) of the group's tensors in the forward or the backward kernels."""
    names = set(GROUP.values())
    reads = writes = Fraction(0)
    for kernel in schedule.kernels:
        main = kernel.main_op()
        if (kernel.phase is Phase.FWD) != forward or main.kind is OpKind.CONV_BWD_WEIGHT:
            continue
        own_conv_a = main.layer == "conv_a"
        for name in kernel.memory_reads():
            if name in names and not (own_conv_a and name == GROUP["dx"]):
                reads += read_fraction(schedule, kernel, name)
        for name in kernel.memory_writes():
            stored = not schedule.tensor(name).transient
            if name in names and stored and not (own_conv_a and name == GROUP["x"]):
                writes += 1
    return reads, writes


@pytest.mark.parametrize(
    ("scheme", "forward", "backward"),
    [
        ("baseline", (5, 2), (6, 3)),  # docs/schemes.md, baseline
        ("baseline:bn_stats_passes=1", (4, 2), (6, 3)),
        ("baseline:fuse_bn_relu=true", (4, 1), (5, 3)),
        ("fission", (4, 2), (6, 3)),  # §2.2: traffic barely changes
        ("bnff", (1, 1), (4, 2)),  # §2.3: 5R+2W → 1R+1W, 6R+3W → 4R+2W
        ("recompute", (1, 0), (3, 2)),  # §2.4: z never written; backward reads x, not z
        ("bnff+sampling", (1, 1), (4, 2)),  # statistics already come free in CONV_a's epilogue
        ("sampling:method=virtual", (3, 2), (6, 3)),  # the real batch computes no statistics
    ],
)
def test_pass_counts_of_the_canonical_group(
    scheme: str, forward: tuple[int, int], backward: tuple[int, int]
) -> None:
    schedule = build_schedule(canonical_network(), scheme)
    assert passes(schedule, forward=True) == forward
    assert passes(schedule, forward=False) == backward


def test_batch_sampling_reads_the_sampled_share_in_both_statistics_passes() -> None:
    schedule = build_schedule(canonical_network(), "sampling:method=batch,fraction=0.25")
    share = Fraction(2, BATCH)  # round(0.25 · 8) = 2 samples, every value of each
    assert passes(schedule, forward=True) == (3 + 2 * share, 2)
    assert passes(schedule, forward=False) == (6, 3)


def test_feature_sampling_counts_touched_lines_not_bytes() -> None:
    """An 8×8 map, fraction 1/4: a 4×4 patch. Each patch row is 16 B of a 32 B image row; whether it
    touches one 64 B line or two depends on where it falls, so the share is at least 1/4 of the
    bytes."""
    schedule = build_schedule(canonical_network(), "fission+sampling:method=feature,fraction=0.25")
    shape = schedule.network.in_shapes("bn")[0]
    selection = select(Sampling("feature", 0.25, 0), "bn", shape)
    assert selection.elements_per_channel() == BATCH * 4 * 4
    touched = Fraction(selection.touched_bytes(shape, 4, 64), shape.num_elements() * 4)
    assert Fraction(1, 4) < touched <= Fraction(1, 2)
    assert passes(schedule, forward=True) == (3 + touched, 2)


def test_virtual_dataset_runs_a_small_forward_pass_first() -> None:
    schedule = build_schedule(canonical_network(), "sampling:method=virtual")
    virtual = [k.name for k in schedule.kernels if k.name.startswith("virtual/")]
    assert virtual == ["virtual/conv0.fwd", "virtual/conv_a.fwd", "virtual/bn.fwd.stats"]
    assert schedule.tensor("virtual/act:conv_a").shape == (1, CHANNELS, SIZE, SIZE)  # round(8/8)
    stats = [op for k in schedule.kernels for op in k.ops if op.kind is OpKind.BN_STATS]
    assert [op.reads[0] for op in stats] == ["virtual/act:conv_a"]


def kernel_names(scheme: str) -> list[str]:
    return [kernel.name for kernel in build_schedule(canonical_network(), scheme).kernels]


def test_baseline_runs_every_layer_as_its_own_kernels() -> None:
    assert kernel_names("baseline") == [
        "conv0.fwd",
        "conv_a.fwd",
        "bn.fwd.mean",
        "bn.fwd.var",
        "bn.fwd.apply",
        "relu.fwd",
        "conv_b.fwd",
        "pool.fwd",
        "fc.fwd",
        "loss.fwd",
        "loss.bwd_data",
        "fc.bwd_data",
        "fc.bwd_weight",
        "pool.bwd_data",
        "conv_b.bwd_data",
        "conv_b.bwd_weight",
        "relu.bwd_data",
        "bn.bwd_data.reduce",
        "bn.bwd_data.apply",
        "conv_a.bwd_data",
        "conv_a.bwd_weight",
        "conv0.bwd_weight",
        "conv0.update.w",
        "conv_a.update.w",
        "bn.update.gamma",
        "bn.update.beta",
        "conv_b.update.w",
        "fc.update.w",
        "fc.update.b",
    ]


def test_inplace_relu_and_add_write_over_inputs_nothing_else_reads() -> None:
    """PyTorch's `ReLU(inplace=True)` and `out += identity`: the canonical group's ReLU output takes
    the BN output's memory (only the ReLU reads it) and the pass counts stay those of baseline (the
    same kernels stream the same tensors). In ResNet-50 every one of the 49 ReLUs follows a BN or an
    add read by nothing else, and every one of the 16 adds takes its main branch's BN output (the
    identity is also read by the block's first convolution): BN3 → add → ReLU share one buffer."""
    plain = build_schedule(canonical_network(), "baseline")
    in_place = build_schedule(canonical_network(), "baseline:inplace_relu=true")
    assert plain.tensor("act:relu").storage == ""
    assert in_place.tensor("act:relu").storage == "act:bn"
    assert passes(in_place, forward=True) == passes(plain, forward=True)
    resnet = build_schedule(
        build_model("resnet50", batch=2, image=64), "baseline:inplace_relu=true,inplace_add=true"
    )
    storage = {name: t.storage for name, t in resnet.tensors.items() if t.storage}
    assert len(storage) == 49 + 16
    assert storage["act:layer1.0.add"] == "act:layer1.0.bn3"
    assert storage["act:layer1.0.relu3"] == "act:layer1.0.add"


def test_a_tensor_read_after_it_was_overwritten_in_place_is_refused() -> None:
    """conv_a's output is read by the BN statistics and apply passes and by conv_a's backward; a
    ReLU output placed over it would destroy it while those still need it."""
    schedule = build_schedule(canonical_network(), "baseline")
    tensors = dict(schedule.tensors)
    tensors["act:relu"] = replace(tensors["act:relu"], storage="act:conv_a")
    wrong = Schedule(
        network=schedule.network, scheme="wrong", options=(), kernels=schedule.kernels,
        tensors=tensors,
    )  # fmt: skip
    with pytest.raises(SimulationError, match="reads act:conv_a, which act:relu has overwritten"):
        check_schedule(wrong)


def test_bnff_fuses_the_bn_sub_layers_into_the_convolutions() -> None:
    schedule = build_schedule(canonical_network(), "bnff")
    names = [kernel.name for kernel in schedule.kernels]
    assert (
        len(names) == len(kernel_names("baseline")) - 7
    )  # mean, var, apply, relu; relu, reduce, apply
    ops = {
        kernel.name: [f"{op.placement.value}:{op.kind.value}" for op in kernel.ops]
        for kernel in schedule.kernels
    }
    assert ops["conv_a.fwd"] == ["main:conv_fwd", "epilogue:bn_stats"]
    assert ops["conv_b.fwd"] == ["prologue:bn_apply", "prologue:relu_fwd", "main:conv_fwd"]
    assert ops["conv_b.bwd_data"] == [
        "main:conv_bwd_data",
        "epilogue:relu_bwd",
        "epilogue:bn_grad_reduce",
    ]
    assert ops["conv_a.bwd_data"] == ["prologue:bn_grad_apply", "main:conv_bwd_data"]
    assert schedule.tensor("act:bn").transient
    assert schedule.tensor("grad:relu").transient
    assert not schedule.tensor("act:relu").transient  # z is stored once, for backward


def test_recompute_recomputes_z_where_backward_needs_it() -> None:
    schedule = build_schedule(canonical_network(), "recompute")
    ops = {kernel.name: [op.kind.value for op in kernel.ops] for kernel in schedule.kernels}
    assert ops["conv_b.bwd_data"] == [
        "conv_bwd_data",
        "bn_apply",
        "relu_fwd",
        "relu_bwd",
        "bn_grad_reduce",
    ]
    assert ops["conv_b.bwd_weight"] == ["bn_apply", "relu_fwd", "conv_bwd_weight"]
    assert schedule.tensor("act:relu").transient
    weight_grad = next(k for k in schedule.kernels if k.name == "conv_b.bwd_weight").main_op()
    assert weight_grad.reads[0] == "act:relu~for:conv_b"


def test_flops_are_conserved_except_where_a_scheme_changes_the_work() -> None:
    network = canonical_network()
    elements = BATCH * CHANNELS * SIZE * SIZE  # of the BN tensor
    flops = {
        s: build_schedule(network, s).flops()
        for s in (
            "baseline",
            "baseline:bn_stats_passes=1",
            "fission",
            "bnff",
            "recompute",
            "baseline:fuse_bn_relu=true,bn_stats_passes=1",
            "bnff+sampling:fraction=0.25",
        )
    }
    one_pass = flops["baseline:bn_stats_passes=1"]
    assert (
        flops["fission"]
        == flops["bnff"]
        == flops["baseline:fuse_bn_relu=true,bn_stats_passes=1"]
        == one_pass
    )
    # two passes: Σx (1 FLOP) then Σ(x−μ)² (3); one pass: Σx, Σx² (3)
    assert flops["baseline"] - one_pass == elements
    # recompute: z rebuilt twice in backward (ReLU mask, CONV_b's weight gradient), 2 + 1 FLOPs each
    assert flops["recompute"] - flops["bnff"] == 2 * 3 * elements
    # sampling a quarter of the batch: the statistics (3 FLOPs/element) touch 2 of 8 samples
    assert flops["bnff"] - flops["bnff+sampling:fraction=0.25"] == 3 * elements * 6 // 8


@pytest.mark.parametrize(
    "name", ["densenet121", "resnet50", "inception_v3", "mobilenet_v2", "vgg16_bn", "tiny_cnn"]
)
def test_every_scheme_builds_a_legal_schedule_for_every_model(name: str) -> None:
    network = build_model(name, batch=2)
    baseline = build_schedule(network, "baseline")
    for scheme in (
        "fission",
        "bnff",
        "recompute",
        "bnff+sampling",
        "recompute+sampling:method=feature",
    ):
        schedule = build_schedule(network, scheme)
        assert len(schedule.kernels) < len(baseline.kernels)
        assert schedule.flops() > 0
    virtual = build_schedule(network, "sampling:method=virtual")  # adds a small forward pass
    assert virtual.flops() > baseline.flops()


def test_densenet121_bnff_fusion_counts() -> None:
    """DenseNet-121 has 121 BNs. Statistics fuse into the producer conv where one conv alone
    produces the BN input: norm0 (after conv0) and the 58 norm2 (after conv1): 59. The other 62 (58
    norm1, 3 transition norms, norm5) read a concatenation or a pool and keep a one-pass statistics
    kernel. Normalize+ReLU fuses into the consuming conv for the 58 norm1, 58 norm2 and 3 transition
    norms, except into transition3.conv, the only conv with ≥ 1024 input channels: 118; norm0 (→
    pool0) and norm5 (→ global pool) get an element-wise normalize+ReLU kernel."""
    schedule = build_schedule(build_model("densenet121", batch=2), "bnff")

    def kernels(main: OpKind, fused: OpKind) -> int:
        return sum(
            1
            for k in schedule.kernels
            if k.main_op().kind is main and any(op.kind is fused for op in k.ops)
        )

    assert kernels(OpKind.CONV_FWD, OpKind.BN_STATS) == 59
    assert kernels(OpKind.BN_STATS, OpKind.BN_STATS) == 62
    assert kernels(OpKind.CONV_FWD, OpKind.BN_APPLY) == 118
    assert kernels(OpKind.BN_APPLY, OpKind.RELU_FWD) == 3  # norm0, norm5, transition3.norm
    unlimited = build_schedule(build_model("densenet121", batch=2), "bnff:wide_limit=null")
    assert (
        sum(
            1
            for k in unlimited.kernels
            if k.main_op().kind is OpKind.CONV_FWD
            and any(op.kind is OpKind.BN_APPLY for op in k.ops)
        )
        == 119
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "bnf",
            r"unknown scheme 'bnf' \(did you mean 'bnff'\? known: baseline, fission, bnff, "
            r"recompute",
        ),
        (
            "bnff+samples",
            r"unknown modifier 'samples' \(did you mean 'sampling'\? known: sampling\)",
        ),
        (
            "baseline:passes=1",
            r"unknown option 'passes' \(allowed: bn_stats_passes, fuse_bn_relu, inplace_add, "
            r"inplace_relu\)",
        ),
        ("baseline:bn_stats_passes=3", r"bn_stats_passes: input should be 1 or 2"),
        ("bnff:wide_limit=0", r"wide_limit: input should be greater than 0"),
        ("sampling:fraction=1.5", r"fraction: input should be less than or equal to 1"),
        ("sampling:method=patch", r"method: input should be 'batch', 'feature' or 'virtual'"),
        ("baseline:fuse_bn_relu", r"expected key=value options, got 'fuse_bn_relu'"),
        ("fission:x=1", r"unknown option 'x' \(allowed: none\)"),
    ],
)
def test_bad_scheme_specs_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_scheme(text)


def test_scheme_specs_parse_and_label() -> None:
    spec = parse_scheme("bnff+sampling:method=feature,wide_limit=null")
    assert (spec.name, spec.base, spec.modifiers) == ("bnff+sampling", "bnff", ("sampling",))
    assert spec.label() == "bnff+sampling:wide_limit=null,method=feature"
    assert parse_scheme(spec.label()) == spec
    assert dict(spec.flat_options())["fraction"] == 0.125
    assert parse_scheme("sampling").name == "baseline+sampling"
    assert "recompute+sampling" in scheme_names()


def test_tensor_producers_consumers_and_lifetimes() -> None:
    schedule = build_schedule(canonical_network(), "bnff")
    names = [kernel.name for kernel in schedule.kernels]
    z = GROUP["z"]
    assert names[schedule.producer(z)] == "conv_b.fwd"
    # z is read back by ReLU-backward (in CONV_b's backward-data epilogue) and the weight gradient
    assert [names[i] for i in schedule.consumers(z)] == ["conv_b.bwd_data", "conv_b.bwd_weight"]
    first, last = schedule.lifetime(z)
    assert (names[first], names[last]) == ("conv_b.fwd", "conv_b.bwd_weight")
    assert schedule.producer("w:conv_a") is None  # an input of the iteration, updated in place
    stats_kernel = schedule.kernels[names.index("conv_a.fwd")]
    assert stats_kernel.reductions() == ("mean:bn", "var:bn", "running_mean:bn", "running_var:bn")


def test_a_schedule_asked_for_again_is_the_same_object() -> None:
    network = canonical_network()
    first = build_schedule(network, "bnff")
    assert build_schedule(canonical_network(), parse_scheme("bnff")) is first  # an equal network
    assert build_schedule(network, "baseline") is not first
    assert build_schedule(network, "bnff:wide_limit=null") is not first
    assert build_schedule(network, "bnff", input_grad=True) is not first
    other_batch = build_network("canonical", list(network.layers), batch=BATCH + 1, image=SIZE)
    assert build_schedule(other_batch, "bnff") is not first


def shortcut_first(first: str) -> Network:
    """A BN → ReLU read by two convolutions, RegNet's first block: a strided 1×1 shortcut that
    loads every other pixel and a 3×3 that loads them all; `first` runs first."""
    convs = {
        "proj": Conv2d(name="proj", inputs=("relu",), out_channels=8, kernel=1, stride=2),
        "body": Conv2d(
            name="body", inputs=("relu",), out_channels=8, kernel=3, stride=2, padding=1
        ),
    }
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="stem", inputs=("input",), out_channels=8, kernel=3, padding=1),
        BatchNorm2d(name="bn", inputs=("stem",)),
        ReLU(name="relu", inputs=("bn",)),
        convs[first],
        *(conv for name, conv in convs.items() if name != first),
        Add(name="sum", inputs=("proj", "body")),
        GlobalAvgPool2d(name="pool", inputs=("sum",)),
        Flatten(name="flat", inputs=("pool",)),
        Linear(name="fc", inputs=("flat",), out_features=4),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return build_network("shortcut_first", layers, batch=4, image=8)


@pytest.mark.parametrize(("first", "host"), [("proj", "bn.fwd.apply"), ("body", "body.fwd")])
def test_bnff_normalizes_into_a_consumer_only_if_it_loads_every_pixel(
    first: str, host: str
) -> None:
    """The first consumer to run writes the stored ReLU output as it normalizes its loads: a strided
    1×1 convolution would leave the pixels it skips unwritten for the other consumer."""
    for scheme in ("bnff", "recompute"):
        schedule = build_schedule(shortcut_first(first), scheme, input_grad=True)
        applies = [k.name for k in schedule.kernels for op in k.ops if op.kind is OpKind.BN_APPLY]
        if scheme == "bnff":
            assert applies == [host]
        report = check_schedule_against_reference(schedule, seed=0)
        assert report.passed, (scheme, report.worst)
