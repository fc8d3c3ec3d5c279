"""DRAM timed as its datasheet times it: the per-request reference model, in DRAM clock cycles.

A channel holds ranks of bank groups of banks, each bank one open row at most (open-page policy).
Requests wait in a read queue and a write queue; each DRAM clock the channel's controller issues at
most one command (the command bus), chosen first-ready, first-come-first-served (FR-FCFS): the
oldest request whose column command (RD, WR) can go now, else the oldest whose activate (ACT) or
precharge (PRE) can. Writes are drained in bursts: from the moment the write queue reaches its high
watermark (or no read waits) until it falls to its low one. Every command waits for the device's
timing constraints (tRCD, tRP, tRAS, tRRD_S/L, tFAW, tCCD_S/L, tWTR_S/L, tWR, tRTP), column
commands also for the shared data bus, which a burst holds for BL/2 clocks and which turns around
between reads and writes (tWTR within a rank); the ranks are refreshed in turn, each every tREFI
for tRFC, its banks precharged first and no column command sent to it while it owes one.

This is the plain reference: one Python loop over DRAM clocks, simple enough to check by hand
(tests/unit/test_dram.py, which cites the DDR4-2666 datasheet values it uses). A faster path must
give identical cycles and statistics. Imports bnsim.sim.dramdevice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bnsim.sim.dramdevice import DRAMDevice, Location, address_decoder


@dataclass(frozen=True, slots=True)
class Request:
    """One burst asked of the DRAM at DRAM clock `arrival`."""

    arrival: int
    address: int
    write: bool


@dataclass
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


@dataclass
class _Bank:
    open_row: int | None = None
    act_ready: int = 0  # earliest ACT
    column_ready: int = 0  # earliest RD/WR to the open row
    pre_ready: int = 0  # earliest PRE


@dataclass
class _Channel:
    banks: list[_Bank]
    reads: list[int] = field(default_factory=list)  # request indices, oldest first
    writes: list[int] = field(default_factory=list)
    draining: bool = False
    activates: list[list[int]] = field(default_factory=list)  # per rank, its ACT clocks
    last_act_group: list[int] = field(default_factory=list)  # per rank: bank group of last ACT
    column_ready_s: int = 0  # earliest column command, other bank group
    column_ready_l: dict[int, int] = field(default_factory=dict)  # per (rank, group) key
    # tWTR holds within a rank: per (rank, group) key and per rank, the earliest RD after writes
    read_ready_l: dict[int, int] = field(default_factory=dict)
    read_ready_s: dict[int, int] = field(default_factory=dict)
    bus_free: int = 0  # first clock the data bus is free
    bus_write: bool = False  # direction of the last burst
    bus_rank: int = 0
    refresh_due: list[int] = field(default_factory=list)  # per rank (-1: never)
    stats: ChannelStats = field(default_factory=ChannelStats)


def simulate_requests(
    device: DRAMDevice,
    channels: int,
    mapping: Sequence[str],
    requests: Sequence[Request],
    *,
    queue_depth: int = 32,
    write_high: int = 24,
    write_low: int = 8,
    permute_banks: bool = False,
) -> DRAMOutcome:
    """Serve `requests` (in arrival order) clock by clock; each channel's read and write queues
    hold `queue_depth` requests each (later arrivals wait in order)."""
    decode = address_decoder(device, channels, mapping, permute_banks=permute_banks)
    where = [decode(request.address) for request in requests]
    banks_per_rank = device.bank_groups * device.banks_per_group
    state = [
        _Channel(
            banks=[_Bank() for _ in range(device.ranks * banks_per_rank)],
            activates=[[] for _ in range(device.ranks)],
            last_act_group=[-1] * device.ranks,
            # ranks take turns, one refresh every tREFI / ranks (staggered)
            refresh_due=[
                device.trefi * (rank + 1) // device.ranks if device.trefi else -1
                for rank in range(device.ranks)
            ],
        )
        for _ in range(channels)
    ]
    done = [-1] * len(requests)
    kind = [""] * len(requests)  # "hit", "miss" or "conflict", fixed by the first command
    waiting = list(range(len(requests)))  # not yet in a queue, arrival order
    waiting.reverse()
    remaining = len(requests)
    clock = 0
    while remaining:
        while waiting and requests[waiting[-1]].arrival <= clock:
            index = waiting[-1]
            channel = state[where[index].channel]
            queue = channel.writes if requests[index].write else channel.reads
            if len(queue) >= queue_depth:
                break  # in order: later requests wait behind this one
            queue.append(waiting.pop())
        for channel in state:
            remaining -= _step(
                device, channel, clock, requests, where, done, kind, write_high, write_low
            )
        for channel in state:
            channel.stats.queued += len(channel.reads) + len(channel.writes)
        clock += 1
    return DRAMOutcome(tuple(done), tuple(channel.stats for channel in state), max(done, default=0))


def _bank(device: DRAMDevice, spot: Location) -> int:
    return (spot.rank * device.bank_groups + spot.bankgroup) * device.banks_per_group + spot.bank


def _step(
    device: DRAMDevice,
    channel: _Channel,
    clock: int,
    requests: Sequence[Request],
    where: Sequence[Location],
    done: list[int],
    kind: list[str],
    write_high: int,
    write_low: int,
) -> int:
    """Issue at most one command on `channel` at `clock`; return how many requests completed."""
    if _refresh(device, channel, clock):
        return 0
    if channel.draining:
        channel.draining = bool(channel.writes) and (
            len(channel.writes) > write_low or not channel.reads
        )
    else:
        channel.draining = len(channel.writes) >= write_high or (
            bool(channel.writes) and not channel.reads
        )
    queue = channel.writes if channel.draining else channel.reads
    # first ready: the oldest request whose column command can go now (none to a rank that owes
    # a refresh, lest its rows never close)
    for position, index in enumerate(queue):
        spot = where[index]
        bank = channel.banks[_bank(device, spot)]
        write = requests[index].write
        if (
            bank.open_row == spot.row
            and _column_at(device, channel, bank, spot, write) <= clock
            and not _refresh_due(channel, spot.rank, clock)
        ):
            found = kind[index] or "hit"
            stats = channel.stats
            stats.row_hits += found == "hit"
            stats.row_misses += found == "miss"
            stats.row_conflicts += found == "conflict"
            done[index] = _column(device, channel, bank, spot, clock, write)
            del queue[position]
            return 1
    # then the oldest request whose ACT or PRE can go now; a PRE never closes a row that a
    # queued request of this direction still hits
    open_rows = {(_bank(device, where[index]), where[index].row) for index in queue}
    for index in queue:
        spot = where[index]
        number = _bank(device, spot)
        bank = channel.banks[number]
        if bank.open_row is None:
            if _activate_at(device, channel, bank, spot) <= clock and not _refresh_due(
                channel, spot.rank, clock
            ):
                kind[index] = kind[index] or "miss"
                _activate(device, channel, bank, spot, clock)
                return 0
        elif (
            bank.open_row != spot.row
            and (number, bank.open_row) not in open_rows
            and clock >= bank.pre_ready
        ):
            kind[index] = kind[index] or "conflict"
            bank.open_row = None
            bank.act_ready = max(bank.act_ready, clock + device.trp)
            return 0
    return 0


def _refresh_due(channel: _Channel, rank: int, clock: int) -> bool:
    """Whether `rank` owes a refresh at `clock` (no row may open until it is done)."""
    due = channel.refresh_due[rank]
    return 0 <= due <= clock


def _refresh(device: DRAMDevice, channel: _Channel, clock: int) -> bool:
    """Refresh a rank that is due once all its banks may precharge; True while this clock's
    command slot goes to refresh."""
    if not device.trefi:
        return False
    per_rank = device.bank_groups * device.banks_per_group
    for rank, due in enumerate(channel.refresh_due):
        if clock < due:
            continue
        banks = channel.banks[rank * per_rank : (rank + 1) * per_rank]
        if any(clock < bank.pre_ready for bank in banks if bank.open_row is not None):
            return False  # the rank's open rows may not close yet: wait (no new ACT meanwhile)
        # precharge all, then refresh: the rank's banks open again after tRP + tRFC
        start = clock + (device.trp if any(bank.open_row is not None for bank in banks) else 0)
        for bank in banks:
            bank.open_row = None
            bank.act_ready = max(bank.act_ready, start + device.trfc)
        channel.refresh_due[rank] = due + device.trefi
        channel.stats.refreshes += 1
        return True
    return False


def _activate_at(device: DRAMDevice, channel: _Channel, bank: _Bank, spot: Location) -> int:
    """The earliest clock an ACT to `spot`'s bank may issue, as far as the state now tells."""
    at = bank.act_ready  # after a PRE, or a refresh of its rank
    recent = channel.activates[spot.rank]
    if recent:
        same = channel.last_act_group[spot.rank] == spot.bankgroup
        at = max(at, recent[-1] + (device.trrd_l if same else device.trrd_s))
        if len(recent) >= 4:
            at = max(at, recent[-4] + device.tfaw)
    return at


