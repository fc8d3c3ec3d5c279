"""A schedule's legality: every tensor produced before it is read, in-place writes over tensors
nothing reads later, kernels whose ops fit their iteration space and placements.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping

from bnsim.errors import SimulationError
from bnsim.schedule.model import _MAIN, Kernel, Placement, Schedule, Tensor

# schedules check_schedule has proven legal (by identity: schedules compare by identity), so
# that simulating a built schedule, or one schedule on many machines, checks it only once
_LEGAL: weakref.WeakSet[Schedule] = weakref.WeakSet()


def check_schedule(schedule: Schedule) -> None:
    """Prove the kernel order legal (once per schedule: a schedule never changes).

    Every tensor an op reads exists already (it has no producer, was written by an earlier kernel,
    or by an earlier op of the same kernel); a reduction output is never read in the kernel that
    reduces it (its value is complete only at the barrier); transient tensors never leave their
    kernel; prologue ops come before the main op and epilogue ops after it.

    Raises:
        SimulationError: naming the kernel, op and tensor at fault.
    """
    if schedule in _LEGAL:
        return
    tensors = schedule.tensors
    produced_by = _producers(schedule)
    pending = set(produced_by)  # produced by a kernel that has not run yet
    transient = {name for name, tensor in tensors.items() if tensor.transient}
    contains = tensors.__contains__
    for kernel in schedule.kernels:
        ops = kernel.ops
        if len(ops) == 1:  # most kernels: one main op, reading what earlier kernels left
            op = ops[0]
            reads = op.reads
            if (
                op.placement is _MAIN
                and pending.isdisjoint(reads)
                and transient.isdisjoint(reads)
                and all(map(contains, reads))
            ):
                pending.difference_update(op.writes)
                continue
        _check_kernel(kernel, tensors, pending, produced_by)
        for op in ops:
            pending.difference_update(op.writes)
    _check_in_place(schedule)
    _LEGAL.add(schedule)


def _check_in_place(schedule: Schedule) -> None:
    """A tensor written over another's memory (`storage`) leaves that one unread from then on."""
    overwritten = {t.storage: name for name, t in schedule.tensors.items() if t.storage}
    written: dict[str, str] = {}  # overwritten tensor → the tensor now in its memory
    for kernel in schedule.kernels if overwritten else ():
        for op in kernel.ops:
            for name in op.reads:
                if name in written:
                    raise SimulationError(
                        f"kernel {kernel.name}: {op.kind} reads {name}, which "
                        f"{written[name]} has overwritten in place"
                    )
            written.update((storage, owner) for storage, owner in overwritten.items()
                           if owner in op.writes)  # fmt: skip


def _check_kernel(
    kernel: Kernel, tensors: Mapping[str, Tensor], pending: set[str], produced_by: dict[str, str]
) -> None:
    """check_schedule's checks of one kernel, given the tensors not yet produced before it."""
    _check_placements(kernel)
    in_kernel: set[str] = set()
    reducing: set[str] = set()
    for op in kernel.ops:
        for name in op.reads:
            if name not in tensors:
                raise SimulationError(
                    f"kernel {kernel.name}: {op.kind} reads unknown tensor {name}"
                )
            if name in reducing:
                raise SimulationError(
                    f"kernel {kernel.name}: {op.kind} of {op.layer} reads {name} before the "
                    "cross-tile reduction that produces it has finished (it completes only at the "
                    "kernel's barrier)"
                )
            if name in pending and name not in in_kernel:
                raise SimulationError(
                    f"kernel {kernel.name}: {op.kind} of {op.layer} reads {name} before it is "
                    f"produced (by kernel {produced_by[name]})"
                )
            if tensors[name].transient and name not in in_kernel:
                raise SimulationError(
                    f"kernel {kernel.name}: reads transient tensor {name} produced in another "
                    "kernel"
                )
        in_kernel.update(op.writes)
        reducing.update(op.reduces)


def _producers(schedule: Schedule) -> dict[str, str]:
    """First kernel writing each tensor; tensors only updated in place count as inputs."""
    producers: dict[str, str] = {}
    for kernel in schedule.kernels:
        for op in kernel.ops:
            for name in op.writes:
                if name not in op.reads:
                    producers.setdefault(name, kernel.name)
    return producers


def _check_placements(kernel: Kernel) -> None:
    order = [op.placement for op in kernel.ops]
    if order.count(_MAIN) != 1:
        raise SimulationError(f"kernel {kernel.name}: has {order.count(_MAIN)} main ops, not 1")
    main_index = order.index(_MAIN)
    if any(p is not Placement.PROLOGUE for p in order[:main_index]) or any(
        p is not Placement.EPILOGUE for p in order[main_index + 1 :]
    ):
        raise SimulationError(
            f"kernel {kernel.name}: ops must be prologue…, main, epilogue…; "
            f"got {[p.value for p in order]}"
        )
