"""Batch normalization's ops in the executor: statistics (exact or sampled, merged across
tiles), the normalize pass, the backward's reductions and its apply pass."""

from __future__ import annotations

import numpy as np

from bnsim.graph import TensorShape
from bnsim.graph.layer import BatchNorm2d
from bnsim.schedule import (
    Op,
    OpKind,
)
from bnsim.schedule.footprint import (
    Region,
)
from bnsim.schedule.selection import Sampling, select
from bnsim.verify.run_state import Array, Finalizer, Runner, RunState, region_index


def _sampling(op: Op) -> Sampling | None:
    rule = op.attr("sampling")
    return Sampling(*rule) if rule is not None else None


def _selection_mask(run: RunState, op: Op, name: str, region: Region) -> Array:
    """1.0 on the sampled elements of `region` of `name`, shape (n, 1, h, w); ones if unsampled."""
    n, c, h, w = run.shape(name)
    sampling = _sampling(op)
    if sampling is None:
        mask = np.ones((n, 1, h, w), dtype=run.dtype)
    else:
        mask = select(sampling, op.layer, TensorShape(n, c, h, w)).mask(TensorShape(n, c, h, w))
        mask = mask.astype(run.dtype)
    return mask[region_index({k: v for k, v in region.items() if k != "c"}, 4)]


def _bn_stats(run: RunState, index: int, op: Op, region: Region) -> None:
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
    run: RunState, index: int, channels: int, start: int, count: float, mean: Array, m2: Array
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


def _finish_bn_stats(run: RunState, index: int, op: Op) -> None:
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


def _per_channel(run: RunState, names: tuple[str, ...], region: Region) -> list[Array]:
    return [run.channels(name, region)[None, :, None, None] for name in names]


def _bn_apply(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    x = run.read(op.reads[0], region)
    mean, var, gamma, beta = _per_channel(run, op.reads[1:], region)
    y = (x - mean) / np.sqrt(var + layer.eps) * gamma + beta
    run.write(op.writes[0], region, y)


def _bn_grad_reduce(run: RunState, index: int, op: Op, region: Region) -> None:
    layer = run.layer(op)
    dy, x = run.read(op.reads[0], region, run.shape(op.reads[1])), run.read(op.reads[1], region)
    mean, var = _per_channel(run, op.reads[2:4], region)
    x_hat = (x - mean) / np.sqrt(var + layer.eps)
    channels = run.shape(op.reads[1])[1]
    start = region.get("c", (0, channels))[0]
    run.add_partial(index, "sum_dy", channels, start, dy.sum((0, 2, 3)))
    run.add_partial(index, "sum_dy_xhat", channels, start, (dy * x_hat).sum((0, 2, 3)))


def _finish_bn_grad_reduce(run: RunState, index: int, op: Op) -> None:
    run.store[op.writes[0]] = run.partials[(index, "sum_dy_xhat")]  # dgamma
    run.store[op.writes[1]] = run.partials[(index, "sum_dy")]  # dbeta


def _bn_grad_apply(run: RunState, index: int, op: Op, region: Region) -> None:
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


RUNNERS: dict[OpKind, Runner] = {
    OpKind.BN_STATS: _bn_stats,
    OpKind.BN_APPLY: _bn_apply,
    OpKind.BN_GRAD_REDUCE: _bn_grad_reduce,
    OpKind.BN_GRAD_APPLY: _bn_grad_apply,
}

FINALIZERS: dict[OpKind, Finalizer] = {
    OpKind.BN_STATS: _finish_bn_stats,
    OpKind.BN_GRAD_REDUCE: _finish_bn_grad_reduce,
}
