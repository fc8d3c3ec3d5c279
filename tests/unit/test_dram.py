"""The reference DRAM model, worked by hand on DDR4-2666 timing.

Timing of a DDR4-2666V (19-19-19) x8 8 Gb device, in clocks of 0.75 ns (JEDEC JESD79-4 speed bins,
Micron MT40A1G8 datasheet): CL 19, CWL 14, tRCD 19, tRP 19, tRAS 43, tRRD_S/L 4/7, tFAW 28,
tCCD_S/L 4/7, tWTR_S/L 4/10, tWR 20, tRTP 10, tRFC 467 (350 ns), tREFI 10398 (7.8 us). A 64-bit
rank of eight x8 devices: 8 KiB rows, 64-byte bursts (BL8: 4 clocks of the data bus).
"""

from __future__ import annotations

import dataclasses

import dram_reference  # tests/unit: the same rules, clock by clock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnsim.config.dramdevice import (
    Controller,
    DRAMDevice,
    Location,
    address_decoder,
    channel_interleave_bytes,
)
from bnsim.sim.dram import DRAMOutcome, Request, simulate_requests

DDR4_2666 = DRAMDevice(
    tck_s=0.75e-9,
    bus_bytes=8,
    burst_length=8,
    row_bytes=8192,
    ranks=1,
    bank_groups=4,
    banks_per_group=4,
    cl=19,
    cwl=14,
    trcd=19,
    trp=19,
    tras=43,
    trrd_s=4,
    trrd_l=7,
    tfaw=28,
    tccd_s=4,
    tccd_l=7,
    twtr_s=4,
    twtr_l=10,
    twr=20,
    trtp=10,
    trfc=467,
    trefi=10398,
)
NO_REFRESH = dataclasses.replace(DDR4_2666, trefi=0)
# bank groups outermost below the row: consecutive 8 KiB rows of the address space are in
# different bank groups, then banks; a row's 128 bursts are consecutive
ROW_MAJOR = ("row", "rank", "bank", "bankgroup", "channel", "column")
# bursts dealt over the bank groups: a stream's consecutive bursts alternate groups
GROUP_INTERLEAVED = ("row", "rank", "bank", "column", "bankgroup", "channel")
ROW = 128 * 16 * 64  # bytes of address space from one row of a bank to the next (ROW_MAJOR)


def run(  # type: ignore[no-untyped-def]
    requests: list[Request],
    device: DRAMDevice = NO_REFRESH,
    mapping=ROW_MAJOR,
    channels: int = 1,
    permute_banks: bool = False,
    **controller,
) -> DRAMOutcome:
    """The compiled model's outcome, checked identical to the reference's."""
    options = Controller(**controller)
    outcome = simulate_requests(
        device, channels, mapping, requests, options, permute_banks=permute_banks
    )
    expected = dram_reference.simulate_requests(
        device, channels, mapping, requests, options, permute_banks=permute_banks
    )
    assert outcome == expected
    return outcome


def test_the_address_mapping_peels_fields_from_the_low_bits() -> None:
    decode = address_decoder(DDR4_2666, 2, ROW_MAJOR)
    # burst 5 of the row, channel 1, bank group 2, bank 3, row 7
    burst = 5 + 128 * (1 + 2 * (2 + 4 * (3 + 4 * (0 + 1 * 7))))
    assert decode(burst * 64 + 17) == Location(
        channel=1, rank=0, bankgroup=2, bank=3, row=7, column=5
    )
    with pytest.raises(ValueError, match="address mapping: row,bank"):
        address_decoder(DDR4_2666, 1, ("row", "bank"))


def test_a_read_to_a_closed_bank_takes_trcd_cl_and_its_burst() -> None:
    outcome = run([Request(0, 0, False)])
    assert outcome.done == (19 + 19 + 4,)  # ACT at 0, RD at 19, data 38..42
    assert (outcome.channels[0].row_misses, outcome.channels[0].reads) == (1, 1)


