"""Run a Schedule with NumPy, kernel by kernel and tile by tile, as the simulator times it.

Tiles are boxes of each kernel's iteration space: the simulator's own work split when the caller
passes it (bnsim.trace.dataflow, as `bnsim.verify` does), else halves of every axis. Each tile runs
the kernel's prologue ops on the main op's input footprint, the main op on the tile, and the
epilogue ops on the tile's output; ops that reduce across tiles add partial sums that are combined
only at the kernel's barrier. Materialized tensors start as NaN unless given, and transient ones
live in a fresh per-tile scratch, so a schedule that reads anything before it is produced yields
NaN, never a plausible number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnsim.graph import TensorShape
from bnsim.graph.layer import BatchNorm2d, Conv2d, Dropout, LayerKind, StochasticDepth
from bnsim.schedule import (
    Box,
    ElementType,
    Kernel,
    Op,
    OpKind,
    Placement,
    Schedule,
    decompose,
)
from bnsim.schedule.footprint import (
    Region,
    conv_group_span,
    conv_input_rows,
    conv_output_rows_touching,
    input_footprint,
    prologue_operand,
)
from bnsim.schedule.selection import Sampling, select
from bnsim.verify import activations as act
from bnsim.verify import reference as ref

Array = NDArray[Any]
BoxRule = Callable[[Kernel], Sequence[Box]]


def halving_boxes(kernel: Kernel) -> tuple[Box, ...]:
    """Boxes halving every axis (thirds for flat parameter axes): a few uneven tiles per kernel."""
    blocks = {
        axis.name: max(1, math.ceil(axis.extent / (3 if axis.name == "e" else 2)))
        for axis in kernel.space
    }
    return decompose(kernel.space, blocks)


def execute_schedule(
    schedule: Schedule,
    initial: Mapping[str, Array],
    *,
    boxes: BoxRule = halving_boxes,
    shuffle_seed: int | None = None,
    dtype: type[np.floating[Any]] = np.float64,
    dropout_seed: int = 0,
) -> dict[str, Array]:
    """Run one training iteration of `schedule`; returns every materialized tensor afterwards.

    Args:
        schedule: the schedule to run.
        initial: values of the tensors nobody produces (inputs, labels, weights, optimizer state,
            running statistics); any other tensor starts as NaN.
        boxes: each kernel's tiles, as boxes of its iteration space (they must cover it once).
        shuffle_seed: run the tiles of every kernel in a random order from this seed (a legal fused
            schedule must not depend on tile order).
        dtype: floating type of data tensors.
        dropout_seed: seed of the dropout masks.
    """
    run = _Run(schedule=schedule, dtype=dtype, dropout_seed=dropout_seed)
    run.initialize(initial)
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    for kernel in schedule.kernels:
        tiles = list(boxes(kernel))
        if rng is not None:
            rng.shuffle(tiles)
        run.kernel(kernel, tiles)
    return run.store


@dataclass
class _Run:
    schedule: Schedule
    dtype: type[np.floating[Any]]
    dropout_seed: int
    store: dict[str, Array] = field(default_factory=dict)
    scratch: dict[str, Array] = field(default_factory=dict)
    partials: dict[tuple[int, str], Array] = field(default_factory=dict)

    def initialize(self, initial: Mapping[str, Array]) -> None:
        for name, tensor in self.schedule.tensors.items():
            if tensor.transient:
                continue
            if name in initial:
                self.store[name] = np.array(
                    initial[name], dtype=self._type(tensor.element), copy=True
                )
            else:
                self.store[name] = self._blank(tensor.shape, tensor.element)

    def _type(self, element: ElementType) -> Any:
        return {ElementType.UINT8: np.uint8, ElementType.INT64: np.int64}.get(element, self.dtype)

    def _blank(self, shape: tuple[int, ...], element: ElementType) -> Array:
        if element is ElementType.DATA:
            return np.full(shape, np.nan, dtype=self.dtype)
        return np.zeros(shape, dtype=self._type(element))

    def kernel(self, kernel: Kernel, tiles: list[tuple[tuple[int, int], ...]]) -> None:
        self.partials = {}
        main = kernel.main_op()
        operands = {
            index: prologue_operand(kernel, index)
            for index, op in enumerate(kernel.ops)
            if op.placement is Placement.PROLOGUE
        }
        for box in tiles:
            self.scratch = {}
            tile = {axis.name: bounds for axis, bounds in zip(kernel.space, box, strict=True)}
            for index, op in enumerate(kernel.ops):
                region = tile
                if index in operands:
                    region = input_footprint(self.schedule, main, tile, operands[index])
                RUNNERS[op.kind](self, index, op, region)
        for index, op in enumerate(kernel.ops):
            if op.reduces:
                FINALIZERS[op.kind](self, index, op)

    # --- tensor access ---------------------------------------------------------------------------

    def array(self, name: str) -> Array:
        tensor = self.schedule.tensors[name]
        if not tensor.transient:
            return self.store[name]
        if name not in self.scratch:
            self.scratch[name] = self._blank(tensor.shape, tensor.element)
        return self.scratch[name]

    def read(self, name: str, region: Region, shape: tuple[int, ...] | None = None) -> Array:
        """A region (n, c, h bounds) of a 4-D tensor, viewed with `shape` first if given."""
        full = self.array(name)
        if shape is not None:
            full = full.reshape(shape)
        return full[_index(region, full.ndim)]

    def write(self, name: str, region: Region, value: Array) -> None:
        """Store `value` into a region of a tensor (flattened views are reshaped to the region)."""
        target = self.array(name)[_index(region, self.array(name).ndim)]
        target[...] = value.reshape(target.shape)

    def channels(self, name: str, region: Region) -> Array:
        start, stop = region.get("c", (0, self.array(name).shape[0]))
        return self.array(name)[start:stop]

    def add_partial(self, index: int, key: str, size: int, start: int, value: Array) -> None:
        partial = self.partials.setdefault((index, key), np.zeros(size, dtype=self.dtype))
        partial[start : start + value.shape[0]] += value

    def layer(self, op: Op) -> Any:
        return self.schedule.network.layer(op.layer)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.schedule.tensors[name].shape


def _index(region: Region, ndim: int) -> tuple[slice, ...]:
    axes = ("n", "c", "h")[:ndim]
    return tuple(slice(*region[axis]) if axis in region else slice(None) for axis in axes)


# --- batch normalization
# ---------------------------------------------------------------------------


def _sampling(op: Op) -> Sampling | None:
    rule = op.attr("sampling")
    return Sampling(*rule) if rule is not None else None


def _selection_mask(run: _Run, op: Op, name: str, region: Region) -> Array:
    """1.0 on the sampled elements of `region` of `name`, shape (n, 1, h, w); ones if unsampled."""
    n, c, h, w = run.shape(name)
    sampling = _sampling(op)
    if sampling is None:
        mask = np.ones((n, 1, h, w), dtype=run.dtype)
    else:
        mask = select(sampling, op.layer, TensorShape(n, c, h, w)).mask(TensorShape(n, c, h, w))
        mask = mask.astype(run.dtype)
    return mask[_index({k: v for k, v in region.items() if k != "c"}, 4)]


def _bn_stats(run: _Run, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    mask = _selection_mask(run, op, op.reads[0], region)
    channels = run.shape(op.reads[0])[1]
    start = region.get("c", (0, channels))[0]
    count = float(mask.sum())  # selected elements of each channel in this tile
    if count == 0:
        return  # a tile outside the sample contributes nothing
    if op.attr("part") == "var":
        mean = run.channels(op.reads[1], region)[None, :, None, None]
        run.add_partial(index, "count", channels, start, np.full(x.shape[1], count))
        run.add_partial(index, "sum_sq", channels, start, (((x - mean) ** 2) * mask).sum((0, 2, 3)))
        return
    tile_mean = (x * mask).sum((0, 2, 3)) / count
    tile_m2 = (((x - tile_mean[None, :, None, None]) ** 2) * mask).sum((0, 2, 3))
    _merge_moments(run, index, channels, start, count, tile_mean, tile_m2)


def _merge_moments(
    run: _Run, index: int, channels: int, start: int, count: float, mean: Array, m2: Array
) -> None:
    """Combine a tile's (count, mean, M2) into the kernel's (Chan et al.'s pairwise update).

    Equal in exact arithmetic to accumulating Σx and Σx², as the fused kernels do; the pairwise form
    keeps the check free of cancellation error, which is not what verification is about.
    """
    stop = start + mean.shape[0]
    totals = [
        run.partials.setdefault((index, key), np.zeros(channels, dtype=run.dtype))
        for key in ("count", "mean", "m2")
    ]
    old_count, old_mean, old_m2 = (total[start:stop] for total in totals)
    new_count = old_count + count
    delta = mean - old_mean
    totals[1][start:stop] = old_mean + delta * count / new_count
    totals[2][start:stop] = old_m2 + m2 + delta * delta * old_count * count / new_count
    totals[0][start:stop] = new_count


def _finish_bn_stats(run: _Run, index: int, op: Op) -> None:
    count = run.partials[(index, "count")]
    part = op.attr("part")
    if part == "mean":
        run.store[op.writes[0]] = run.partials[(index, "mean")]
        return
    if part == "var":
        mean = run.store[op.reads[1]]
        var = run.partials[(index, "sum_sq")] / count
        var_name, running_mean, running_var = op.writes
    else:
        mean = run.partials[(index, "mean")]
        var = run.partials[(index, "m2")] / count
        mean_name, var_name, running_mean, running_var = op.writes
        run.store[mean_name] = mean
    run.store[var_name] = var
    layer = run.layer(op)
    assert isinstance(layer, BatchNorm2d)
    momentum = layer.momentum
    unbiased = var * np.where(count > 1, count / np.maximum(count - 1, 1), 1.0)
    run.store[running_mean] = (1 - momentum) * run.store[running_mean] + momentum * mean
    run.store[running_var] = (1 - momentum) * run.store[running_var] + momentum * unbiased


def _per_channel(run: _Run, names: tuple[str, ...], region: Region) -> list[Array]:
    return [run.channels(name, region)[None, :, None, None] for name in names]


def _bn_apply(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    x = run.read(op.reads[0], region)
    mean, var, gamma, beta = _per_channel(run, op.reads[1:], region)
    y = (x - mean) / np.sqrt(var + layer.eps) * gamma + beta
    run.write(op.writes[0], region, y)


def _bn_grad_reduce(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    dy, x = run.read(op.reads[0], region, run.shape(op.reads[1])), run.read(op.reads[1], region)
    mean, var = _per_channel(run, op.reads[2:4], region)
    x_hat = (x - mean) / np.sqrt(var + layer.eps)
    channels = run.shape(op.reads[1])[1]
    start = region.get("c", (0, channels))[0]
    run.add_partial(index, "sum_dy", channels, start, dy.sum((0, 2, 3)))
    run.add_partial(index, "sum_dy_xhat", channels, start, (dy * x_hat).sum((0, 2, 3)))


def _finish_bn_grad_reduce(run: _Run, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "sum_dy_xhat")]  # dgamma
    run.store[op.writes[1]] = run.partials[(index, "sum_dy")]  # dbeta


def _bn_grad_apply(run: _Run, index: int, op: Op, region: Region) -> None:
    """dx = γ/σ·(dy − [i∈S]/m·(dβ + x̂·dγ)): the exact gradient when μ, σ² came from the set S."""
    layer = run.layer(op)
    x_name = op.reads[1]
    dy, x = run.read(op.reads[0], region, run.shape(x_name)), run.read(x_name, region)
    mean, var, gamma, dgamma, dbeta = _per_channel(run, op.reads[2:7], region)
    inv_std = 1 / np.sqrt(var + layer.eps)
    if op.attr("stats_gradient", True) is False:
        run.write(op.writes[0], region, gamma * inv_std * dy)
        return
    n, c, h, w = run.shape(x_name)
    sampling = _sampling(op)
    if sampling is None:
        weight: Array | float = 1.0 / (n * h * w)
    else:
        selection = select(sampling, op.layer, TensorShape(n, c, h, w))
        weight = _selection_mask(run, op, x_name, region) / selection.elements_per_channel()
    x_hat = (x - mean) * inv_std
    run.write(op.writes[0], region, gamma * inv_std * (dy - weight * (dbeta + x_hat * dgamma)))


# --- element-wise
# -----------------------------------------------------------------------------------


def _relu_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    relu6 = run.layer(op).layer_kind is LayerKind.RELU6
    run.write(op.writes[0], region, ref.relu6_fwd(x) if relu6 else ref.relu_fwd(x))


def _relu_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    y = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    relu6 = run.layer(op).layer_kind is LayerKind.RELU6
    run.write(op.writes[0], region, ref.relu6_bwd(dy, y) if relu6 else ref.relu_bwd(dy, y))


def _activation_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    kind = run.layer(op).layer_kind.value
    run.write(op.writes[0], region, act.activation_fwd(kind, run.read(op.reads[0], region)))


def _activation_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    saved = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    kind = run.layer(op).layer_kind.value
    run.write(op.writes[0], region, act.activation_bwd(kind, dy, saved))


def _per_sample_channels(region: Region) -> Region:
    """The part of an N×C×1×1 scale a region of the scaled map uses."""
    return {axis: bounds for axis, bounds in region.items() if axis in ("n", "c")}


def _scale_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    scale = run.read(op.reads[1], _per_sample_channels(region))
    run.write(op.writes[0], region, act.scale_fwd(x, scale))


def _scale_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    dy = run.read(op.reads[0], region, run.shape(op.writes[0]))
    scale = run.read(op.reads[1], _per_sample_channels(region))
    run.write(op.writes[0], region, act.scale_bwd_data(dy, scale))


def _scale_grad(run: _Run, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[1], region)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    run.write(op.writes[0], region, act.scale_bwd_scale(dy, x))


def _add(run: _Run, index: int, op: Op, region: Region) -> None:
    shape = run.shape(op.writes[0])
    total = run.read(op.reads[0], region, shape).copy()
    for name in op.reads[1:]:
        total += run.read(name, region, shape)
    run.write(op.writes[0], region, total)


def _dropout_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, Dropout)
    shape = run.shape(op.writes[0])
    keep = ref.dropout_mask(op.layer, shape, layer.p, run.dropout_seed)[_index(region, 4)]
    x = run.read(op.reads[0], region, shape)
    run.write(op.writes[0], region, ref.dropout_fwd(x, keep, p=layer.p))
    run.write(op.writes[1], region, keep.astype(np.uint8))


def _dropout_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    keep = run.read(op.reads[1], region).astype(bool)
    dy = run.read(op.reads[0], region, run.shape(op.reads[1]))
    run.write(op.writes[0], region, ref.dropout_bwd(dy, keep, p=layer.p))


def _stochastic_depth_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    assert isinstance(layer, StochasticDepth)
    samples = _per_sample_region(region)
    keep_shape = run.shape(op.writes[1])
    keep = ref.dropout_mask(op.layer, keep_shape, layer.p, run.dropout_seed)[_index(samples, 4)]
    x = run.read(op.reads[0], region, run.shape(op.writes[0]))
    run.write(op.writes[0], region, ref.dropout_fwd(x, keep, p=layer.p))
    run.write(op.writes[1], samples, keep / (1 - layer.p))


def _stochastic_depth_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    keep = run.read(op.reads[1], _per_sample_region(region)) > 0
    dy = run.read(op.reads[0], region, run.shape(op.writes[0]))
    run.write(op.writes[0], region, ref.dropout_bwd(dy, keep, p=layer.p))


def _per_sample_region(region: Region) -> Region:
    """The part of an N×1×1×1 tensor of per-sample values a region of the map uses."""
    return {"n": region["n"]} if "n" in region else {}


# --- pooling and concatenation (tiles over samples and channels)
# -----------------------------------


def _pool_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    x = run.read(op.reads[0], region)
    kind = layer.layer_kind
    if kind is LayerKind.MAXPOOL:
        y, argmax = ref.maxpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
        )
        run.write(op.writes[1], region, argmax)
    elif kind is LayerKind.AVGPOOL:
        y = ref.avgpool2d_fwd(
            x,
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    elif kind is LayerKind.ADAPTIVE_AVGPOOL:
        y = ref.adaptive_avgpool2d_fwd(x, output_hw=layer.output_size)
    else:
        y = ref.global_avgpool_fwd(x)
    run.write(op.writes[0], region, y)


def _pool_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    n, _, h, w = run.shape(op.writes[0])
    out = run.schedule.network.out_shape(op.layer)
    dy = run.read(op.reads[0], region, (n, out.c, out.h, out.w))
    kind = layer.layer_kind
    if kind is LayerKind.MAXPOOL:
        argmax = run.read(op.reads[1], region)
        dx = ref.maxpool2d_bwd(
            dy,
            argmax,
            input_hw=(h, w),
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
        )
    elif kind is LayerKind.AVGPOOL:
        dx = ref.avgpool2d_bwd(
            dy,
            input_hw=(h, w),
            kernel=layer.kernel,
            stride=layer.stride,
            padding=layer.padding,
            ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )
    elif kind is LayerKind.ADAPTIVE_AVGPOOL:
        dx = ref.adaptive_avgpool2d_bwd(dy, input_hw=(h, w))
    else:
        dx = ref.global_avgpool_bwd(dy, input_hw=(h, w))
    run.write(op.writes[0], region, dx)


def _channel_slices(
    run: _Run, names: tuple[str, ...], region: Region
) -> list[tuple[str, Region, Region]]:
    """For each part of a concatenation: (name, region of the part, region of the whole)."""
    start, stop = region["c"]
    pieces, offset = [], 0
    for name in names:
        channels = run.shape(name)[1]
        low, high = max(start, offset), min(stop, offset + channels)
        if low < high:
            pieces.append(
                (name, {**region, "c": (low - offset, high - offset)}, {**region, "c": (low, high)})
            )
        offset += channels
    return pieces


def _concat_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    for name, part, whole in _channel_slices(run, op.reads, region):
        run.write(op.writes[0], whole, run.read(name, part))


def _concat_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    layer_inputs = run.layer(op).inputs
    shapes = [run.schedule.network.out_shape(source) for source in layer_inputs]
    written = dict(zip(op.attr("slices"), op.writes, strict=True))
    offset = 0
    start, stop = region["c"]
    for position, shape in enumerate(shapes):
        low, high = max(start, offset), min(stop, offset + shape.c)
        if position in written and low < high:
            value = run.read(op.reads[0], {**region, "c": (low, high)})
            run.write(written[position], {**region, "c": (low - offset, high - offset)}, value)
        offset += shape.c


def _chunk_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    offset = op.attr("channels")[0]
    start, stop = region["c"]
    run.write(
        op.writes[0],
        region,
        run.read(op.reads[0], {**region, "c": (start + offset, stop + offset)}),
    )


def _chunk_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    """The chunks' gradients where they cover the region; zero where none does."""
    start, stop = region["c"]
    total = np.zeros_like(run.read(op.writes[0], region))
    for name, (offset, end) in zip(op.reads, op.attr("channels"), strict=True):
        low, high = max(start, offset), min(stop, end)
        if low < high:
            part = run.read(name, {**region, "c": (low - offset, high - offset)})
            total[:, low - start : high - start] = part
    run.write(op.writes[0], region, total)


def _shuffle_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    x = run.read(op.reads[0], region)
    run.write(op.writes[0], region, ref.channel_shuffle(x, op.attr("groups")))


def _shuffle_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    dy = run.read(op.reads[0], region)
    run.write(op.writes[0], region, ref.channel_shuffle_bwd(dy, op.attr("groups")))


# --- convolution and fully connected
# ----------------------------------------------------------------


def _conv_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
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


def _conv_bwd_data(run: _Run, index: int, op: Op, region: Region) -> None:
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


def _conv_bwd_weight(run: _Run, index: int, op: Op, region: Region) -> None:
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


def _finish_weight_gradient(run: _Run, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "dw")].reshape(run.shape(op.writes[0]))
    if len(op.writes) > 1:
        run.store[op.writes[1]] = run.partials[(index, "db")]


