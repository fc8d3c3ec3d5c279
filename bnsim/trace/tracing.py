"""A Trace: the tiles of a schedule on a machine, kernel by kernel, generated lazily.

For each kernel, its work split over the cores (bnsim.trace.dataflow), each op's accesses planned
once (which tensors, which region of each, stored how), and each core's boxes built as work and
streams (bnsim.trace._tiles); partial sums to combine at the kernel's end (`reductions`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bnsim.config.machine import Machine
from bnsim.errors import ConfigError
from bnsim.graph import TensorShape
from bnsim.schedule import (
    Op,
    OpKind,
    Placement,
    Schedule,
    TensorRole,
)
from bnsim.schedule.footprint import Region, footprint_rule, prologue_operand
from bnsim.schedule.selection import Sampling, Selection, select
from bnsim.trace._tiles import (
    Layout,
    runs,
    thread_boxes,
)
from bnsim.trace.costs import compute_rates, op_cycles
from bnsim.trace.dataflow import WorkSplit, kernel_store_kinds, prologue_on_every_load, split_work
from bnsim.trace.layout import (
    _ACTIVATION_ROLES,
    _LAYOUTS,
    _ORDERS,
    PAGE_BYTES,
    _reorders_text,
    lay_out,
    library_reorders,
    tensor_format,
)
from bnsim.trace.options import SimOptions
from bnsim.trace.regions import (
    RegionRule,
    _channels,
    _channels_from,
    _concat_part,
    _everything,
    _input_channel_weights,
    _part_of,
    _per_sample,
    _per_sample_channels,
    _restricted,
)
from bnsim.trace.work import BoxWork, Reduction, Source, _Access, _Step

READ = 0  # the access kind of a load (stores: bnsim.trace.dataflow's FETCH, STREAM, ALLOCATE)


class Trace:
    """The tiles of a schedule on a machine; tiles are generated lazily, one kernel at a time."""

    def __init__(self, schedule: Schedule, machine: Machine, options: SimOptions) -> None:
        options.check(machine)
        expected = library_reorders(machine)
        if schedule.reorders != expected:
            raise ConfigError(
                f"machine {machine.name}: its library makes {_reorders_text(expected)} around "
                f"convolutions, but the schedule was built with {_reorders_text(schedule.reorders)}"
                "; build it with build_schedule(..., reorders=library_reorders(machine))"
            )
        self.schedule = schedule
        self.machine = machine
        self.options = options
        self.data_bytes = machine.dtype_bytes()
        self.order = _ORDERS[machine.compute.layout]
        layouts = _LAYOUTS.setdefault(schedule, {})
        layout = layouts.get((self.data_bytes, self.order))
        if layout is None:
            layout = layouts[self.data_bytes, self.order] = lay_out(
                schedule, self.data_bytes, self.order, PAGE_BYTES
            )
        self.base: Mapping[str, int] = layout.base
        self.size = layout.size
        self._stored = layout.stored
        self._info = layout.info
        # compute_cycles' rates by op kind, worked out once (it runs for every op)
        self._rates = compute_rates(machine, schedule)
        self.sources: list[Source] = []
        self._source_ids: dict[tuple[int, int, str], int] = {}
        self._work: dict[int, WorkSplit] = {}

    # --- layout --------------------------------------------------------------------------------

    def element_bytes(self, name: str) -> int:
        """Bytes per element of tensor `name`."""
        return tensor_format(self.schedule.tensor(name), self.data_bytes, self.order)[0]

    def stored_bytes(self, name: str) -> int:
        """Bytes tensor `name` occupies in memory (channel padding included)."""
        known = self._stored.get(name)
        if known is not None:
            return known
        return tensor_format(self.schedule.tensor(name), self.data_bytes, self.order)[2]

    def stored_sizes(self) -> Mapping[str, int]:
        """Bytes every stored (not transient) tensor occupies, in order of creation."""
        return self._stored

    def runs(self, name: str, region: Region) -> list[tuple[int, int]]:
        """Byte ranges [start, stop) of a region of tensor `name`, merged where contiguous.

        4-D tensors take n, c, h bounds (for weights, n bounds the output channels); flat tensors
        take e bounds; 1-D tensors c (channels) or n (samples) bounds; 2-D tensors n (row) bounds,
        or `columns` bounds (a column block: one range per row).
        """
        return runs(self._info[name], region)

    def source(self, kernel: int, op: int, tensor: str) -> int:
        """Id of an attribution source (interned)."""
        key = (kernel, op, tensor)
        ident = self._source_ids.get(key)
        if ident is None:
            ident = self._source_ids[key] = len(self.sources)
            self.sources.append(Source(kernel, op, tensor))
        return ident

    # --- tiles ---------------------------------------------------------------------------------

    def work(self, index: int) -> WorkSplit:
        """The library's split of kernel `index` over the cores (bnsim.trace.dataflow)."""
        work = self._work.get(index)
        if work is None:
            kernel = self.schedule.kernels[index]
            work = split_work(self.schedule, kernel, self.machine, wave_bytes=self.options.step())
            self._work[index] = work
        return work

    def boxes(self, index: int) -> tuple[list[BoxWork], list[range]]:
        """The work of kernel `index`'s boxes, core by core, and each core's range of them; for a
        dynamic split (`self.work(index).dynamic`) the boxes in launch order, as one range."""
        kernel = self.schedule.kernels[index]
        main = kernel.main_op()
        plan = self._plan(index)
        rules = {
            step.operand: footprint_rule(self.schedule, main, step.operand)
            for step in plan
            if step.operand is not None
        }

        def footprint(tile: Region, operand: int) -> Region:
            return rules[operand](tile)

        names = [axis.name for axis in kernel.space]
        volume = math.prod(axis.extent for axis in kernel.space)
        work = self.work(index)
        found: list[BoxWork] = []
        chunks = []
        threads = work.threads
        if work.dynamic:  # one queue in launch order, which the cores take from as they free up
            threads = (work.launch_order(),)
        for boxes in threads:
            first = len(found)
            thread_boxes(
                boxes,
                names,
                volume,
                plan,
                footprint,
                self.options.step(),
                self.options.tiles_per_core,
                BoxWork,
                found,
            )
            chunks.append(range(first, len(found)))
        return found, chunks

    def _plan(self, index: int) -> list[_Step]:
        """What every tile of kernel `index` does, decided once: per op its work and accesses."""
        kernel = self.schedule.kernels[index]
        main = kernel.main_op()
        tensors = self.schedule.tensors
        fused = len(kernel.ops) > 1
        produced: set[str] = set()  # written by an earlier op of the tile: still in registers/L1
        prologue_operands: set[int] = set()
        stores = kernel_store_kinds(self.schedule, kernel, self.machine)
        in_registers = prologue_on_every_load(self.machine)
        # the axis of the main op's output channels: its first tile stores what a prologue makes
        store_axis = next(
            (position for position, axis in enumerate(kernel.space) if axis.name == "c"), -1
        )
        plan = []
        for op_index, op in enumerate(kernel.ops):
            operand = (
                prologue_operand(kernel, op_index) if op.placement is Placement.PROLOGUE else None
            )
            sampled = op.kind is OpKind.BN_STATS and bool(op.attr("sampling"))
            accesses = []
            for position, name in enumerate(op.reads):
                if tensors[name].transient or name in produced:
                    continue
                rule = self._read_region(op, main, position, name)
                if sampled and position == 0:  # only the sampled elements are read
                    rule = _restricted(rule, self._selection(op))
                source = self.source(index, op_index, name)
                accesses.append(_Access(rule, self._info[name], READ, source))
            store = stores[op_index]
            for name in op.writes:
                produced.add(name)
                if tensors[name].transient or name in op.reduces:
                    continue  # reduced tensors are written once, after the kernel's tiles
                source = self.source(index, op_index, name)
                rule = self._write_region(op, name)
                accesses.append(_Access(rule, self._info[name], store, source))
            shape = tensors[op.reads[0]].shape
            per_load = operand is not None and (bool(op.attr("per_load")) or in_registers)
            rereads: tuple[tuple[int, Layout, int], ...] = ()
            if op is main:  # stored prologue outputs: re-read where the thread produced them
                rereads = tuple(
                    (position, self._info[name], self.source(index, op_index, name))
                    for position, name in enumerate(op.reads)
                    if position in prologue_operands and not tensors[name].transient
                )
            if operand is not None:
                prologue_operands.add(operand)
            plan.append(
                _Step(
                    cycles=self.compute_cycles(op, self.sampled_share(op), fused and op is main),
                    flops=op.flops,
                    operand=operand,
                    shape=shape,
                    per_load_elements=math.prod(shape) if per_load else 0,
                    accesses=tuple(accesses),
                    rereads=rereads,
                    store_axis=store_axis if operand is not None and in_registers else -1,
                )
            )
        return plan

    def op_compute_cycles(self, index: int) -> list[float]:
        """Core cycles of each op's whole work in kernel `index`, as its tiles charge them."""
        kernel = self.schedule.kernels[index]
        main, fused = kernel.main_op(), len(kernel.ops) > 1
        return [
            self.compute_cycles(op, self.sampled_share(op), fused and op is main)
            for op in kernel.ops
        ]

    def sampled_share(self, op: Op) -> float:
        """The fraction of its input a sampled statistics op reads (1 for every other op)."""
        if op.kind is not OpKind.BN_STATS or not op.attr("sampling"):
            return 1.0
        shape = self.schedule.tensor(op.reads[0]).shape
        return self._selection(op).elements_per_channel() * shape[1] / math.prod(shape)

    def compute_cycles(self, op: Op, share: float, fused_conv: bool) -> float:
        """Core cycles of `share` (0..1) of an op's work (`fused_conv`: a convolution that is the
        main op of a fused kernel)."""
        return op_cycles(self._rates, self.schedule, op, share, fused_conv)

    def _read_region(self, op: Op, main: Op, position: int, name: str) -> RegionRule | None:
        """How the region `op` reads of operand `position` follows from (tile, op region).

        None: the op's own region (most reads, kept as None so that tiles skip the call).
        """
        if op.kind is OpKind.REORDER:  # a copy reads what it writes, in the other layout
            return None
        if op is main and position in _FOOTPRINT_OPERANDS.get(op.kind, ()):
            rule = footprint_rule(self.schedule, op, position)
            return lambda tile, region: rule(tile)
        if op.kind is OpKind.CONCAT_FWD:
            schedule = self.schedule
            return _concat_part(schedule, op, position)
        if op.kind in (OpKind.SCALE_FWD, OpKind.SCALE_BWD) and position == 1:
            return _per_sample_channels  # the N×C×1×1 scale of the tile's channels
        if op.kind is OpKind.CHUNK_FWD:
            return _channels_from(op.attr("channels")[0])
        if op.kind is OpKind.CHUNK_BWD:
            return _part_of(op.attr("channels")[position])
        if op.kind is OpKind.STOCHASTIC_DEPTH_BWD and position == 1:
            return _per_sample  # the N×1×1×1 keep values of the tile's samples
        tensor = self.schedule.tensor(name)
        if tensor.role in _ACTIVATION_ROLES or op.kind is OpKind.SGD_UPDATE:
            return None
        if tensor.role in (TensorRole.WEIGHT, TensorRole.WEIGHT_GRADIENT):
            if len(tensor.shape) == 1:  # biases, BN scale and shift: the tile's channels
                return _channels
            if op.kind in (OpKind.CONV_FWD, OpKind.FC_FWD):  # weight rows of the tile's outputs
                return lambda tile, region: {"n": region["c"]}
            if op.kind is OpKind.FC_BWD_DATA:  # the weight columns of the tile's inputs
                return lambda tile, region: {"columns": region["c"]}
            if op.kind is OpKind.CONV_BWD_DATA and len(tensor.shape) == 4:
                return _input_channel_weights(self.schedule, op, tensor.library_layout)
            return _everything
        if tensor.role is TensorRole.BN_STATISTICS:
            return _channels
        if len(tensor.shape) == 4:  # max-pool indices, dropout masks: like the activation
            return None
        return lambda tile, region: {"n": region["n"]} if "n" in region else {}  # labels, logp

    def _selection(self, op: Op) -> Selection:
        """The elements a sampled statistics op reads (bnsim.schedule.selection)."""
        n, c, h, w = self.schedule.tensor(op.reads[0]).shape
        return select(Sampling(*op.attr("sampling")), op.layer, TensorShape(n, c, h, w))

    def _write_region(self, op: Op, name: str) -> RegionRule | None:
        if op.kind is OpKind.STOCHASTIC_DEPTH_FWD and name == op.writes[1]:
            return _per_sample
        if op.kind is OpKind.CONCAT_BWD:
            part = op.attr("slices")[op.writes.index(name)]
            schedule = self.schedule
            return _concat_part(schedule, op, part)
        return None

    def reductions(self, index: int) -> tuple[Reduction, ...]:
        """The kernel's cross-tile sums: what the simulator combines after its tiles."""
        kernel = self.schedule.kernels[index]
        found = []
        for op_index, op in enumerate(kernel.ops):
            for name in op.reduces:
                if self.schedule.tensor(name).transient:
                    continue
                shape = self.schedule.tensor(name).shape
                per_channel = math.prod(shape[1:]) if len(shape) > 1 else 1
                if op.kind is OpKind.LOSS_FWD:
                    per_channel = 0
                found.append(
                    Reduction(
                        tensor=name,
                        source=self.source(index, op_index, name),
                        channel_axis_elements=per_channel,
                        parallel=op.kind in _WEIGHT_GRADIENT_KINDS,
                    )
                )
        return tuple(found)


# operands of main ops read through the tile's input footprint
_FOOTPRINT_OPERANDS: dict[OpKind, tuple[int, ...]] = {
    OpKind.CONV_FWD: (0,),
    OpKind.CONV_BWD_DATA: (0,),
    OpKind.CONV_BWD_WEIGHT: (0, 1),
    OpKind.FC_FWD: (0,),
    OpKind.FC_BWD_DATA: (0,),
    OpKind.FC_BWD_WEIGHT: (0, 1),
    OpKind.POOL_FWD: (0,),
    OpKind.POOL_BWD: (0, 1),
}


_WEIGHT_GRADIENT_KINDS = frozenset((OpKind.CONV_BWD_WEIGHT, OpKind.FC_BWD_WEIGHT))