def test_a_second_read_to_the_open_row_waits_tccd_l_only() -> None:
    outcome = run([Request(0, 0, False), Request(0, 64, False)])
    assert outcome.done == (42, 26 + 19 + 4)  # RD at 19, then 7 later (same bank group)
    stats = outcome.channels[0]
    assert (stats.row_misses, stats.row_hits, stats.row_conflicts) == (1, 1, 0)


def test_another_row_of_the_same_bank_waits_tras_then_trp() -> None:
    outcome = run([Request(0, 0, False), Request(0, ROW, False)])
    # PRE at max(tRAS 43, RD 19 + tRTP 10) = 43, ACT at 62, RD at 81, data until 104
    assert outcome.done == (42, 104)
    assert outcome.channels[0].row_conflicts == 1


def test_the_fifth_activate_in_a_rank_waits_for_tfaw() -> None:
    # five closed banks in turn over the four bank groups: ACT at 0, 4, 8, 12, then 28 (tFAW)
    outcome = run([Request(0, k * 8192, False) for k in range(5)])
    assert outcome.done[:4] == (42, 46, 50, 54)
    assert outcome.done[4] == 28 + 19 + 19 + 4


def test_split_command_buses_activate_while_a_column_command_goes() -> None:
    """An HBM-like channel (one clock per burst, tCCD_S 1) streaming 16 rows of reads dealt over
    the bank groups: with row commands on a bus of their own the data bus is full from the first
    burst on (every later ACT overlaps column commands); on one command bus each of the other 15
    ACTs takes a clock a column command would have had."""
    hbm = dataclasses.replace(
        NO_REFRESH, burst_length=2, bus_bytes=32, tccd_s=1, tccd_l=2, trrd_s=2, trrd_l=2
    )
    requests = [Request(0, 64 * k, False) for k in range(2048)]
    split = run(requests, dataclasses.replace(hbm, split_commands=True), GROUP_INTERLEAVED)
    one_bus = run(requests, hbm, GROUP_INTERLEAVED)
    # tRCD + CL, the four bank groups' rows opening tRRD apart, then a burst every clock
    assert split.clocks <= 19 + 19 + 3 * 2 + 2048
    assert one_bus.clocks >= split.clocks + 15


def test_a_read_after_a_write_waits_twtr_after_the_write_data() -> None:
    # drain the write at once: ACT 0, WR 19, data 33..37; the read (other bank group) may not
    # issue before 37 + tWTR_S = 41
    outcome = run([Request(0, 0, True), Request(0, 8192, False)], write_high=1, write_low=0)
    assert outcome.done == (37, 41 + 19 + 4)
    assert outcome.channels[0].turnarounds == 1


def test_a_shared_queue_serves_a_write_to_the_open_row_before_an_older_conflict() -> None:
    """A read of row 0, a read of row 1 of the same bank, a write to row 0. Shared: the write hits
    row 0 (WR at max(tCCD_L 19 + 7, bus 42 + turnaround 2 - CWL 14) = 30, data to 48), so row 0
    stays open until tWR after it: PRE 68, ACT 87, RD 106, data to 129. Separate queues: the
    write waits while a read is queued (PRE 43, ACT 62, RD 81, data to 104), then finds row 1
    open: PRE at tRAS after the ACT (105), ACT 124, WR 143, data to 161."""
    requests = [Request(0, 0, False), Request(0, ROW, False), Request(0, 64, True)]
    shared = run(requests, shared=True)
    assert shared.done == (42, 129, 48)
    assert (shared.channels[0].row_hits, shared.channels[0].row_conflicts) == (1, 1)
    separate = run(requests)
    assert separate.done == (42, 104, 161)
    assert (separate.channels[0].row_hits, separate.channels[0].row_conflicts) == (0, 2)


def test_a_miss_queue_lets_a_source_s_later_requests_reach_other_channels() -> None:
    """Read queues of one request; a source reads two bursts of channel 0's row, then one of
    channel 1's. Without a miss queue the second waits for the first to leave its queue (RD at 19,
    so it joins at 20 and reads at tCCD_L after, 26: done 49) and the third waits behind it, joining
    channel 1's queue at 20 too (ACT 20, RD 39, done 62). With one place in channel 0's miss queue
    the second waits there and the third opens its row at once (done 42)."""
    requests = [Request(0, 0, False), Request(0, 64, False), Request(0, 8192, False)]
    assert run(requests, channels=2, read_queue=1).done == (42, 49, 62)
    assert run(requests, channels=2, read_queue=1, miss_queue=1).done == (42, 49, 42)