def _rows_with_padding(x: Array, rows: tuple[int, int], height: int) -> Array:
    top, bottom = rows
    out = np.zeros((*x.shape[:2], bottom - top, x.shape[3]), dtype=x.dtype)
    low, high = max(top, 0), min(bottom, height)
    out[:, :, low - top : high - top] = x[:, :, low:high]
    return out


def _flat(run: _Run, name: str, rows: tuple[int, int]) -> Array:
    full = run.array(name)
    return full.reshape(full.shape[0], -1)[rows[0] : rows[1]]


def _fc_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    x = _flat(run, op.reads[0], region["n"])
    o0, o1 = region["c"]
    w = run.array(op.reads[1])[o0:o1]
    y = x @ w.T
    if len(op.reads) > 2:
        y = y + run.array(op.reads[2])[o0:o1]
    run.write(op.writes[0], region, y[:, :, None, None])


def _fc_bwd_data(run: _Run, index: int, op: Op, region: Region) -> None:
    dy = _flat(run, op.reads[0], region["n"])
    i0, i1 = region["c"]
    dx = dy @ run.array(op.reads[1])[:, i0:i1]
    n0, n1 = region["n"]
    full = run.array(op.writes[0])
    full.reshape(full.shape[0], -1)[n0:n1, i0:i1] = dx


