"""`bnsim membench`'s report: STREAM's table of rates and what the DRAM did, as text and as data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bnsim import units
from bnsim.report.tables import text_table
from bnsim.sim.membench import ELEMENT_BYTES, MembenchResult


def describe_membench(
    machine_name: str, peak_bytes_per_second: float, results: Sequence[MembenchResult]
) -> str:
    """STREAM's table (best rate per kernel, here the only one: the simulation is deterministic),
    with what the DRAM did."""
    first = results[0]
    lines = [
        f"bnsim membench: {machine_name}, {first.cores} cores, arrays of "
        f"{units.bytes_text(first.array_bytes)} ({ELEMENT_BYTES}-byte elements), non-temporal "
        f"stores; DRAM peak {units.bandwidth_text(peak_bytes_per_second)}",
        "",
    ]
    header = [
        "kernel",
        "rate (GB/s)",
        "of peak",
        "DRAM read (MB)",
        "DRAM written (MB)",
        "row hits",
        "bus busy",
        "turnarounds",
        "time (ms)",
    ]
    rows = [
        [
            result.kernel,
            f"{result.bytes_per_second / 1e9:.1f}",
            f"{result.bytes_per_second / peak_bytes_per_second:.1%}",
            f"{result.dram_read_bytes / 1e6:.1f}",
            f"{result.dram_write_bytes / 1e6:.1f}",
            f"{result.row_hit_rate:.1%}",
            f"{result.bus_utilisation:.1%}",
            sum(stats.turnarounds for stats in result.channels),
            f"{result.seconds * 1e3:.3f}",
        ]
        for result in results
    ]
    lines.append(text_table(header, rows))
    lines.append("")
    lines.append(
        "rate: STREAM's bytes (each array element read or written once) over the kernel's time; "
        "row hits: of all bursts; bus busy: of all channel clocks"
    )
    return "\n".join(lines)


def membench_document(machine_name: str, results: Sequence[MembenchResult]) -> dict[str, Any]:
    """The results as JSON-ready data, every quantity's unit in its key."""
    return {
        "machine": machine_name,
        "kernels": [
            {
                "kernel": result.kernel,
                "cores": result.cores,
                "array_bytes": result.array_bytes,
                "stream_bytes": result.stream_bytes,
                "seconds": result.seconds,
                "bytes_per_second": result.bytes_per_second,
                "dram_read_bytes": result.dram_read_bytes,
                "dram_write_bytes": result.dram_write_bytes,
                "dram_clocks": result.clocks,
                "row_hit_rate": result.row_hit_rate,
                "bus_utilisation": result.bus_utilisation,
                "channels": [
                    {**asdict(stats), "mean_queued": stats.queued / max(1, result.clocks)}
                    for stats in result.channels
                ],
            }
            for result in results
        ],
    }
