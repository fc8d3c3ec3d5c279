"""What a channel sustains by its mix of reads and writes, as the DRAM timing model works it out,
and how runs use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnsim.config.machine import Machine, load_machine
from bnsim.graph.zoo import build_model
from bnsim.schemes import build_schedule
from bnsim.sim import dramrate, simulate
from bnsim.sim._memory import MemorySystem
from bnsim.sim.dramrate import WRITE_SHARES, channel_rates, sustained_bandwidth

REPO = Path(__file__).resolve().parents[2]


def config(name: str, *overrides: str) -> Machine:
    return load_machine(REPO / "hwconfigs" / f"{name}.yaml", list(overrides))


@pytest.mark.parametrize("name", ["tiny", "cmp16", "v100"])
def test_no_mix_beats_the_peak_and_turning_the_bus_round_costs(name: str) -> None:
    """Every rate lies under the channel's peak (a burst every BL/2 clocks); a mix of reads and
    writes turns the bus round and reopens rows, so it is slower than reads alone or writes alone
    on every bundled machine."""
    machine = config(name)
    rates = channel_rates(machine)
    peak = machine.dram.channel_peak_bytes_per_second()
    assert len(rates) == len(WRITE_SHARES)
    assert all(0 < rate <= peak for rate in rates)
    assert rates[2] < min(rates[0], rates[4])
    assert channel_rates(machine) == rates  # deterministic (and remembered)
    assert sustained_bandwidth(machine) == machine.dram.channels * rates[0]


def test_refresh_and_bank_group_timing_cost_what_the_datasheet_says() -> None:
    """cmp16's two ranks each refresh for tRFC every tREFI (467/10398 = 4.5 %): reads without
    refresh gain at least that, and at most twice it (both ranks' refreshes stalling the channel in
    turn) plus the rows reopened after them; with one bank group (every burst tCCD_L = 7 clocks
    apart instead of BL/2 = 4) reads sustain at most 4/7 of the peak."""
    reads = channel_rates(config("cmp16"))[0]
    no_refresh = channel_rates(config("cmp16", "dram.device.timing.trefi=0cycles"))[0]
    share = 467 / 10398
    assert share <= no_refresh / reads - 1 <= 2 * share + 0.01
    one_group = config(
        "cmp16",
        "dram.device.bank_groups=1",
        "dram.device.banks_per_group=16",
        "dram.mapping=[row, rank, bank, bankgroup, column, channel, 'column:2']",
    )
    peak = one_group.dram.channel_peak_bytes_per_second()
    assert channel_rates(one_group)[0] <= peak * 4 / 7


def test_halving_the_channels_is_not_halving_each_channel_s_bus() -> None:
    """Once the flat model's blind spot: one 8-byte channel and two 4-byte channels have the same
    peak, but the narrow channels move half as much per burst and pay the same per-burst timing, so
    an iteration's time differs."""
    schedule = build_schedule(build_model("tiny_cnn", batch=4, image=32), "baseline")
    one_channel = config("tiny", "dram.channels=1")
    narrow = config(
        "tiny",
        "dram.device.bus=4B",
        "dram.mapping=[row, rank, bank, bankgroup, column, channel, 'column:3']",
    )
    assert one_channel.dram.peak_bandwidth_bytes_per_second() == (
        narrow.dram.peak_bandwidth_bytes_per_second()
    )
    assert simulate(schedule, one_channel).cycles != simulate(schedule, narrow).cycles


def test_a_step_is_served_at_the_rate_of_its_mix() -> None:
    """One channel at 1 B/cycle for reads alone or writes alone and 0.5 B/cycle for an even mix:
    a step that reads 256 B and writes 256 B (non-temporal) holds the channel 1024 cycles, its
    reads arriving after the first 512 and the 100-cycle latency."""
    memory = MemorySystem(1, 1 << 12, 1 << 13, False, True, 64, 1, 256, (1.0, 1.0, 0.5, 1.0, 1.0),
                          100.0, "range", 1, 1)  # fmt: skip
    private, hit, dram, done, _ = memory.run_tile(
        0, [(0, 256, 0, 0), (1 << 20, (1 << 20) + 256, 3, 1)], 0.0
    )
    assert (private, hit, dram) == (0, 0, 256)
    assert done == 512 + 100
    # the next step finds the channel busy until 1024
    *_, done_next, _ = memory.run_tile(0, [(4096, 4096 + 64, 0, 0)], 0.0)
    assert done_next == 1024 + 64 + 100


@pytest.mark.parametrize("name", ["tiny", "cmp16"])
def test_longer_streams_leave_the_rates_within_five_percent(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rates are a steady state: four times as many bursts move none of them by more than
    5 % (docs/performance.md has 8,000 against 64,000)."""
    machine = config(name)
    rates = channel_rates(machine)
    monkeypatch.setattr(dramrate, "BURSTS_PER_CHANNEL", 4 * dramrate.BURSTS_PER_CHANNEL)
    dramrate._profile.cache_clear()
    longer = channel_rates(machine)
    dramrate._profile.cache_clear()
    for rate, reference in zip(rates, longer, strict=True):
        assert rate == pytest.approx(reference, rel=0.05)