def test_twtr_holds_within_a_rank_only() -> None:
    """The write of the test above on rank 0, the read on rank 1 (other rank, no tWTR): the read's
    ACT waits for the drain (clock 20), its RD for tRCD (39), its data only for the bus (58 after
    37 + 2 of turnaround)."""
    two_ranks = dataclasses.replace(NO_REFRESH, ranks=2)
    outcome = run(
        [Request(0, 0, True), Request(0, ROW, False)], two_ranks, write_high=1, write_low=0
    )
    assert outcome.done == (37, 20 + 19 + 19 + 4)


def test_bank_groups_decide_a_stream_s_bandwidth() -> None:
    """Reads of whole rows, all in one bank group: the column commands go every tCCD_L = 7 clocks,
    4 of them data (57 % of the bus). The same addresses dealt over the bank groups: every
    tCCD_S = 4, a full bus. Row major, consecutive rows: mostly one group at a time, the next row's
    group joining as its requests enter the 32-deep queue."""
    one_group = [
        Request(0, 4 * row * 8192 + 64 * burst, False) for row in range(16) for burst in range(128)
    ]
    consecutive = [Request(0, 64 * k, False) for k in range(2048)]
    for stream, mapping, low, high in (
        (one_group, ROW_MAJOR, 0.56, 0.58),
        (one_group, GROUP_INTERLEAVED, 0.97, 1.0),
        (consecutive, ROW_MAJOR, 0.65, 0.75),
    ):
        outcome = run(stream, mapping=mapping)
        stats = outcome.channels[0]
        assert low <= stats.busy_clocks / outcome.clocks <= high, mapping
        assert stats.row_hits + stats.row_misses + stats.row_conflicts == 2048


def test_ranks_take_turns_to_refresh() -> None:
    stream = [Request(0, 64 * k, False) for k in range(12_000)]
    outcome = run(stream, dataclasses.replace(DDR4_2666, ranks=2), mapping=GROUP_INTERLEAVED)
    # rank 0 due at tREFI/2, rank 1 at tREFI, then each every tREFI
    clocks, trefi = outcome.clocks, DDR4_2666.trefi
    assert outcome.channels[0].refreshes == (clocks + trefi // 2) // trefi + clocks // trefi


def test_refresh_takes_about_trfc_of_every_trefi() -> None:
    stream = [Request(0, 64 * k, False) for k in range(12_000)]
    without = run(stream, mapping=GROUP_INTERLEAVED)
    with_refresh = run(stream, DDR4_2666, mapping=GROUP_INTERLEAVED)
    assert with_refresh.channels[0].refreshes == with_refresh.clocks // DDR4_2666.trefi
    loss = with_refresh.clocks / without.clocks - 1
    assert 0.03 <= loss <= 0.07  # tRFC / tREFI = 4.5 %, plus reopening rows


def test_the_same_requests_give_the_same_clocks() -> None:
    requests = [Request(3 * k, (k * 7919 * 64) % (1 << 24), k % 3 == 0) for k in range(500)]
    assert run(requests, DDR4_2666) == run(requests, DDR4_2666)
    outcome = run(requests, DDR4_2666)
    assert all(
        done >= request.arrival for done, request in zip(outcome.done, requests, strict=True)
    )
    stats = outcome.channels[0]
    assert stats.reads + stats.writes == 500
    assert stats.row_hits + stats.row_misses + stats.row_conflicts == 500


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tras": 10}, "tras: 10 clocks is shorter than trcd"),
        ({"bank_groups": 0}, "bank_groups: must be at least 1"),
        ({"row_bytes": 100}, "row_bytes: 100 is not a whole number"),
        ({"trefi": 400}, "trefi: 400 is not longer than trfc"),
        ({"cl": -1}, "cl: must be at least 0"),
        ({"tck_s": 0.0}, "tck_s: must be positive"),
        ({"ranks": 65}, "ranks: at most 64, got 65"),
    ],
)
def test_contradictory_timing_is_refused_naming_the_key(
    change: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DDR4_2666, **change)


