"""The DRAM model's reference: bnsim.sim.dram's rules as one plain Python loop over DRAM clocks.

Simple enough to check by hand (test_dram.py works it on DDR4-2666 timing); the compiled model
must give identical clocks and statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

from bnsim.config.dramdevice import Controller, DRAMDevice, Location, address_decoder
from bnsim.sim.dram import ChannelStats, DRAMOutcome, Request

DEFAULTS = Controller()
STAT_FIELDS = tuple(spec.name for spec in fields(ChannelStats))


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
    waiting: list[int] = field(default_factory=list)  # in front of full queues, oldest first
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
    # ChannelStats' counters, counted up
    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STAT_FIELDS, 0))


def simulate_requests(
    device: DRAMDevice,
    channels: int,
    mapping: Sequence[str],
    requests: Sequence[Request],
    controller: Controller = DEFAULTS,
    *,
    permute_banks: bool = False,
) -> DRAMOutcome:
    """bnsim.sim.dram.simulate_requests, clock by clock."""
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
    admitted = [-1] * len(requests)
    kind = [""] * len(requests)  # "hit", "miss" or "conflict", fixed by the first command
    programs: dict[int, list[int]] = {}  # per source, its requests in order
    for index, request in enumerate(requests):
        programs.setdefault(request.source, []).append(index)
    sources = [programs[source] for source in sorted(programs)]
    issued = [0] * len(sources)  # per source, how many of its requests are queued
    window = controller.window

    def ready(program: list[int], position: int) -> float:
        """The earliest clock the source's request at `position` may enter a queue."""
        at: float = requests[program[position]].arrival
        if window and position >= window:
            released = program[position - window]
            release = admitted[released] if requests[released].write else done[released]
            at = max(at, release + controller.loop_clocks if release >= 0 else float("inf"))
        return at

    def queue_of(channel: _Channel, index: int) -> list[int] | None:
        """The controller queue request `index` joins, None while it is full."""
        separate = requests[index].write and not controller.shared
        queue = channel.writes if separate else channel.reads
        depth = controller.write_queue if separate else controller.read_queue
        return queue if len(queue) < depth else None

    remaining = len(requests)
    clock = 0
    while remaining:
        for channel in state:  # the miss queue moves on, in order, as the queues take its head
            while channel.waiting and (queue := queue_of(channel, channel.waiting[0])) is not None:
                queue.append(channel.waiting.pop(0))
        for number, program in enumerate(sources):
            while issued[number] < len(program) and ready(program, issued[number]) <= clock:
                index = program[issued[number]]
                channel = state[where[index].channel]
                queue = None if channel.waiting else queue_of(channel, index)
                if queue is None:
                    if len(channel.waiting) >= controller.miss_queue:
                        break  # in order: the source's later requests wait behind this one
                    queue = channel.waiting
                queue.append(index)
                admitted[index] = clock
                issued[number] += 1
        for channel in state:
            remaining -= _step(
                device, channel, clock, requests, where, done, kind,
                controller.write_high, controller.write_low,
            )  # fmt: skip
        for channel in state:
            channel.stats["queued"] += len(channel.reads) + len(channel.writes)
        clock += 1
    stats = tuple(ChannelStats(**channel.stats) for channel in state)
    return DRAMOutcome(tuple(done), stats, max(done, default=0))


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
    """Issue at most one command on `channel` at `clock` (with split command buses, one row and
    one column command); return how many requests completed."""
    refreshed = _refresh(device, channel, clock)
    if refreshed and not device.split_commands:
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
    completed = _column_command(device, channel, clock, queue, requests, where, done, kind)
    if not refreshed and (device.split_commands or not completed):
        _row_command(device, channel, clock, queue, where, kind)
    return completed


def _column_command(
    device: DRAMDevice,
    channel: _Channel,
    clock: int,
    queue: list[int],
    requests: Sequence[Request],
    where: Sequence[Location],
    done: list[int],
    kind: list[str],
) -> int:
    """First ready: the oldest request whose column command can go now (none to a rank that owes
    a refresh, lest its rows never close)."""
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
            stats["row_hits"] += found == "hit"
            stats["row_misses"] += found == "miss"
            stats["row_conflicts"] += found == "conflict"
            done[index] = _column(device, channel, bank, spot, clock, write)
            del queue[position]
            return 1
    return 0


def _row_command(
    device: DRAMDevice,
    channel: _Channel,
    clock: int,
    queue: list[int],
    where: Sequence[Location],
    kind: list[str],
) -> None:
    """The oldest request whose ACT or PRE can go now; a PRE never closes a row that a request of
    the queue being served still hits."""
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
                return
        elif (
            bank.open_row != spot.row
            and (number, bank.open_row) not in open_rows
            and clock >= bank.pre_ready
        ):
            kind[index] = kind[index] or "conflict"
            bank.open_row = None
            bank.act_ready = max(bank.act_ready, clock + device.trp)
            return


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
        channel.stats["refreshes"] += 1
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
        stats["turnarounds"] += 1
    channel.bus_free, channel.bus_write, channel.bus_rank = end, write, spot.rank
    channel.column_ready_s = clock + device.tccd_s
    channel.column_ready_l[group] = clock + device.tccd_l
    if write:
        bank.pre_ready = max(bank.pre_ready, end + device.twr)
        ready = channel.read_ready_s.get(spot.rank, 0)
        channel.read_ready_s[spot.rank] = max(ready, end + device.twtr_s)
        channel.read_ready_l[group] = max(channel.read_ready_l.get(group, 0), end + device.twtr_l)
        stats["writes"] += 1
    else:
        bank.pre_ready = max(bank.pre_ready, clock + device.trtp)
        stats["reads"] += 1
    stats["busy_clocks"] += device.burst_clocks
    return end
