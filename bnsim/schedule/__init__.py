"""The Schedule IR: the kernels one training iteration runs, their fused ops, tensors and tiles.

A Schedule is what both interpreters read: the simulator times it and the NumPy executor runs it.
Each Kernel is an ordered group of Ops over one iteration space (the space of its main op), split
into tiles by `decompose`; a barrier ends every kernel, and outputs listed in an op's `reduces` are
combined across tiles at that barrier. Tensors have roles and may be transient (never stored:
produced and consumed inside one kernel). `check_schedule` proves the order legal. The model is in
`model`, the legality checks in `checks`; `training` lowers a network to one training iteration,
`footprint` says what a tile reads, `selection` which elements sampled statistics read.
"""

from __future__ import annotations

from bnsim.schedule.checks import check_schedule
from bnsim.schedule.model import (
    FIXED_ELEMENT_BYTES,
    NO_REORDERS,
    Axis,
    Box,
    ElementType,
    Kernel,
    Op,
    OpKind,
    Phase,
    Placement,
    Reorders,
    Schedule,
    Tensor,
    TensorRole,
    decompose,
    memory_reads,
)

__all__ = [
    "FIXED_ELEMENT_BYTES",
    "NO_REORDERS",
    "Axis",
    "Box",
    "ElementType",
    "Kernel",
    "Op",
    "OpKind",
    "Phase",
    "Placement",
    "Reorders",
    "Schedule",
    "Tensor",
    "TensorRole",
    "check_schedule",
    "decompose",
    "memory_reads",
]
