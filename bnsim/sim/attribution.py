"""Time charged to ops: each kernel's span split over its ops by what bounds the kernel.

Bytes have an owner (the op whose access caused them); time does not: a fused kernel's ops run
interleaved in every tile. The rule: a memory-bound kernel's span goes to its ops in proportion to
the DRAM bytes charged to each, a compute-bound kernel's in proportion to each op's compute
cycles (a memory-bound kernel with no DRAM bytes of its own falls back to compute cycles, and one
with neither splits evenly). Shares are whole cycles, rounded so that they add up to the span
(largest remainders; ties to the earlier op). A kernel of one op keeps its whole span. Both
simulators' results use this one function, so every breakdown puts a kernel's bytes and its time
on the same ops.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from bnsim.result import KernelResult, OpTime, TrafficRow


class OpWork(NamedTuple):
    """What the split needs of one op of a kernel."""

    kind: str
    layer: str
    layer_kind: str
    compute_cycles: float


def op_times(
    kernels: Sequence[KernelResult],
    work: Sequence[Sequence[OpWork]],
    traffic: Sequence[TrafficRow],
) -> tuple[OpTime, ...]:
    """Each kernel's span split over its ops (`work[k]`: kernel k's ops in order)."""
    op_bytes: dict[tuple[int, str, str], int] = defaultdict(int)
    for row in traffic:
        op_bytes[row.kernel, row.op, row.layer] += row.dram_read_bytes + row.dram_write_bytes
    rows = []
    for index, (kernel, ops) in enumerate(zip(kernels, work, strict=True)):
        weights = _weights(index, kernel, ops, op_bytes)
        shares = split_whole(kernel.cycles(), weights)
        rows += [
            OpTime(
                kernel=index,
                op=op.kind,
                layer=op.layer,
                layer_kind=op.layer_kind,
                phase=kernel.phase,
                compute_cycles=round(op.compute_cycles),
                cycles=share,
            )
            for op, share in zip(ops, shares, strict=True)
        ]
    return tuple(rows)


def _weights(
    index: int,
    kernel: KernelResult,
    ops: Sequence[OpWork],
    op_bytes: dict[tuple[int, str, str], int],
) -> list[float]:
    if len(ops) == 1:
        return [1.0]
    if kernel.bound() == "memory":
        # two ops of one kind and layer in a kernel share the bytes charged to that pair
        same: dict[tuple[str, str], int] = defaultdict(int)
        for op in ops:
            same[op.kind, op.layer] += 1
        moved = [
            op_bytes.get((index, op.kind, op.layer), 0) / same[op.kind, op.layer] for op in ops
        ]
        if sum(moved) > 0:
            return moved
    cycles = [op.compute_cycles for op in ops]
    if sum(cycles) > 0:
        return cycles
    return [1.0] * len(ops)


def split_whole(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in whole parts proportional to `weights` (positive sum), adding up to it:
    each part rounded down, the rest one by one to the largest remainders (earlier first)."""
    weight_sum = math.fsum(weights)
    exact = [total * weight / weight_sum for weight in weights]
    parts = [math.floor(value) for value in exact]
    rest = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[:rest]:
        parts[i] += 1
    return parts
