"""What a DRAM channel sustains under load, by the share of writes, as the timing model has it.

Runs of a network move tens of gigabytes, too many bursts to time one by one; they time each step's
traffic at the rate its channel sustains for that mix of reads and writes, and bound each core by
its own requests in flight separately (bnsim.sim.mlp, Little's law in the engine). The rates come
from the DRAM timing model itself (bnsim.sim.dram) on the machine's own devices, mapping and
controllers: every core streams through memory, reading one array and writing another in the given
ratio, offering a quarter more than the channels' peak so that their queues stay full. The rate is
the steady state: bursts completed between a tenth and nine tenths of the run, over the time
between. Nothing here is measured on a real machine or chosen to match one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from bnsim.config.dram import DRAMConfig
from bnsim.config.machine import Machine
from bnsim.result import ChannelTraffic
from bnsim.sim.dram import simulate_arrays

WRITE_SHARES = (0.0, 0.25, 0.5, 0.75, 1.0)  # of the bursts; rates in between are interpolated
BURSTS_PER_CHANNEL = 8000  # per write share: within 5 % of longer runs (test_dramrate.py)
OVERLOAD = 1.25  # offered load over the channels' peak
# channels are alike: a machine with more is worked out on this many, with its cores in proportion
MAX_CHANNELS = 64
SEED = 0  # of where the streams start
SPACE_BYTES = 64 << 30  # where they may start


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """What one channel does under load at each of WRITE_SHARES: its rate, and per burst its row
    hits, misses (bank closed) and conflicts (another row open), bus turnarounds, and the requests
    waiting in its queues on average."""

    rates: tuple[float, ...]  # bytes per second
    row_hits: tuple[float, ...]
    row_misses: tuple[float, ...]
    row_conflicts: tuple[float, ...]
    turnarounds: tuple[float, ...]
    queued: tuple[float, ...]


def channel_rates(machine: Machine) -> tuple[float, ...]:
    """Bytes per second one channel sustains at each of WRITE_SHARES."""
    return channel_profile(machine).rates


def channel_profile(machine: Machine) -> ChannelProfile:
    """The rates and the per-burst statistics of one channel at each of WRITE_SHARES."""
    channels = min(machine.dram.channels, MAX_CHANNELS)
    cores = max(1, machine.cores.count * channels // machine.dram.channels)
    dram = machine.dram.model_copy(update={"channels": channels})
    return _profile(dram, cores, machine.llc.block_bytes)


def sustained_bandwidth(machine: Machine, write_share: float = 0.0) -> float:
    """Bytes per second all channels sustain for this share of writes (default: reads only)."""
    rate = float(np.interp(write_share, WRITE_SHARES, channel_rates(machine)))
    return machine.dram.channels * rate


def best_sustained_bandwidth(machine: Machine) -> float:
    """Bytes per second all channels sustain at their best mix of reads and writes: the most any
    span of a simulation can move (a roofline's DRAM roof)."""
    return machine.dram.channels * max(channel_rates(machine))


@cache
def _profile(dram: DRAMConfig, cores: int, line: int) -> ChannelProfile:
    device = dram.dram_device()
    bursts_per_line = -(-line // device.burst_bytes)
    lines_per_core = -(-BURSTS_PER_CHANNEL * dram.channels // (cores * bursts_per_line))
    controller = dram.controller_settings()
    # a core's k-th burst arrives at k × (clocks per burst of the whole machine's offered load)
    spacing = cores * device.burst_clocks / (OVERLOAD * dram.channels)
    arrival = np.tile(
        (np.arange(lines_per_core * bursts_per_line) * spacing).astype(np.int64), cores
    )
    # each core's read stream and write stream start at their own line of a large address space,
    # drawn with a fixed seed: where concurrent streams fall relative to each other's banks and
    # rows sets how often they close each other's rows, and tensors lie wherever they lie
    starts = np.random.default_rng(SEED).integers(0, SPACE_BYTES // line, size=(2, cores))
    columns: list[list[float]] = [[] for _ in range(6)]
    for share in WRITE_SHARES:
        # line j of a core is a write if the writes so far fall behind the share (an even mix)
        line_index = np.arange(lines_per_core, dtype=np.int64)
        writes = np.floor((line_index + 1) * share) > np.floor(line_index * share)
        nth = np.where(writes, np.cumsum(writes) - 1, np.cumsum(~writes) - 1)  # within its stream
        core = np.repeat(np.arange(cores, dtype=np.int64), lines_per_core * bursts_per_line)
        write = np.tile(np.repeat(writes, bursts_per_line), cores)
        line_of = starts[write.astype(np.int64), core] + np.tile(
            np.repeat(nth, bursts_per_line), cores
        )
        burst = np.tile(np.arange(bursts_per_line, dtype=np.int64), lines_per_core * cores)
        address = line_of * line + burst * device.burst_bytes
        outcome = simulate_arrays(
            device, dram.channels, dram.mapping, arrival, address,
            write.astype(np.int8), core, controller, permute_banks=dram.bank_hash,
        )  # fmt: skip
        done = np.sort(np.array(outcome.done, dtype=np.int64))
        first, last = len(done) // 10, len(done) * 9 // 10
        clocks = max(1, int(done[last] - done[first]))
        bursts = len(done)
        stats = outcome.channels
        columns[0].append(
            (last - first) * device.burst_bytes / (clocks * device.tck_s) / dram.channels
        )
        columns[1].append(sum(c.row_hits for c in stats) / bursts)
        columns[2].append(sum(c.row_misses for c in stats) / bursts)
        columns[3].append(sum(c.row_conflicts for c in stats) / bursts)
        columns[4].append(sum(c.turnarounds for c in stats) / bursts)
        columns[5].append(sum(c.queued for c in stats) / max(1, outcome.clocks) / dram.channels)
    return ChannelProfile(*(tuple(column) for column in columns))


def channel_traffic(
    machine: Machine, statistics: list[tuple[float, ...]]
) -> tuple[ChannelTraffic, ...]:
    """The run's per-channel record (bnsim.sim._memory.MemorySystem.channel_statistics) with the
    row and bus counts the timing model has per burst at the mixes the channel served."""
    profile = channel_profile(machine)
    burst_bytes = machine.dram.dram_device().burst_bytes
    clock_hz = machine.cores.clock_hz
    found = []
    for reads, writes, busy, waited, *by_share in statistics:
        bursts = [amount / burst_bytes for amount in by_share]
        total = sum(bursts)

        def expected(per_burst: tuple[float, ...], bursts: list[float] = bursts) -> float:
            return sum(count * rate for count, rate in zip(bursts, per_burst, strict=True))

        found.append(
            ChannelTraffic(
                read_bytes=reads,
                write_bytes=writes,
                busy_seconds=busy / clock_hz,
                waited_seconds=waited / clock_hz,
                row_hits=expected(profile.row_hits),
                row_misses=expected(profile.row_misses),
                row_conflicts=expected(profile.row_conflicts),
                turnarounds=expected(profile.turnarounds),
                mean_queued=expected(profile.queued) / total if total else 0.0,
            )
        )
    return tuple(found)
