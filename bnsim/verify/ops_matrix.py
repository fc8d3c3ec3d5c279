"""Convolutions, fully connected layers, the loss and the update in the executor: each tile
computes its part, weight gradients and the loss are summed across tiles."""

from __future__ import annotations

import math

import numpy as np

from bnsim.graph.layer import Conv2d
from bnsim.schedule import (
    Op,
    OpKind,
)
from bnsim.schedule.footprint import (
    Region,
    conv_group_span,
    conv_input_rows,
    conv_output_rows_touching,
)
from bnsim.verify import reference as ref
from bnsim.verify.run_state import Array, Finalizer, Runner, RunState


def _conv_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, Conv2d)
    x_name, w_name = op.reads[0], op.reads[1]
    _, c, h, _ = run.shape(x_name)
    (o0, o1), (h0, h1) = region["c"], region["h"]
    g0, g1 = conv_group_span(layer, c, o0, o1)
    per_group_out, per_group_in = layer.out_channels // layer.groups, c // layer.groups
    rows = conv_input_rows(layer, h0, h1)
    x = run.read(x_name, {"n": region["n"], "c": (g0 * per_group_in, g1 * per_group_in)})
    x = _rows_with_padding(x, rows, h)
    w = run.array(w_name)[g0 * per_group_out : g1 * per_group_out]
    b = (
        run.array(op.reads[2])[g0 * per_group_out : g1 * per_group_out]
        if len(op.reads) > 2
        else None
    )
    y = ref.conv2d_fwd(
        x,
        w,
        b,
        stride=layer.stride,
        padding=(0, layer.padding[1]),
        dilation=layer.dilation,
        groups=g1 - g0,
    )
    first = g0 * per_group_out
    run.write(op.writes[0], region, y[:, o0 - first : o1 - first])


def _conv_bwd_data(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, Conv2d)
    dy_name, w_name, dx_name = op.reads[0], op.reads[1], op.writes[0]
    _, c, _, w_in = run.shape(dx_name)
    (c0, c1), (h0, h1) = region["c"], region["h"]
    per_group_in = c // layer.groups
    g0, g1 = c0 // per_group_in, (c1 - 1) // per_group_in + 1
    per_group_out = layer.out_channels // layer.groups
    out_rows = run.shape(dy_name)[2]
    o_lo, o_hi = conv_output_rows_touching(layer, h0, h1, out_rows)
    dx = np.zeros(
        (region["n"][1] - region["n"][0], (g1 - g0) * per_group_in, h1 - h0, w_in), dtype=run.dtype
    )
    if o_lo < o_hi:
        dy = run.read(
            dy_name,
            {"n": region["n"], "c": (g0 * per_group_out, g1 * per_group_out), "h": (o_lo, o_hi)},
        )
        weights = run.array(w_name)[g0 * per_group_out : g1 * per_group_out]
        stride, dilation = layer.stride[0], layer.dilation[0]
        span = (o_hi - o_lo - 1) * stride + dilation * (layer.kernel[0] - 1) + 1
        canvas = ref.conv2d_bwd_data(
            dy,
            weights,
            input_hw=(span, w_in),
            stride=layer.stride,
            padding=(0, layer.padding[1]),
            dilation=layer.dilation,
            groups=g1 - g0,
        )
        top = o_lo * stride - layer.padding[0]  # input row of the canvas's first row
        low, high = max(h0, top), min(h1, top + span)
        dx[:, :, low - h0 : high - h0] = canvas[:, :, low - top : high - top]
    first = g0 * per_group_in
    run.write(dx_name, region, dx[:, c0 - first : c1 - first])


def _conv_bwd_weight(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, Conv2d)
    x_name, dy_name = op.reads[0], op.reads[1]
    c = run.shape(x_name)[1]
    o0, o1 = region["c"]
    g0, g1 = conv_group_span(layer, c, o0, o1)
    per_group_out, per_group_in = layer.out_channels // layer.groups, c // layer.groups
    h = run.shape(x_name)[2]
    rows = region["h"]
    x = run.read(x_name, {"n": region["n"], "c": (g0 * per_group_in, g1 * per_group_in)})
    x = _rows_with_padding(x, conv_input_rows(layer, *rows), h)  # the rows under the tile's
    dy = run.read(
        dy_name, {"n": region["n"], "c": (g0 * per_group_out, g1 * per_group_out), "h": rows}
    )
    dw = ref.conv2d_bwd_weight(
        x,
        dy,
        kernel_hw=layer.kernel,
        stride=layer.stride,
        padding=(0, layer.padding[1]),
        dilation=layer.dilation,
        groups=g1 - g0,
    )
    first = g0 * per_group_out
    weight_shape = run.shape(op.writes[0])
    size = math.prod(weight_shape)
    per_out = size // weight_shape[0]
    run.add_partial(index, "dw", size, o0 * per_out, dw[o0 - first : o1 - first].reshape(-1))
    if len(op.writes) > 1:
        bias = dy[:, o0 - first : o1 - first].sum((0, 2, 3))
        run.add_partial(index, "db", layer.out_channels, o0, bias)