def _fc_bwd_weight(run: _Run, index: int, op: Op, region: Region) -> None:
    x = _flat(run, op.reads[0], region["n"])
    dy = _flat(run, op.reads[1], region["n"])
    o0, o1 = region["c"]
    weight_shape = run.shape(op.writes[0])
    run.add_partial(
        index, "dw", math.prod(weight_shape), o0 * weight_shape[1], (dy[:, o0:o1].T @ x).reshape(-1)
    )
    if len(op.writes) > 1:
        run.add_partial(index, "db", weight_shape[0], o0, dy[:, o0:o1].sum(0))


# --- loss and update
# --------------------------------------------------------------------------------


def _loss_fwd(run: _Run, index: int, op: Op, region: Region) -> None:
    n0, n1 = region["n"]
    logits = _flat(run, op.reads[0], (n0, n1))
    labels = run.array(op.reads[1])[n0:n1]
    loss, log_probs = ref.softmax_cross_entropy_fwd(logits, labels)
    run.add_partial(index, "loss", 1, 0, np.array([loss * (n1 - n0)], dtype=run.dtype))
    run.array(op.writes[1])[n0:n1] = log_probs


def _finish_loss(run: _Run, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "loss")] / run.shape(op.writes[1])[0]


def _loss_bwd(run: _Run, index: int, op: Op, region: Region) -> None:
    n0, n1 = region["n"]
    log_probs = run.array(op.reads[0])[n0:n1]
    labels = run.array(op.reads[1])[n0:n1]
    batch = run.shape(op.reads[0])[0]
    dlogits = ref.softmax_cross_entropy_bwd(log_probs, labels, scale=(n1 - n0) / batch)
    full = run.array(op.writes[0])
    full.reshape(full.shape[0], -1)[n0:n1] = dlogits


