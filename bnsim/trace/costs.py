"""What an op's work costs on a core: FLOPs at the machine's rate for convolutions and fully
connected ops, cycles per element for element-wise ones (counted in the elements of their output,
or of their input for the ops that reduce or scatter).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bnsim.config.machine import Machine
from bnsim.errors import ConfigError
from bnsim.schedule import (
    Op,
    OpKind,
    Schedule,
)

ELEMENTWISE_COST: dict[OpKind, str] = {
    OpKind.BN_STATS: "bn_stats",
    OpKind.BN_APPLY: "bn_apply",
    OpKind.BN_GRAD_REDUCE: "bn_grad_reduce",
    OpKind.BN_GRAD_APPLY: "bn_grad_apply",
    OpKind.RELU_FWD: "relu_fwd",
    OpKind.RELU_BWD: "relu_bwd",
    OpKind.ACTIVATION_FWD: "activation_fwd",
    OpKind.ACTIVATION_BWD: "activation_bwd",
    OpKind.SCALE_FWD: "scale_fwd",
    OpKind.SCALE_BWD: "scale_bwd",
    OpKind.SCALE_GRAD: "scale_grad",
    OpKind.POOL_FWD: "pool_fwd",
    OpKind.POOL_BWD: "pool_bwd",
    OpKind.CONCAT_FWD: "concat",
    OpKind.CONCAT_BWD: "concat",
    OpKind.ADD_FWD: "add",
    OpKind.GRAD_ACCUMULATE: "add",
    OpKind.DROPOUT_FWD: "dropout",
    OpKind.DROPOUT_BWD: "dropout",
    # torchvision multiplies the map by its per-sample keep values: a broadcast multiply
    OpKind.STOCHASTIC_DEPTH_FWD: "scale_fwd",
    OpKind.STOCHASTIC_DEPTH_BWD: "scale_bwd",
    OpKind.CHUNK_FWD: "concat",  # copies, as a concatenation's
    OpKind.CHUNK_BWD: "concat",
    OpKind.SHUFFLE_FWD: "concat",
    OpKind.SHUFFLE_BWD: "concat",
    OpKind.LOSS_FWD: "loss",
    OpKind.LOSS_BWD: "loss",
    OpKind.SGD_UPDATE: "sgd_update",
    OpKind.REORDER: "reorder",
}

# sets built once: looking an enum member up on its class costs as much as the rest of a call
_POOL_BWD = OpKind.POOL_BWD


# element-wise ops whose work is counted in elements of their first input (max-pool backward:
# of its output), not of their first output
_INPUT_SIZED_KINDS = frozenset(
    (
        OpKind.POOL_FWD,
        OpKind.BN_STATS,
        OpKind.BN_GRAD_REDUCE,
        OpKind.LOSS_FWD,
        OpKind.LOSS_BWD,
        OpKind.SGD_UPDATE,
        OpKind.CONCAT_BWD,
        OpKind.POOL_BWD,
    )
)


def op_elements(schedule: Schedule, op: Op) -> int:
    """Elements an element-wise op processes (what `cycles_per_element` is per)."""
    kind = op.kind
    if kind in _INPUT_SIZED_KINDS:
        name = op.reads[0] if kind is not _POOL_BWD else op.writes[0]
    else:
        name = op.writes[0]
    return math.prod(schedule.tensors[name].shape)


@dataclass(frozen=True, slots=True)
class ComputeRates:
    """What an op's work costs on a machine's core: FLOPs per cycle of the matrix ops (plain, and
    as the main op of a fused kernel), cycles per element of the element-wise ones."""

    flops_per_cycle: Mapping[OpKind, float]
    fused_flops_per_cycle: Mapping[OpKind, float]
    cycles_per_element: Mapping[OpKind, float]


def compute_rates(machine: Machine, schedule: Schedule) -> ComputeRates:
    """The machine's rates for the ops of `schedule`.

    Raises:
        ConfigError: an op kind of the schedule the machine gives no cost for.
    """
    compute = machine.compute
    flops_per_cycle = machine.cores.flops_per_cycle()
    passes = compute.conv_efficiencies()
    conv_efficiency = {
        OpKind.CONV_FWD: passes.forward,
        OpKind.CONV_BWD_DATA: passes.backward_data,
        OpKind.CONV_BWD_WEIGHT: passes.backward_weight,
    }
    flops = {
        kind: flops_per_cycle * conv_efficiency.get(kind, compute.fc_efficiency)
        for kind in OpKind
        if kind.is_matrix()
    }
    fused = {
        **flops,
        **{
            kind: flops_per_cycle * efficiency * compute.fused_conv_factor
            for kind, efficiency in conv_efficiency.items()
        },
    }
    # a cost left out (reorders, on a machine that makes none) belongs to no op of the trace
    per_element: dict[OpKind, float] = {
        kind: getattr(compute.cycles_per_element, cost)
        for kind, cost in ELEMENTWISE_COST.items()
        if getattr(compute.cycles_per_element, cost) is not None
    }
    for kernel in schedule.kernels:
        for op in kernel.ops:
            if op.kind in ELEMENTWISE_COST and op.kind not in per_element:
                raise ConfigError(
                    f"machine {machine.name}: compute.cycles_per_element."
                    f"{ELEMENTWISE_COST[op.kind]}: required by layer '{op.layer}' "
                    f"({schedule.network.layer(op.layer).layer_kind}), which the machine "
                    "gives no cost for"
                )
    return ComputeRates(flops, fused, per_element)


def op_cycles(rates: ComputeRates, schedule: Schedule, op: Op, share: float, fused: bool) -> float:
    """Core cycles of `share` (0..1) of an op's work (`fused`: a convolution that is the main op of
    a fused kernel)."""
    kind = op.kind
    rate = (rates.fused_flops_per_cycle if fused else rates.flops_per_cycle).get(kind)
    if rate is not None:  # convolutions and fully connected ops
        return op.flops * share / rate
    return op_elements(schedule, op) * share * rates.cycles_per_element[kind]
