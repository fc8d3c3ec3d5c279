"""Element-wise ops in the executor: activations, per-channel scales, adds, dropout, stochastic
depth, and the layout copies (a layout is not a value)."""

from __future__ import annotations

import numpy as np

from bnsim.graph.layer import Dropout, LayerKind, StochasticDepth
from bnsim.schedule import (
    Op,
    OpKind,
)
from bnsim.schedule.footprint import (
    Region,
)
from bnsim.verify import activations as act
from bnsim.verify import reference as ref
from bnsim.verify.run_state import Runner, RunState, region_index


def _relu_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    relu6 = run.layer(op).layer_kind is LayerKind.RELU6
    run.write(op.writes[0], region, ref.relu6_fwd(x) if relu6 else ref.relu_fwd(x))


def _relu_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    y = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    relu6 = run.layer(op).layer_kind is LayerKind.RELU6
    run.write(op.writes[0], region, ref.relu6_bwd(dy, y) if relu6 else ref.relu_bwd(dy, y))


def _activation_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    kind = run.layer(op).layer_kind.value
    run.write(op.writes[0], region, act.activation_fwd(kind, run.read(op.reads[0], region)))


def _activation_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    saved = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    kind = run.layer(op).layer_kind.value
    run.write(op.writes[0], region, act.activation_bwd(kind, dy, saved))


def _per_sample_channels(region: Region) -> Region:
    """The part of an N×C×1×1 scale a region of the scaled map uses."""
    return {axis: bounds for axis, bounds in region.items() if axis in ("n", "c")}


def _scale_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    scale = run.read(op.reads[1], _per_sample_channels(region))
    run.write(op.writes[0], region, act.scale_fwd(x, scale))


def _scale_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    dy = run.read(op.reads[0], region, run.shape(op.writes[0]))
    scale = run.read(op.reads[1], _per_sample_channels(region))
    run.write(op.writes[0], region, act.scale_bwd_data(dy, scale))


def _scale_grad(run: RunState, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    run.write(op.writes[0], region, act.scale_bwd_scale(dy, x))


def _add(run: RunState, index: int, op: Op, region: Region) -> None:
    shape = run.shape(op.writes[0])
    total = run.read(op.reads[0], region, shape).copy()
    for name in op.reads[1:]:
        total += run.read(name, region, shape)
    run.write(op.writes[0], region, total)


def _dropout_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, Dropout)
    shape = run.shape(op.writes[0])
    keep = ref.dropout_mask(op.layer, shape, layer.p, run.dropout_seed)[region_index(region, 4)]
    x = run.read(op.reads[0], region, shape)
    run.write(op.writes[0], region, ref.dropout_fwd(x, keep, p=layer.p))
    run.write(op.writes[1], region, keep.astype(np.uint8))


def _dropout_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    keep = run.read(op.reads[1], region).astype(bool)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    run.write(op.writes[0], region, ref.dropout_bwd(dy, keep, p=layer.p))


def _stochastic_depth_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, StochasticDepth)
    samples = _per_sample_region(region)
    keep_shape = run.shape(op.writes[1])
    keep = ref.dropout_mask(op.layer, keep_shape, layer.p, run.dropout_seed)[
        region_index(samples, 4)
    ]
    x = run.read(op.reads[0], region, run.shape(op.writes[0]))
    run.write(op.writes[0], region, ref.dropout_fwd(x, keep, p=layer.p))
    run.write(op.writes[1], samples, keep / (1 - layer.p))


def _stochastic_depth_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    keep = run.read(op.reads[1], _per_sample_region(region)) > 0
    dy = run.read(op.reads[0], region, run.shape(op.writes[0]))
    run.write(op.writes[0], region, ref.dropout_bwd(dy, keep, p=layer.p))


def _per_sample_region(region: Region) -> Region:
    """The part of an N×1×1×1 tensor of per-sample values a region of the map uses."""
    return {"n": region["n"]} if "n" in region else {}


def _reorder(run: RunState, index: int, op: Op, region: Region) -> None:
    run.write(op.writes[0], region, run.read(op.reads[0], region))  # a layout is not a value


RUNNERS: dict[OpKind, Runner] = {
    OpKind.RELU_FWD: _relu_fwd,
    OpKind.RELU_BWD: _relu_bwd,
    OpKind.ACTIVATION_FWD: _activation_fwd,
    OpKind.ACTIVATION_BWD: _activation_bwd,
    OpKind.SCALE_FWD: _scale_fwd,
    OpKind.SCALE_BWD: _scale_bwd,
    OpKind.SCALE_GRAD: _scale_grad,
    OpKind.ADD_FWD: _add,
    OpKind.GRAD_ACCUMULATE: _add,
    OpKind.DROPOUT_FWD: _dropout_fwd,
    OpKind.DROPOUT_BWD: _dropout_bwd,
    OpKind.STOCHASTIC_DEPTH_FWD: _stochastic_depth_fwd,
    OpKind.STOCHASTIC_DEPTH_BWD: _stochastic_depth_bwd,
    OpKind.REORDER: _reorder,
}