def _sgd_update(run: _Run, index: int, op: Op, region: Region) -> None:
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


def _reorder(run: _Run, index: int, op: Op, region: Region) -> None:
    run.write(op.writes[0], region, run.read(op.reads[0], region))  # a layout is not a value


Runner = Callable[[_Run, int, Op, Region], None]
RUNNERS: dict[OpKind, Runner] = {
    OpKind.CONV_FWD: _conv_fwd,
    OpKind.CONV_BWD_DATA: _conv_bwd_data,
    OpKind.CONV_BWD_WEIGHT: _conv_bwd_weight,
    OpKind.FC_FWD: _fc_fwd,
    OpKind.FC_BWD_DATA: _fc_bwd_data,
    OpKind.FC_BWD_WEIGHT: _fc_bwd_weight,
    OpKind.BN_STATS: _bn_stats,
    OpKind.BN_APPLY: _bn_apply,
    OpKind.BN_GRAD_REDUCE: _bn_grad_reduce,
    OpKind.BN_GRAD_APPLY: _bn_grad_apply,
    OpKind.RELU_FWD: _relu_fwd,
    OpKind.RELU_BWD: _relu_bwd,
    OpKind.ACTIVATION_FWD: _activation_fwd,
    OpKind.ACTIVATION_BWD: _activation_bwd,
    OpKind.SCALE_FWD: _scale_fwd,
    OpKind.SCALE_BWD: _scale_bwd,
    OpKind.SCALE_GRAD: _scale_grad,
    OpKind.POOL_FWD: _pool_fwd,
    OpKind.POOL_BWD: _pool_bwd,
    OpKind.CONCAT_FWD: _concat_fwd,
    OpKind.CONCAT_BWD: _concat_bwd,
    OpKind.ADD_FWD: _add,
    OpKind.GRAD_ACCUMULATE: _add,
    OpKind.DROPOUT_FWD: _dropout_fwd,
    OpKind.DROPOUT_BWD: _dropout_bwd,
    OpKind.STOCHASTIC_DEPTH_FWD: _stochastic_depth_fwd,
    OpKind.STOCHASTIC_DEPTH_BWD: _stochastic_depth_bwd,
    OpKind.CHUNK_FWD: _chunk_fwd,
    OpKind.CHUNK_BWD: _chunk_bwd,
    OpKind.SHUFFLE_FWD: _shuffle_fwd,
    OpKind.SHUFFLE_BWD: _shuffle_bwd,
    OpKind.LOSS_FWD: _loss_fwd,
    OpKind.LOSS_BWD: _loss_bwd,
    OpKind.SGD_UPDATE: _sgd_update,
    OpKind.REORDER: _reorder,
}
FINALIZERS: dict[OpKind, Callable[[_Run, int, Op], None]] = {
    OpKind.BN_STATS: _finish_bn_stats,
    OpKind.BN_GRAD_REDUCE: _finish_bn_grad_reduce,
    OpKind.CONV_BWD_WEIGHT: _finish_weight_gradient,
    OpKind.FC_BWD_WEIGHT: _finish_weight_gradient,
    OpKind.LOSS_FWD: _finish_loss,
}
