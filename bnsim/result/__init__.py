"""Results of simulated runs: frozen values, breakdowns that add up to the totals, JSON round trip.

A RunResult holds one scheme's totals, one row of attributed traffic per (kernel, op, tensor)
source, one row per kernel, and cache, core and channel counters. Breakdowns (by phase and layer
kind, by tensor role, ...) are sums over the traffic rows, so they always add up to the totals.
`to_dict` writes the document of docs/results.md. A Timeline holds what happened when (filled by
the simulator on request; bnsim.report.timeline exports it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from operator import attrgetter
from typing import Any

from bnsim.result.rows import (
    CacheCounters,
    ChannelTraffic,
    KernelResult,
    OpTime,
    TrafficRow,
    _named,
    _PicklesAsValues,
    _rebuild,
    _values_of,
    from_columns,
)

__all__ = [
    "SCHEMA",
    "CacheCounters",
    "ChannelTraffic",
    "KernelResult",
    "OpTime",
    "RunResult",
    "TrafficRow",
    "from_columns",
    "result_document",
    "runs_from_document",
    "total",
]

SCHEMA = "bnsim.result/2"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult(_PicklesAsValues):
    """One scheme simulated on one machine for one training iteration."""

    scheme: str
    fidelity: str
    cycles: int
    seconds: float
    flops: int
    dram_read_bytes: int
    dram_write_bytes: int
    kernels: tuple[KernelResult, ...]
    traffic: tuple[TrafficRow, ...]
    caches: tuple[tuple[str, CacheCounters], ...]  # (level name, counters), sorted by name
    core_busy_cycles: tuple[int, ...]
    channel_bytes: tuple[int, ...]
    num_events: int
    op_times: tuple[OpTime, ...]
    dram_channels: tuple[ChannelTraffic, ...] = ()  # fast and line fidelity

    def __reduce__(self) -> tuple[Any, ...]:
        # rows as plain tuples: pickle then handles thousands of them without a call per row
        values = tuple(
            tuple(map(tuple, value)) if name in _ROW_FIELDS else value
            for name, value in zip(self.__slots__, _values_of(RunResult)(self), strict=True)
        )
        return (_rebuild_run, (values,))

    def __repr__(self) -> str:
        """The totals and how many rows lie behind them: the rows of a whole network run to
        hundreds of kilobytes of text (`kernels`, `traffic` and `breakdown()` give them)."""
        return (
            f"RunResult(scheme={self.scheme!r}, fidelity={self.fidelity!r}, "
            f"seconds={self.seconds:.6g}, cycles={self.cycles}, flops={self.flops}, "
            f"dram_read_bytes={self.dram_read_bytes}, dram_write_bytes={self.dram_write_bytes}, "
            f"kernels=<{len(self.kernels)} rows>, traffic=<{len(self.traffic)} rows>)"
        )

    def dram_bytes(self) -> int:
        """Read plus write bytes."""
        return self.dram_read_bytes + self.dram_write_bytes

    def breakdown(self, *keys: str) -> list[dict[str, Any]]:
        """Traffic and time summed by TrafficRow fields (e.g. "phase", "layer_kind").

        One rule for both: bytes and time go to ops. Bytes go to the op that caused them, time
        to the ops of each kernel as OpTime rows split it. Time has no tensor: with "tensor" or
        "tensor_role" among the keys, cycles are None.
        """
        key_of = _key_getter(keys)
        reads: dict[tuple[Any, ...], int] = defaultdict(int)
        writes: dict[tuple[Any, ...], int] = defaultdict(int)
        cycles: dict[tuple[Any, ...], int] = defaultdict(int)
        for row in self.traffic:
            key = key_of(row)
            reads[key] += row.dram_read_bytes
            writes[key] += row.dram_write_bytes
        timed = set(keys) <= set(OpTime._fields)
        if timed:
            for share in self.op_times:
                cycles[key_of(share)] += share.cycles
        # every key with traffic or time, ordered by the text of its parts
        found = sorted({**reads, **cycles}, key=lambda key: tuple(str(part) for part in key))
        return [
            {
                **dict(zip(keys, key, strict=True)),
                "cycles": cycles.get(key, 0) if timed else None,
                "dram_read_bytes": reads.get(key, 0),
                "dram_write_bytes": writes.get(key, 0),
            }
            for key in found
        ]

    def to_dict(self, *, details: bool = True) -> dict[str, Any]:
        """The run's entry of the result document (docs/results.md), plus detail rows: one per
        kernel and one per traffic source (`details=False` leaves those two lists out)."""
        document: dict[str, Any] = {
            "scheme": self.scheme,
            "fidelity": self.fidelity,
            "cycles": self.cycles,
            "seconds": self.seconds,
            "flops": self.flops,
            "dram_read_bytes": self.dram_read_bytes,
            "dram_write_bytes": self.dram_write_bytes,
            "breakdown": self.breakdown("phase", "layer_kind"),
        }
        if details:
            document["kernels"] = [
                {
                    **kernel._asdict(),
                    "ops": list(kernel.ops),
                    "layers": list(kernel.layers),
                    "cycles": kernel.cycles(),
                    "bound": kernel.bound(),
                    "dram_bytes_per_second": self.kernel_dram_bandwidth(kernel),
                }
                for kernel in self.kernels
            ]
            document["traffic"] = [row._asdict() for row in self.traffic]
            document["op_times"] = [row._asdict() for row in self.op_times]
        document["caches"] = {name: asdict(counters) for name, counters in self.caches}
        document["cores"] = {"busy_cycles": list(self.core_busy_cycles)}
        document["dram_channels"] = {
            "bytes": list(self.channel_bytes),
            "channels": [asdict(channel) for channel in self.dram_channels],
        }
        document["num_events"] = self.num_events
        return document

    def to_dataframe(self, table: str = "kernels") -> Any:
        """One of the run's tables as a pandas DataFrame (needs pandas): `kernels` (a row per
        kernel), `traffic` (per source), `op_times` (per op), `breakdown` (by phase and layer
        kind) or `summary` (the totals), each row with its scheme and fidelity; columns as in the
        result document.

        Raises:
            ValueError: an unknown table.
        """
        import pandas as pd  # noqa: PLC0415 (optional: pip install 'bnsim[notebook]')

        if table not in ("kernels", "traffic", "op_times", "breakdown", "summary"):
            raise ValueError(
                f"no table {table!r}: kernels, traffic, op_times, breakdown or summary"
            )
        document = self.to_dict(details=table in _ROW_FIELDS)
        totals = ("cycles", "seconds", "flops", "dram_read_bytes", "dram_write_bytes")
        rows = [{key: document[key] for key in totals}] if table == "summary" else document[table]
        frame = pd.DataFrame(rows)
        frame.insert(0, "fidelity", self.fidelity)
        frame.insert(0, "scheme", self.scheme)
        return frame

    def kernel_dram_bandwidth(self, kernel: KernelResult) -> float:
        """Bytes per second the DRAM channels moved during the kernel's span (0 for an instant)."""
        if not kernel.cycles() or not self.cycles:
            return 0.0
        clock_hz = self.cycles / self.seconds
        return kernel.dram_transferred_bytes * clock_hz / kernel.cycles()

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RunResult:
        """Rebuild from `to_dict` output (derived keys are ignored)."""
        return cls(
            scheme=document["scheme"],
            fidelity=document["fidelity"],
            cycles=document["cycles"],
            seconds=document["seconds"],
            flops=document["flops"],
            dram_read_bytes=document["dram_read_bytes"],
            dram_write_bytes=document["dram_write_bytes"],
            kernels=tuple(_kernel_from_dict(kernel) for kernel in document["kernels"]),
            traffic=tuple(TrafficRow(**row) for row in document["traffic"]),
            op_times=tuple(OpTime(**row) for row in document["op_times"]),
            caches=tuple(
                sorted((name, CacheCounters(**c)) for name, c in document["caches"].items())
            ),
            core_busy_cycles=tuple(document["cores"]["busy_cycles"]),
            channel_bytes=tuple(document["dram_channels"]["bytes"]),
            dram_channels=tuple(
                ChannelTraffic(**channel)
                for channel in document["dram_channels"].get("channels", ())
            ),
            num_events=document["num_events"],
        )


