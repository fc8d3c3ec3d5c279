"""The closed form of a kernel reading an operand in several passes (analytic fidelity).

Some libraries' loop orders read a kernel's input or weights more than once
(bnsim.trace.dataflow.input_passes: MKL-DNN's direct convolutions read the input once per 16-channel
output block; weight_passes: CUTLASS's waves of CTAs each read their strip's weights). Fast
fidelity simulates each pass; the analytic model adds, per such operand, the DRAM reads of the
passes the LLC cannot serve.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, NamedTuple

from bnsim.schedule import Kernel, Placement, Schedule
from bnsim.sim import stackmodel
from bnsim.trace import Trace
from bnsim.trace.dataflow import (
    PASS_KINDS,
    input_order_is_channel_outer,
    input_passes,
    prologue_on_every_load,
    weight_passes,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[Any]


class SourceColumns(NamedTuple):
    """What the closed form needs of the analytic plan: by access its source, by source its op
    and tensor, by tensor its name."""

    source: Array
    source_op: Array
    source_tensor: Array
    names: list[str]


class PassReread(NamedTuple):
    """A kernel whose loop order reads an operand in several passes (bnsim.trace.dataflow)."""

    kernel: int
    access: int  # the stream's access that reads the operand
    passes: int
    image_major: bool  # each thread's pass covers one image at a time (else the whole batch)
    # the passes come one after the other, each over the whole operand (a GPU's passes, which all
    # cores make together; the weights' passes, one per image or per wave)
    in_sequence: bool
    strips: int = 1  # the operand falls into this many parts, each read in its own passes


# per schedule, library and core count: the kernels whose operands are read in several passes
_REREADS: weakref.WeakKeyDictionary[Schedule, dict[tuple[str, str, int], list[PassReread]]] = (
    weakref.WeakKeyDictionary()
)


def with_rereads(
    trace: Trace,
    plan: SourceColumns,
    stream: stackmodel.Stream,
    flows: stackmodel.Flows,
    capacity: int,
) -> stackmodel.Flows:
    """`flows` with the DRAM reads of the input passes that the LLC cannot serve.

    Passes that different threads make at the same time read the input once; those a thread makes
    one after the other read it again unless the data all cores read in one pass fits in an LLC
    of `capacity` bytes. In image-by-image order a thread makes its share of an image's passes in
    turn (all of them when there are at least as many images as cores) and the cores read one
    image each; with channel blocks outermost the cores share the passes, each over the whole
    batch; on a GPU all SMs make one swizzle strip's pass over the whole batch before the next,
    and each wave of CTAs reads its strip's weights. Fast fidelity simulates each pass; this is
    its closed form."""
    # the passes follow from the library, the layout and, for a GPU's waves, the number of cores
    compute = trace.machine.compute
    key = (compute.library, compute.layout, trace.machine.cores.count)
    known = _REREADS.setdefault(trace.schedule, {})
    rereads = known.get(key)
    if rereads is None:
        rereads = known[key] = _rereads(trace, plan)
    if not rereads:
        return flows
    read_by_source = flows.read_by_source.copy()
    read_by_kernel = flows.read_by_kernel.copy()
    cores = trace.machine.cores.count
    for kernel, access, passes, image_major, in_sequence, strips in rereads:
        size = int(stream.size[access])
        images = trace.schedule.kernels[kernel].space[0].extent
        if in_sequence:
            in_turn, working = float(passes), -(-size // strips)
        elif image_major:
            busy = min(images, cores)  # images the cores work on at once
            in_turn = max(1.0, passes * busy / cores)
            working = min(size, busy * -(-size // images))
        else:
            in_turn, working = max(1.0, passes / cores), size
        if working <= capacity or in_turn <= 1:
            continue
        extra = round((in_turn - 1) * size)
        read_by_source[stream.source[access]] += extra
        if len(read_by_kernel):
            read_by_kernel[kernel] += extra
    return flows._replace(read_by_source=read_by_source, read_by_kernel=read_by_kernel)


def _rereads(trace: Trace, plan: SourceColumns) -> list[PassReread]:
    """The kernels of the trace's schedule whose main op reads its input or its weights from
    memory in several passes, with the access of that read."""
    import numpy as np  # noqa: PLC0415 (numpy loads on first use)

    schedule, machine = trace.schedule, trace.machine
    candidates = []  # (kernel, flat index of the op, tensor, passes, strips, of the weights)
    first_op = 0
    for index, kernel in enumerate(schedule.kernels):
        start, first_op = first_op, first_op + len(kernel.ops)
        if kernel.main_op().kind not in PASS_KINDS:
            continue
        passes = input_passes(schedule, kernel, machine)
        if passes > 1:
            op_index, name, _ = _pass_input(kernel, prologue_on_every_load(machine))
            candidates.append((index, start + op_index, name, passes, 1, False))
        passes, strips = weight_passes(schedule, kernel, machine)
        if passes > 1:
            main = kernel.main_op()
            op_index = kernel.ops.index(main)
            candidates.append((index, start + op_index, main.reads[1], passes, strips, True))
    if not candidates:
        return []
    tensor_ids = {name: index for index, name in enumerate(plan.names)}
    wanted = np.array([candidate[1] for candidate in candidates], dtype=np.int64)
    chosen = np.flatnonzero(np.isin(plan.source_op, wanted))
    sources = {
        (op, tensor): int(source)
        for source, op, tensor in zip(
            chosen.tolist(),
            plan.source_op[chosen].tolist(),
            plan.source_tensor[chosen].tolist(),
            strict=True,
        )
    }
    first_access = np.full(len(plan.source_op), -1, dtype=np.int64)
    first_access[plan.source[::-1]] = np.arange(len(plan.source) - 1, -1, -1)
    found = []
    gpu = machine.compute.library == "cudnn"
    for index, op, name, passes, strips, weights in candidates:
        source = sources.get((op, tensor_ids.get(name, -1)))
        if source is not None:
            kernel = schedule.kernels[index]
            channel_outer = input_order_is_channel_outer(schedule, kernel, machine)
            found.append(
                PassReread(
                    index,
                    int(first_access[source]),
                    passes,
                    not channel_outer,
                    gpu or weights,
                    strips,
                )
            )
    return found


def _pass_input(kernel: Kernel, every_load: bool) -> tuple[int, str, bool]:
    """The access a pass over the main op's input repeats, as (op index, tensor, is write): the
    main op's read of its input; where a prologue makes that input, the prologue's read of its
    own input (recomputed on every load: `per_load` ops, or all prologues with `every_load`) or
    its store of the input it makes (reread later)."""
    ops = kernel.ops
    main = kernel.main_op()
    name = main.reads[0]
    for index, op in enumerate(ops):
        if op.placement is Placement.PROLOGUE and name in op.writes:
            if op.attr("per_load") or every_load:
                first = next(i for i, o in enumerate(ops) if o.placement is Placement.PROLOGUE)
                return first, ops[first].reads[0], False
            return index, name, True
    return ops.index(main), name, False
