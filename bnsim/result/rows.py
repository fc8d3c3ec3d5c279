"""The rows of a result: one per traffic source, kernel and op time; cache and channel counters.

Named tuples where a result holds thousands (C code builds, pickles and unpickles tuples at a
tenth of the cost of frozen dataclasses), frozen slotted dataclasses for the few counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar


class _PicklesAsValues:
    """Pickles as (class, field values) for frozen slotted dataclasses.

    The dataclass default calls `fields()` for every object, both ways: sending one DenseNet-121
    result (~8,000 rows) from a worker process to the parent took 0.12 s (RunResult sends its
    rows as plain tuples, too).
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        cls = type(self)
        return (_rebuild, (cls, _values_of(cls)(self)))


_GETTERS: dict[type, attrgetter[Any]] = {}


def _values_of(cls: type) -> attrgetter[Any]:
    getter = _GETTERS.get(cls)
    if getter is None:
        getter = _GETTERS[cls] = attrgetter(*cls.__slots__)  # type: ignore[attr-defined]
    return getter


def _rebuild(cls: type, values: tuple[Any, ...]) -> Any:
    value: Any = object.__new__(cls)
    for name, item in zip(cls.__slots__, values, strict=True):  # type: ignore[attr-defined]
        object.__setattr__(value, name, item)
    return value


class TrafficRow(NamedTuple):
    """DRAM bytes charged to one source: an op of a kernel touching one tensor.

    A named tuple, not a dataclass: a result has thousands of rows, and C code builds, pickles and
    unpickles tuples (`from_columns`) at a tenth of the cost of frozen dataclasses.
    """

    kernel: int  # index into RunResult.kernels
    op: str  # op kind
    layer: str
    layer_kind: str  # breakdown category: conv, bn, relu, pool, concat, add, fc, loss, other
    phase: str
    tensor: str
    tensor_role: str
    dram_read_bytes: int
    dram_write_bytes: int


class KernelResult(NamedTuple):
    """One kernel's time, work and traffic (a named tuple, as TrafficRow).

    Two byte counts answer two questions: `dram_read_bytes` and `dram_write_bytes` are the bytes
    its ops caused (a dirty line written back later is charged to the op that wrote it), which
    is what the breakdowns add up; `dram_transferred_bytes` are the bytes the DRAM channels moved
    while it ran, whichever kernel caused them, which is what its achieved bandwidth and its
    place on a roofline are made of.
    """

    name: str
    phase: str
    ops: tuple[str, ...]
    layers: tuple[str, ...]
    layer_kind: str  # the breakdown category of its main op's layer
    start_cycle: int
    end_cycle: int
    flops: int
    compute_cycles: int  # sum over its tiles of the cores' compute time
    memory_cycles: int  # sum over its tiles of the cores' memory time
    dram_read_bytes: int  # charged to it as their source (write-backs: to the writer)
    dram_write_bytes: int
    dram_transferred_bytes: int  # what the channels moved during its span, whoever caused it
    num_tiles: int

    def cycles(self) -> int:
        """Wall-clock cycles from start to end (barrier included)."""
        return self.end_cycle - self.start_cycle

    def bound(self) -> str:
        """'compute' or 'memory': which of the two dominated its tiles."""
        return "compute" if self.compute_cycles >= self.memory_cycles else "memory"


class OpTime(NamedTuple):
    """The share of a kernel's span charged to one of its ops (a named tuple, as TrafficRow):
    the span split over the kernel's ops in proportion to what bounds the kernel (bnsim.sim.
    attribution), so a fused kernel's time goes to the ops its bytes and cycles go to."""

    kernel: int  # index into RunResult.kernels
    op: str  # op kind
    layer: str
    layer_kind: str
    phase: str
    compute_cycles: int  # the op's own work on one core
    cycles: int  # its share of the kernel's span (the shares add up to the span)


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheCounters(_PicklesAsValues):
    """One cache level, summed over its instances, in lines."""

    accesses: int
    hits: int
    misses: int
    writebacks: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTraffic(_PicklesAsValues):
    """What one DRAM channel did over the iteration. Bytes and times are the run's; the row and bus
    counts are what the DRAM timing model does per burst at each step's mix of reads and writes
    (bnsim.sim.dramrate), summed over the channel's bursts: expected counts, not a replay."""

    read_bytes: float
    write_bytes: float
    busy_seconds: float  # serving its traffic
    waited_seconds: float  # its traffic waiting behind earlier traffic, summed over steps
    row_hits: float
    row_misses: float
    row_conflicts: float
    turnarounds: float
    mean_queued: float  # requests in its queues while it was busy


_Row = TypeVar("_Row", TrafficRow, KernelResult, OpTime)


def from_columns(cls: type[_Row], columns: Mapping[str, Sequence[Any]]) -> list[_Row]:
    """Rows of `cls` from their values field by field: `columns` maps each field, in order, to
    its values, one per row (the rows `cls(**values)` makes, built by C code alone).

    Raises:
        ValueError: the columns are not the fields of `cls`, or differ in length.
    """
    if tuple(columns) != cls._fields:
        raise ValueError(f"{cls.__name__} has fields {cls._fields}, got columns {tuple(columns)}")
    try:
        return list(map(tuple.__new__, repeat(cls), zip(*columns.values(), strict=True)))
    except ValueError as error:  # zip's: "argument 2 is shorter than argument 1"
        lengths = {name: len(values) for name, values in columns.items()}
        raise ValueError(f"{cls.__name__}: columns of different lengths {lengths}") from error


def _named(cls: type[_Row], rows: Iterable[tuple[Any, ...]]) -> tuple[_Row, ...]:
    """`rows`, plain tuples of field values, as rows of `cls`."""
    return tuple(map(tuple.__new__, repeat(cls), rows))