def _activate(
    device: DRAMDevice, channel: _Channel, bank: _Bank, spot: Location, clock: int
) -> None:
    bank.open_row = spot.row
    bank.column_ready = clock + device.trcd
    bank.pre_ready = max(bank.pre_ready, clock + device.tras)
    recent = channel.activates[spot.rank]
    recent.append(clock)
    del recent[:-4]
    channel.last_act_group[spot.rank] = spot.bankgroup


def _column_at(
    device: DRAMDevice, channel: _Channel, bank: _Bank, spot: Location, write: bool
) -> int:
    """The earliest clock a RD or WR to `spot`'s open row may issue, as far as the state now
    tells (the data bus included)."""
    group = spot.rank * device.bank_groups + spot.bankgroup
    at = max(bank.column_ready, channel.column_ready_s, channel.column_ready_l.get(group, 0))
    if not write:
        at = max(at, channel.read_ready_s.get(spot.rank, 0), channel.read_ready_l.get(group, 0))
    switch = write != channel.bus_write or spot.rank != channel.bus_rank
    bus = channel.bus_free + (device.turnaround if switch else 0)
    return max(at, bus - (device.cwl if write else device.cl))


def _column(
    device: DRAMDevice, channel: _Channel, bank: _Bank, spot: Location, clock: int, write: bool
) -> int:
    """Issue RD or WR; return the clock its data burst ends."""
    group = spot.rank * device.bank_groups + spot.bankgroup
    start = clock + (device.cwl if write else device.cl)
    end = start + device.burst_clocks
    stats = channel.stats
    if channel.bus_free and write != channel.bus_write:
        stats.turnarounds += 1
    channel.bus_free, channel.bus_write, channel.bus_rank = end, write, spot.rank
    channel.column_ready_s = clock + device.tccd_s
    channel.column_ready_l[group] = clock + device.tccd_l
    if write:
        bank.pre_ready = max(bank.pre_ready, end + device.twr)
        ready = channel.read_ready_s.get(spot.rank, 0)
        channel.read_ready_s[spot.rank] = max(ready, end + device.twtr_s)
        channel.read_ready_l[group] = max(channel.read_ready_l.get(group, 0), end + device.twtr_l)
        stats.writes += 1
    else:
        bank.pre_ready = max(bank.pre_ready, clock + device.trtp)
        stats.reads += 1
    stats.busy_clocks += device.burst_clocks
    return end