def _finish_weight_gradient(run: RunState, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "dw")].reshape(run.shape(op.writes[0]))
    if len(op.writes) > 1:
        run.store[op.writes[1]] = run.partials[(index, "db")]


def _rows_with_padding(x: Array, rows: tuple[int, int], height: int) -> Array:
    top, bottom = rows
    out = np.zeros((*x.shape[:2], bottom - top, x.shape[3]), dtype=x.dtype)
    low, high = max(top, 0), min(bottom, height)
    out[:, :, low - top : high - top] = x[:, :, low:high]
    return out


def _flat(run: RunState, name: str, rows: tuple[int, int]) -> Array:
    full = run.array(name)
    return full.reshape(full.shape[0], -1)[rows[0] : rows[1]]


def _fc_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    x = _flat(run, op.reads[0], region["n"])
    o0, o1 = region["c"]
    w = run.array(op.reads[1])[o0:o1]
    y = x @ w.T
    if len(op.reads) > 2:
        y = y + run.array(op.reads[2])[o0:o1]
    run.write(op.writes[0], region, y[:, :, None, None])


def _fc_bwd_data(run: RunState, index: int, op: Op, region: Region) -> None:
    dy = _flat(run, op.reads[0], region["n"])
    i0, i1 = region["c"]
    dx = dy @ run.array(op.reads[1])[:, i0:i1]
    n0, n1 = region["n"]
    full = run.array(op.writes[0])
    full.reshape(full.shape[0], -1)[n0:n1, i0:i1] = dx


def _fc_bwd_weight(run: RunState, index: int, op: Op, region: Region) -> None:
    x = _flat(run, op.reads[0], region["n"])
    dy = _flat(run, op.reads[1], region["n"])
    o0, o1 = region["c"]
    weight_shape = run.shape(op.writes[0])
    run.add_partial(
        index, "dw", math.prod(weight_shape), o0 * weight_shape[1], (dy[:, o0:o1].T @ x).reshape(-1)
    )
    if len(op.writes) > 1:
        run.add_partial(index, "db", weight_shape[0], o0, dy[:, o0:o1].sum(0))


def _loss_fwd(run: RunState, index: int, op: Op, region: Region) -> None:
    n0, n1 = region["n"]
    logits = _flat(run, op.reads[0], (n0, n1))
    labels = run.array(op.reads[1])[n0:n1]
    loss, log_probs = ref.softmax_cross_entropy_fwd(logits, labels)
    run.add_partial(index, "loss", 1, 0, np.array([loss * (n1 - n0)], dtype=run.dtype))
    run.array(op.writes[1])[n0:n1] = log_probs


def _finish_loss(run: RunState, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "loss")] / run.shape(op.writes[1])[0]


def _loss_bwd(run: RunState, index: int, op: Op, region: Region) -> None:
    n0, n1 = region["n"]
    log_probs = run.array(op.reads[0])[n0:n1]
    labels = run.array(op.reads[1])[n0:n1]
    batch = run.shape(op.reads[0])[0]
    dlogits = ref.softmax_cross_entropy_bwd(log_probs, labels, scale=(n1 - n0) / batch)
    full = run.array(op.writes[0])
    full.reshape(full.shape[0], -1)[n0:n1] = dlogits


def _sgd_update(run: RunState, index: int, op: Op, region: Region) -> None:
    e0, e1 = region["e"]
    w, g, v = (run.array(name).reshape(-1) for name in op.reads)
    new_w, new_v = ref.sgd_momentum_update(
        w[e0:e1],
        g[e0:e1],
        v[e0:e1],
        lr=op.attr("lr"),
        momentum=op.attr("momentum"),
        weight_decay=op.attr("weight_decay"),
    )
    w[e0:e1], v[e0:e1] = new_w, new_v


RUNNERS: dict[OpKind, Runner] = {
    OpKind.CONV_FWD: _conv_fwd,
    OpKind.CONV_BWD_DATA: _conv_bwd_data,
    OpKind.CONV_BWD_WEIGHT: _conv_bwd_weight,
    OpKind.FC_FWD: _fc_fwd,
    OpKind.FC_BWD_DATA: _fc_bwd_data,
    OpKind.FC_BWD_WEIGHT: _fc_bwd_weight,
    OpKind.LOSS_FWD: _loss_fwd,
    OpKind.LOSS_BWD: _loss_bwd,
    OpKind.SGD_UPDATE: _sgd_update,
}

FINALIZERS: dict[OpKind, Finalizer] = {
    OpKind.CONV_BWD_WEIGHT: _finish_weight_gradient,
    OpKind.FC_BWD_WEIGHT: _finish_weight_gradient,
    OpKind.LOSS_FWD: _finish_loss,
}