def _key_getter(keys: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from a row to the tuple of its fields `keys` (attrgetter, always a tuple)."""
    if len(keys) == 1:
        one = attrgetter(keys[0])
        return lambda row: (one(row),)
    if not keys:
        return lambda row: ()
    return attrgetter(*keys)


def _rebuild_run(values: tuple[Any, ...]) -> RunResult:
    run: RunResult = _rebuild(RunResult, values)
    for name, row_type in _ROW_FIELDS.items():
        object.__setattr__(run, name, _named(row_type, getattr(run, name)))
    return run


# the fields of a RunResult that hold rows, and the rows' type
_ROW_FIELDS: dict[str, type[Any]] = {
    "kernels": KernelResult,
    "traffic": TrafficRow,
    "op_times": OpTime,
}


def _kernel_from_dict(document: dict[str, Any]) -> KernelResult:
    known = set(KernelResult._fields)
    values: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in document.items()
        if key in known
    }
    return KernelResult(**values)


def result_document(
    hardware: dict[str, Any], workload: dict[str, Any], runs: Sequence[RunResult], version: str
) -> dict[str, Any]:
    """The whole `bnsim run --json` document: machine, workload, runs, speedups vs baseline.

    Speedups compare runs of one fidelity with that fidelity's baseline run. They are keyed by
    scheme when every run has the same fidelity, else by "scheme@fidelity" (`bnsim crosscheck`).
    """
    fidelities = list(dict.fromkeys(run.fidelity for run in runs))
    speedups = {}
    for fidelity in fidelities:
        same = [run for run in runs if run.fidelity == fidelity]
        baseline = next((run for run in same if run.scheme.split(":")[0] == "baseline"), None)
        if baseline is None:
            continue
        for run in same:
            if run.cycles > 0:
                key = run.scheme if len(fidelities) == 1 else f"{run.scheme}@{fidelity}"
                speedups[key] = baseline.cycles / run.cycles
    return {
        "schema": SCHEMA,
        "bnsim_version": version,
        "hardware": hardware,
        "workload": workload,
        "runs": [run.to_dict() for run in runs],
        "speedup_vs_baseline": speedups,
    }


def runs_from_document(document: dict[str, Any]) -> list[RunResult]:
    """The runs of a result document.

    Raises:
        ValueError: not a bnsim result document of a known schema.
    """
    if document.get("schema") != SCHEMA:
        raise ValueError(f"not a {SCHEMA} document (schema: {document.get('schema')!r})")
    return [RunResult.from_dict(run) for run in document["runs"]]


def total(rows: Iterable[dict[str, Any]], key: str) -> int:
    """Sum of one column of breakdown rows."""
    return sum(row[key] for row in rows)
