"""Turn a Schedule into timed steps with FLOPs and address ranges: layout, work split, accesses.

Every stored tensor gets a base address in one flat address space (page aligned). Activations use
the machine's library layout: nChw16c (channels padded to blocks of 16, each block's rows
contiguous) or nchw; a schedule is laid out once per element size and layout, and Traces share it.
Each kernel's work is split over the cores as the machine's library splits it
(bnsim.trace.dataflow), the split verification runs too. Each core's boxes become steps
(bnsim.trace._tiles): a step lists, in op order, the byte ranges each op reads and writes, each
tagged with its op and tensor (its *source*), and the core cycles of its work. Steps are generated
lazily, kernel by kernel.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from bnsim.config.machine import Machine
from bnsim.errors import ConfigError
from bnsim.graph import TensorShape
from bnsim.schedule import (
    FIXED_ELEMENT_BYTES,
    Op,
    OpKind,
    Placement,
    Reorders,
    Schedule,
    Tensor,
    TensorRole,
)
from bnsim.schedule.footprint import Region, footprint_rule, prologue_operand
from bnsim.schedule.selection import Sampling, Selection, select
from bnsim.trace._tiles import (
    BLOCKED,
    CHANNEL_BLOCK,
    CHANNELS_LAST,
    PLAIN,
    Layout,
    Stream,
    runs,
    thread_boxes,
)
from bnsim.trace.dataflow import WorkSplit, kernel_store_kinds, prologue_on_every_load, split_work

PAGE_BYTES = 4096
DEFAULT_STEP_BYTES = 512 << 10  # half of cmp16's L2: a step's accesses fit in the private cache
READ = 0  # the access kind of a load (stores: bnsim.trace.dataflow's FETCH, STREAM, ALLOCATE)
Fidelity = Literal["fast", "line", "analytic"]
FIDELITIES: tuple[Fidelity, ...] = ("fast", "line", "analytic")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """How finely to simulate; none of these changes what the machine or its library does.

    fidelity: "fast" (range caches, the default), "line" (exact set-associative line caches) or
        "analytic" (tensor-level stack distances and a roofline; no tiles).
    tiles_per_core: the fewest steps each of a core's work items is simulated in.
    step_bytes: the most bytes of accesses one step issues (None: DEFAULT_STEP_BYTES); a work item
        takes as many steps as its accesses need, each issuing an equal share of every stream.
    allow_slow: run line fidelity even when it is estimated to take long (`--force`).
    """

    fidelity: Fidelity = "fast"
    tiles_per_core: int = 1
    step_bytes: int | None = None
    allow_slow: bool = False

    def check(self, machine: Machine) -> None:
        """Raises ConfigError if these options cannot simulate `machine`."""
        if self.fidelity not in FIDELITIES:
            raise ConfigError(
                f"unknown fidelity {self.fidelity!r}; expected one of {', '.join(FIDELITIES)}"
            )
        if self.tiles_per_core < 1:
            raise ConfigError(f"tiles per core must be ≥ 1, got {self.tiles_per_core}")
        line = machine.llc.block_bytes
        if self.step_bytes is not None and self.step_bytes < line:
            raise ConfigError(
                f"step must be at least one cache line ({line} B), got {self.step_bytes} B"
            )

    def step(self) -> int:
        """The most bytes one step issues."""
        return DEFAULT_STEP_BYTES if self.step_bytes is None else self.step_bytes


@dataclass(frozen=True, slots=True)
class Source:
    """Who an access belongs to: kernel index, op index within the kernel, tensor."""

    kernel: int
    op: int
    tensor: str


class BoxWork(NamedTuple):
    """One box of a core's share of a kernel: its work, and its accesses as streams.

    A tuple, not a dataclass: an iteration builds tens of thousands, and a tuple is built in a third
    of the time. The simulator runs the box in `steps` steps, each issuing an equal share of every
    stream (bnsim.trace._tiles.stream_ranges).
    """

    compute_cycles: float
    flops: int
    steps: int
    streams: tuple[Stream, ...]


@dataclass(frozen=True, slots=True)
class Reduction:
    """A tensor summed across tiles: combined after the kernel's tiles, then written once."""

    tensor: str
    source: int
    channel_axis_elements: int  # elements per unit of the kernel's c axis (0: not split by c)
    # the threads holding partial sums share the combine (weight gradients: oneDNN splits the
    # gradient's blocks over them, a GPU runs a split-K reduction kernel); else one thread does it
    parallel: bool = False


class _Layout(NamedTuple):
    """A schedule's tensors in memory (read-only: Traces of one layout share it)."""

    base: Mapping[str, int]  # name → base address
    size: int  # bytes of them all
    stored: Mapping[str, int]  # name → bytes in memory (channel padding included)
    # name → (base address, bytes per element, shape, order): what `runs` needs
    info: Mapping[str, Layout]