def test_permuted_banks_keep_two_streams_out_of_each_other_s_rows() -> None:
    """A copy (read A, write B) whose arrays lie a multiple of the bank stride apart: plainly
    mapped, A's and B's bursts fall in the same banks, in different rows, and close each other's
    rows; with the row's low bits offsetting the bank, they fall in different banks."""
    decode = address_decoder(DDR4_2666, 1, GROUP_INTERLEAVED, permute_banks=True)
    # row 512 = 2·16²: its digits sum to 2, two banks on
    assert (decode(1 << 26).row, decode(1 << 26).bankgroup, decode(1 << 26).bank) == (512, 0, 2)
    copy = [
        Request(k, address, write)
        for k in range(2048)
        for address, write in ((64 * k, False), ((1 << 26) + 64 * k, True))
    ]
    plain = run(copy, mapping=GROUP_INTERLEAVED)
    permuted = run(copy, mapping=GROUP_INTERLEAVED, permute_banks=True)
    assert plain.channels[0].row_conflicts > 500
    assert permuted.channels[0].row_conflicts < 100
    assert permuted.clocks < 0.8 * plain.clocks


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 1 << 22), st.booleans()),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 2),
    st.booleans(),
)
def test_no_stream_beats_the_bus_or_the_device(requests, ranks: int, permute: bool) -> None:
    """Random streams: each burst completes no sooner than its command's latency after it
    arrives, the bus moves one burst per BL/2 clocks at most, and every request is counted once."""
    device = dataclasses.replace(DDR4_2666, ranks=ranks)
    stream = [
        Request(arrival, address // 64 * 64, write) for arrival, address, write in sorted(requests)
    ]
    outcome = run(stream, device, mapping=GROUP_INTERLEAVED, permute_banks=permute)
    stats = outcome.channels[0]
    for request, done in zip(stream, outcome.done, strict=True):
        latency = device.cwl if request.write else device.cl
        assert done >= request.arrival + latency + device.burst_clocks
    assert stats.busy_clocks == len(stream) * device.burst_clocks
    assert outcome.clocks >= stats.busy_clocks
    assert (stats.reads, stats.writes) == (
        sum(not r.write for r in stream),
        sum(r.write for r in stream),
    )
    assert stats.row_hits + stats.row_misses + stats.row_conflicts == len(stream)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 300), st.integers(0, 1 << 21), st.booleans(), st.integers(0, 3)),
        min_size=1,
        max_size=150,
    ),
    st.integers(1, 2),
    st.integers(1, 3),
    st.sampled_from([(32, 24, 8), (4, 3, 1), (8, 2, 0), (32, 0, 0), (4, 0, 0)]),
    st.integers(0, 5),
    st.integers(0, 40),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0, 0, 2, 16]),
)
def test_the_compiled_model_times_random_streams_as_the_reference_does(
    requests,
    ranks: int,
    channels: int,
    queues,
    window: int,
    loop_clocks: int,
    refresh: bool,
    split: bool,
    miss_queue: int,
) -> None:
    """Sources with windows, small queues that fill (a write queue of their own, or one queue
    shared by reads and writes: high 0) with or without a miss queue in front, two ranks, three
    channels, refreshes every few hundred clocks, one command bus or two: every completion clock
    and statistic is the reference's."""
    device = dataclasses.replace(
        DDR4_2666, ranks=ranks, trfc=60, trefi=300 if refresh else 0, split_commands=split
    )
    depth, high, low = queues
    queue_keys = (
        {"shared": True}
        if high == 0
        else {"write_queue": depth, "write_high": high, "write_low": low}
    )
    stream = [Request(arrival, address // 64 * 64, write, source)
              for arrival, address, write, source in requests]  # fmt: skip
    outcome = run(
        stream,
        device,
        GROUP_INTERLEAVED,
        channels,
        read_queue=depth,
        **queue_keys,
        miss_queue=miss_queue,
        window=window,
        loop_clocks=loop_clocks,
    )  # fmt: skip  (run checks the two models identical)
    assert sum(stats.reads + stats.writes for stats in outcome.channels) == len(stream)
    assert min(outcome.done) >= min(request.arrival for request in stream)


def cnn_like(cores: int, lines: int, arrays: int) -> list[Request]:
    """Each core streams its share of `arrays` input arrays and writes one output, line by line,
    as an element-wise kernel does (the arrays 16 MiB apart, in the same banks unless permuted)."""
    requests = []
    for core in range(cores):
        for line in range(core * lines, (core + 1) * lines):
            for array in range(arrays + 1):
                address = (array << 24) + 64 * line
                requests.append(Request(0, address, array == arrays, core))
    return requests


@pytest.mark.parametrize(
    ("window", "permute", "shared"),
    [(10, False, False), (10, True, False), (4, True, False), (10, True, True)],
)
@pytest.mark.parametrize("miss_queue", [0, 8])
def test_the_compiled_model_times_cnn_like_streams_as_the_reference_does(
    window: int, permute: bool, shared: bool, miss_queue: int
) -> None:
    outcome = run(
        cnn_like(cores=4, lines=300, arrays=2), DDR4_2666, GROUP_INTERLEAVED, 2,
        permute_banks=permute, window=window, loop_clocks=60, shared=shared,
        miss_queue=miss_queue, read_queue=8,
    )  # fmt: skip
    assert sum(stats.reads for stats in outcome.channels) == 4 * 300 * 2


def test_a_window_bounds_a_source_s_bandwidth_by_little_s_law() -> None:
    """One source reading a stream with W requests in flight and a loop of L clocks: each request
    is released about tRCD/CL + burst after it arrives, so W bursts go per (L + latency) clocks."""
    stream = [Request(0, 64 * k, False) for k in range(4000)]
    for window in (1, 4):
        outcome = simulate_requests(
            NO_REFRESH, 1, GROUP_INTERLEAVED, stream, Controller(window=window, loop_clocks=100)
        )
        per_burst = outcome.clocks / len(stream)
        # row hits: CL + burst = 23 clocks to release, 100 back to the next arrival
        assert per_burst == pytest.approx((100 + 19 + 4) / window, rel=0.02)


def test_a_field_split_over_two_places_takes_its_low_bits_from_the_lower() -> None:
    """Two bursts of a row, then the next bank group; every 256 B the next of three channels."""
    mapping = ("row", "rank", "bank", "column", "bankgroup", "channel", "column:2")
    decode = address_decoder(DDR4_2666, 3, mapping)
    assert decode(64 * 3) == Location(channel=0, rank=0, bankgroup=0, bank=0, row=0, column=3)
    assert decode(256) == Location(channel=1, rank=0, bankgroup=0, bank=0, row=0, column=0)
    assert decode(3 * 256 + 64) == Location(channel=0, rank=0, bankgroup=1, bank=0, row=0, column=1)
    # the column's other 5 bits come above the bank group: 3 channels × 4 groups × 256 B on
    assert decode(3 * 4 * 256) == Location(channel=0, rank=0, bankgroup=0, bank=0, row=0, column=4)
    assert channel_interleave_bytes(DDR4_2666, 3, mapping) == 256
    assert channel_interleave_bytes(DDR4_2666, 3, ROW_MAJOR) == 8192


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (("row", "rank", "bank", "bankgroup", "channel"), "must name each of"),
        (("row", "rank", "bank", "bankgroup", "column", "channel", "column"), "column twice"),
        (("row", "rank", "bank", "bankgroup", "column", "channel", "row:2"), "row:2"),
        (("row", "rank", "bank:3", "bankgroup", "column", "channel"), "bank 8 values"),
        (("row", "rank", "bank", "bankgroup", "column", "channel", "column:x"), "column:x"),
    ],
)
def test_a_mapping_that_does_not_cover_the_fields_is_refused(
    mapping: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        address_decoder(DDR4_2666, 3, mapping)
