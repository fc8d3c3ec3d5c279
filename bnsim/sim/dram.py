"""DRAM timed by its datasheet, in DRAM clocks: requests in, completion clocks and statistics out.

A channel holds ranks of bank groups of banks, each bank one open row at most (open-page policy).
Requests wait in a read queue and a write queue; each DRAM clock the channel's controller issues at
most one command (the command bus), chosen first-ready, first-come-first-served (FR-FCFS): the
oldest request whose column command (RD, WR) can go now, else the oldest whose activate (ACT) or
precharge (PRE) can; a PRE never closes a row that a queued request of the same direction still
hits. Writes are drained in bursts: from the moment the write queue reaches its high watermark (or
no read waits) until it falls to its low one. Every command waits for the device's timing
constraints (tRCD, tRP, tRAS, tRRD_S/L, tFAW, tCCD_S/L, tWTR_S/L, tWR, tRTP), column commands also
for the shared data bus, which a burst holds for BL/2 clocks and which turns around between reads
and writes (tWTR within a rank); the ranks are refreshed in turn, each every tREFI for tRFC, its
banks precharged first and no column command sent to it while it owes one.

Requests come from sources (a core's miss-status holding registers): a source's requests enter the
queues in order, each no earlier than its arrival clock, and with a window of W, no earlier than
`loop_clocks` after the request W before it was released (a read when its data arrived, a write
when the controller took it). The compiled model (bnsim/sim/_dram.pyx) is the implementation;
tests/unit/dram_reference.py is the same rules as one plain Python loop over clocks, and the tests
check that both give identical clocks and statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bnsim.config.dramdevice import Controller, DRAMDevice, locate
from bnsim.sim import _dram

DEFAULTS = Controller()


@dataclass(frozen=True, slots=True)
class Request:
    """One burst asked of the DRAM, by `source`, at DRAM clock `arrival` at the earliest."""

    arrival: int
    address: int
    write: bool
    source: int = 0


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """What one channel did."""

    reads: int = 0
    writes: int = 0
    row_hits: int = 0  # the row was open
    row_misses: int = 0  # the bank was closed
    row_conflicts: int = 0  # another row was open
    turnarounds: int = 0  # the data bus changed direction
    refreshes: int = 0
    busy_clocks: int = 0  # clocks the data bus moved data
    queued: int = 0  # requests waiting, summed over clocks (mean occupancy: / clocks)


@dataclass(frozen=True, slots=True)
class DRAMOutcome:
    """Per request, the clock its burst completed (reads: last data beat; writes: data written);
    per channel, its statistics; and the clock the last burst completed."""

    done: tuple[int, ...]
    channels: tuple[ChannelStats, ...]
    clocks: int


def simulate_requests(
    device: DRAMDevice,
    channels: int,
    mapping: Sequence[str],
    requests: Sequence[Request],
    controller: Controller = DEFAULTS,
    *,
    permute_banks: bool = False,
) -> DRAMOutcome:
    """Serve `requests`, given in each source's program order and, across sources, in the order
    the queues see them when they arrive at the same clock."""
    arrival = np.array([request.arrival for request in requests], dtype=np.int64)
    address = np.array([request.address for request in requests], dtype=np.int64)
    write = np.array([request.write for request in requests], dtype=np.int8)
    source = np.array([request.source for request in requests], dtype=np.int64)
    return simulate_arrays(
        device, channels, mapping, arrival, address, write, source, controller,
        permute_banks=permute_banks,
    )  # fmt: skip


def simulate_arrays(
    device: DRAMDevice,
    channels: int,
    mapping: Sequence[str],
    arrival: np.ndarray,
    address: np.ndarray,
    write: np.ndarray,
    source: np.ndarray,
    controller: Controller = DEFAULTS,
    *,
    permute_banks: bool = False,
) -> DRAMOutcome:
    """`simulate_requests` on arrays, one entry per request."""
    if len(arrival) and (np.min(arrival) < 0 or np.min(source) < 0):
        raise ValueError("requests: arrival clocks and sources must be at least 0")
    where = locate(device, channels, mapping, address, permute_banks=permute_banks)
    done, stats = _dram.serve(
        device, channels, controller,
        np.ascontiguousarray(arrival, dtype=np.int64),
        np.ascontiguousarray(source, dtype=np.int64),
        where.channel, where.rank, where.bankgroup, where.bank, where.row,  # int64, contiguous
        np.ascontiguousarray(write, dtype=np.int8),
    )  # fmt: skip
    return DRAMOutcome(
        tuple(done),
        tuple(ChannelStats(*values) for values in stats),
        max(done, default=0),
    )