# a layout follows from the schedule, the bytes of a data element and the activations' order in
# memory: made once per schedule and layout, as one schedule is simulated on many machines
_LAYOUTS: weakref.WeakKeyDictionary[Schedule, dict[tuple[int, int], _Layout]] = (
    weakref.WeakKeyDictionary()
)


def library_reorders(machine: Machine) -> Reorders:
    """The layout copies `machine`'s library makes around its convolutions: what a schedule for
    it is built with (`build_schedule(..., reorders=library_reorders(machine))`)."""
    compute = machine.compute
    return Reorders.of(compute.library, compute.framework, compute.layout)


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
            layout = layouts[self.data_bytes, self.order] = self._lay_out(PAGE_BYTES)
        self.base: Mapping[str, int] = layout.base
        self.size = layout.size
        self._stored = layout.stored
        self._info = layout.info
        # compute_cycles' rates by op kind, worked out once (it runs for every op)
        compute = machine.compute
        flops_per_cycle = machine.cores.flops_per_cycle()
        passes = compute.conv_efficiencies()
        conv_efficiency = {
            OpKind.CONV_FWD: passes.forward,
            OpKind.CONV_BWD_DATA: passes.backward_data,
            OpKind.CONV_BWD_WEIGHT: passes.backward_weight,
        }
        self._flops_per_cycle = {
            kind: flops_per_cycle * conv_efficiency.get(kind, compute.fc_efficiency)
            for kind in OpKind
            if kind.is_matrix()
        }
        self._fused_flops_per_cycle = {
            **self._flops_per_cycle,
            **{
                kind: flops_per_cycle * efficiency * compute.fused_conv_factor
                for kind, efficiency in conv_efficiency.items()
            },
        }
        # a cost left out (reorders, on a machine that makes none) belongs to no op of the trace
        self._cycles_per_element: dict[OpKind, float] = {
            kind: getattr(compute.cycles_per_element, cost)
            for kind, cost in ELEMENTWISE_COST.items()
            if getattr(compute.cycles_per_element, cost) is not None
        }
        for kernel in schedule.kernels:
            for op in kernel.ops:
                if op.kind in ELEMENTWISE_COST and op.kind not in self._cycles_per_element:
                    raise ConfigError(
                        f"machine {machine.name}: compute.cycles_per_element."
                        f"{ELEMENTWISE_COST[op.kind]}: required by layer '{op.layer}' "
                        f"({schedule.network.layer(op.layer).layer_kind}), which the machine "
                        "gives no cost for"
                    )
        self.sources: list[Source] = []
        self._source_ids: dict[tuple[int, int, str], int] = {}
        self._work: dict[int, WorkSplit] = {}

    # --- layout --------------------------------------------------------------------------------

    def element_bytes(self, name: str) -> int:
        """Bytes per element of tensor `name`."""
        return self._format(self.schedule.tensor(name))[0]

    def stored_bytes(self, name: str) -> int:
        """Bytes tensor `name` occupies in memory (channel padding included)."""
        known = self._stored.get(name)
        if known is not None:
            return known
        return self._format(self.schedule.tensor(name))[2]

    def stored_sizes(self) -> Mapping[str, int]:
        """Bytes every stored (not transient) tensor occupies, in order of creation."""
        return self._stored

    def _format(self, tensor: Tensor) -> tuple[int, int, int]:
        """(bytes per element, order in memory, bytes in memory) of `tensor`.

        A copy in the library's layout (`library_layout`) is blocked: only oneDNN reorders."""
        shape = tensor.shape
        elements = math.prod(shape)
        fixed = FIXED_ELEMENT_BYTES.get(tensor.element)  # None: the machine's data type
        if fixed is not None:
            return fixed, PLAIN, elements * fixed
        element = self.data_bytes
        if len(shape) != 4 or tensor.role in _WEIGHT_ROLES:
            return element, PLAIN, elements * element
        if tensor.library_layout:
            order = BLOCKED
        elif tensor.role in _ACTIVATION_ROLES:
            order = self.order
        elif tensor.role is TensorRole.INPUT and self.order == CHANNELS_LAST:
            order = CHANNELS_LAST  # channels-last training converts the images too
        else:
            return element, PLAIN, elements * element
        if order == BLOCKED:
            return element, order, elements // shape[1] * _padded(shape[1]) * element
        return element, order, elements * element

    def _lay_out(self, alignment: int) -> _Layout:
        """Where every stored tensor lies (in order of creation), and what its ranges need."""
        base: dict[str, int] = {}
        stored: dict[str, int] = {}
        info: dict[str, Layout] = {}
        format_of = self._format
        address = alignment
        for name, tensor in self.schedule.tensors.items():
            if tensor.transient:
                continue
            element, order, size = format_of(tensor)
            stored[name] = size
            if tensor.storage:  # in place: the same bytes as the tensor it overwrites
                base[name] = base[tensor.storage]
                info[name] = (base[name], element, tensor.shape, order)
                continue
            base[name] = address
            info[name] = (address, element, tensor.shape, order)
            address += -(-size // alignment) * alignment
        return _Layout(base, address, stored, info)

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
        kind = op.kind
        rate = (self._fused_flops_per_cycle if fused_conv else self._flops_per_cycle).get(kind)
        if rate is not None:  # convolutions and fully connected ops
            return op.flops * share / rate
        return op_elements(self.schedule, op) * share * self._cycles_per_element[kind]

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


RegionRule = Callable[[Region, Region], Region]  # (tile, op region) → operand region


def _restricted(rule: RegionRule | None, selection: Selection) -> RegionRule:
    """`rule`, narrowed to the sampled samples (batch sampling) or patch (feature sampling)."""

    def narrowed(tile: Region, region: Region) -> Region:
        base = region if rule is None else rule(tile, region)
        low, high = base.get("n", (0, 1 << 62))
        samples = tuple(n for n in selection.samples if low <= n < high)
        h0, h1 = base.get("h", (0, 1 << 62))
        rows = (max(h0, selection.rows[0]), min(h1, selection.rows[1]))
        if not samples or rows[0] >= rows[1]:
            return {**base, "samples": (), "cols": selection.cols}  # type: ignore[dict-item]
        return {**base, "samples": samples, "h": rows, "cols": selection.cols}  # type: ignore[dict-item]

    return narrowed


def _input_channel_weights(schedule: Schedule, op: Op, input_major: bool) -> RegionRule:
    """Rule: the weights a backward-data tile of some input channels reads: those channels of
    every filter (one group's filters, for a grouped convolution). In the library's own copy
    (`input_major`: oneDNN reorders backward-data weights into blocks of input channels, e.g.
    `Bcda64b`) a range of input channels is one contiguous run."""
    weights = schedule.tensor(op.reads[1]).shape
    per_group_in = weights[1]
    groups = schedule.tensor(op.writes[0]).shape[1] // per_group_in
    per_group_out = weights[0] // groups
    per_input_channel = weights[0] * weights[2] * weights[3]

    def slice_of(tile: Region, region: Region) -> Region:
        c0, c1 = region["c"]
        if groups == 1 and input_major:
            return {"e": (c0 * per_input_channel, c1 * per_input_channel)}
        if groups == 1:
            return {"c": (c0, c1)}
        g0, g1 = c0 // per_group_in, (c1 - 1) // per_group_in + 1
        return {"n": (g0 * per_group_out, g1 * per_group_out)}

    return slice_of


def _per_sample_channels(tile: Region, region: Region) -> Region:
    return {axis: region[axis] for axis in ("n", "c") if axis in region}


def _per_sample(tile: Region, region: Region) -> Region:
    return {"n": region["n"]} if "n" in region else {}


def _channels(tile: Region, region: Region) -> Region:
    return {"c": region["c"]} if "c" in region else {}


def _everything(tile: Region, region: Region) -> Region:
    return {}


class _Access(NamedTuple):
    """One tensor an op reads or writes, as every tile of its kernel does (a tuple: see _tiles)."""

    region: RegionRule | None  # None: the op's own region
    layout: Layout
    kind: int  # READ, or how a store reaches memory (bnsim.trace.dataflow: FETCH, STREAM, ALLOCATE)
    source: int


class _Step(NamedTuple):
    """One op of a kernel, as every tile runs it (a tuple: bnsim.trace._tiles unpacks it)."""

    cycles: float  # core cycles of the whole op
    flops: int
    operand: int | None  # for prologue ops: the main-op input they produce
    shape: tuple[int, ...]  # of the op's first input
    per_load_elements: int  # nonzero: work follows the footprint (recomputed on every load)
    accesses: tuple[_Access, ...]
    # main op: (operand, layout, source) of stored prologue outputs it re-reads where an earlier
    # box of the same thread produced them
    rereads: tuple[tuple[int, Layout, int], ...]
    # ≥ 0: only boxes that start at 0 along this axis store the op's outputs (the first
    # output-channel tile of a prologue that runs on every load); -1: every box stores
    store_axis: int


_ACTIVATION_ROLES = (
    TensorRole.ACTIVATION,
    TensorRole.STASHED_ACTIVATION,
    TensorRole.ACTIVATION_GRADIENT,
)
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

ELEMENTWISE_COST: dict[OpKind, str] = {
    OpKind.BN_STATS: "bn_stats",
    OpKind.BN_APPLY: "bn_apply",
    OpKind.BN_GRAD_REDUCE: "bn_grad_reduce",
    OpKind.BN_GRAD_APPLY: "bn_grad_apply",
    OpKind.RELU_FWD: "relu_fwd",
    OpKind.RELU_BWD: "relu_bwd",
    OpKind.ACTIVATION_FWD: "activation_fwd",
    OpKind.ACTIVATION_BWD: "activation_bwd",
    OpKind.SCALE_FWD: "scale_fwd",
    OpKind.SCALE_BWD: "scale_bwd",
    OpKind.SCALE_GRAD: "scale_grad",
    OpKind.POOL_FWD: "pool_fwd",
    OpKind.POOL_BWD: "pool_bwd",
    OpKind.CONCAT_FWD: "concat",
    OpKind.CONCAT_BWD: "concat",
    OpKind.ADD_FWD: "add",
    OpKind.GRAD_ACCUMULATE: "add",
    OpKind.DROPOUT_FWD: "dropout",
    OpKind.DROPOUT_BWD: "dropout",
    # torchvision multiplies the map by its per-sample keep values: a broadcast multiply
    OpKind.STOCHASTIC_DEPTH_FWD: "scale_fwd",
    OpKind.STOCHASTIC_DEPTH_BWD: "scale_bwd",
    OpKind.CHUNK_FWD: "concat",  # copies, as a concatenation's
    OpKind.CHUNK_BWD: "concat",
    OpKind.SHUFFLE_FWD: "concat",
    OpKind.SHUFFLE_BWD: "concat",
    OpKind.LOSS_FWD: "loss",
    OpKind.LOSS_BWD: "loss",
    OpKind.SGD_UPDATE: "sgd_update",
    OpKind.REORDER: "reorder",
}

_WEIGHT_ROLES = frozenset((TensorRole.WEIGHT, TensorRole.WEIGHT_GRADIENT))
_WEIGHT_GRADIENT_KINDS = frozenset((OpKind.CONV_BWD_WEIGHT, OpKind.FC_BWD_WEIGHT))
# sets built once: looking an enum member up on its class costs as much as the rest of a call
_POOL_BWD = OpKind.POOL_BWD
# element-wise ops whose work is counted in elements of their first input (max-pool backward:
# of its output), not of their first output
_INPUT_SIZED_KINDS = frozenset(
    (
        OpKind.POOL_FWD,
        OpKind.BN_STATS,
        OpKind.BN_GRAD_REDUCE,
        OpKind.LOSS_FWD,
        OpKind.LOSS_BWD,
        OpKind.SGD_UPDATE,
        OpKind.CONCAT_BWD,
        OpKind.POOL_BWD,
    )
)


def _reorders_text(reorders: Reorders) -> str:
    copied = [name for name in ("activations", "weights") if getattr(reorders, name)]
    return f"reorders of {' and '.join(copied)}" if copied else "no layout reorders"


def op_elements(schedule: Schedule, op: Op) -> int:
    """Elements an element-wise op processes (what `cycles_per_element` is per)."""
    kind = op.kind
    if kind in _INPUT_SIZED_KINDS:
        name = op.reads[0] if kind is not _POOL_BWD else op.writes[0]
    else:
        name = op.writes[0]
    return math.prod(schedule.tensors[name].shape)


_ORDERS = {"nchw": PLAIN, "nChw16c": BLOCKED, "nhwc": CHANNELS_LAST}


def _padded(channels: int) -> int:
    return -(-channels // CHANNEL_BLOCK) * CHANNEL_BLOCK


def _concat_part(schedule: Schedule, op: Op, position: int) -> RegionRule:
    """Rule: the region of concatenation part `position` that a region of the whole covers."""
    layer = schedule.network.layer(op.layer)
    channels = [schedule.network.out_shape(source).c for source in layer.inputs]
    offset = sum(channels[:position])
    return _part_of((offset, offset + channels[position]))


def _channels_from(offset: int) -> RegionRule:
    """Rule: a chunk's region read from its input, whose channels start at `offset`."""

    def shifted(tile: Region, region: Region) -> Region:
        start, stop = region["c"]
        return {**region, "c": (start + offset, stop + offset)}

    return shifted


def _part_of(channels: tuple[int, int]) -> RegionRule:
    """Rule: the region of the part holding `channels` of a whole that a region of it covers."""
    offset, end = channels

    def part(tile: Region, region: Region) -> Region:
        start, stop = region.get("c", (0, end))
        low, high = max(start, offset), min(stop, end)
        return {**region, "c": (low - offset, high - offset) if low < high else (0, 0)}

    return part
