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
from typing import Any

import numpy as np

from bnsim.schedule import (
    Box,
    Kernel,
    OpKind,
    Placement,
    Schedule,
    decompose,
)
from bnsim.schedule.footprint import (
    input_footprint,
    prologue_operand,
)
from bnsim.verify import ops_channels, ops_elementwise, ops_matrix, ops_norm
from bnsim.verify.run_state import Array, Finalizer, Runner, RunState

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
    run = RunState(schedule=schedule, dtype=dtype, dropout_seed=dropout_seed)
    run.initialize(initial)
    rng = np.random.default_rng(shuffle_seed) if shuffle_seed is not None else None
    for kernel in schedule.kernels:
        tiles = list(boxes(kernel))
        if rng is not None:
            rng.shuffle(tiles)
        _run_kernel(run, kernel, tiles)
    return run.store


def _run_kernel(run: RunState, kernel: Kernel, tiles: list[Box]) -> None:
    """Run a kernel's tiles, each op on its region, then combine what its ops reduced."""
    run.partials = {}
    main = kernel.main_op()
    operands = {
        index: prologue_operand(kernel, index)
        for index, op in enumerate(kernel.ops)
        if op.placement is Placement.PROLOGUE
    }
    for box in tiles:
        run.scratch = {}
        tile = {axis.name: bounds for axis, bounds in zip(kernel.space, box, strict=True)}
        for index, op in enumerate(kernel.ops):
            region = tile
            if index in operands:
                region = input_footprint(run.schedule, main, tile, operands[index])
            RUNNERS[op.kind](run, index, op, region)
    for index, op in enumerate(kernel.ops):
        if op.reduces:
            FINALIZERS[op.kind](run, index, op)


# every op kind's runner, and the finalizers of ops that reduce across tiles, by family
RUNNERS: dict[OpKind, Runner] = {
    **ops_matrix.RUNNERS,
    **ops_norm.RUNNERS,
    **ops_elementwise.RUNNERS,
    **ops_channels.RUNNERS,
}
FINALIZERS: dict[OpKind, Finalizer] = {**ops_matrix.FINALIZERS, **ops_norm.FINALIZERS}
