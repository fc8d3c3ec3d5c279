"""`bnsim membench`: STREAM's kernels timed by the DRAM model, checked against what physics allows
and, as a validation, against published STREAM figures of the machines the configs describe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bnsim.config.machine import load_machine
from bnsim.sim.membench import KERNELS, line_of_turn, run_kernel

ROOT = Path(__file__).resolve().parents[2]
CMP16 = load_machine(ROOT / "hwconfigs" / "cmp16.yaml")
V100 = load_machine(ROOT / "hwconfigs" / "v100.yaml")
SMALL = 2 << 20  # 2 MiB per array: enough for the cores' windows to fill, quick


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_every_byte_stream_counts_crosses_the_bus_once_and_no_faster_than_its_peak(
    kernel: str,
) -> None:
    """Non-temporal stores: the DRAM moves exactly STREAM's bytes, so the rate over the peak is
    the fraction of channel clocks the data buses were busy, which is at most one."""
    result = run_kernel(CMP16, kernel, SMALL)
    inputs, output = KERNELS[kernel]
    assert result.dram_read_bytes == len(inputs) * SMALL
    assert result.dram_write_bytes == (SMALL if output is not None else 0)
    device = CMP16.dram.dram_device()
    peak = CMP16.dram.channels * 2 * device.bus_bytes / device.tck_s
    assert result.bytes_per_second / peak == pytest.approx(result.bus_utilisation, rel=1e-9)
    assert 0 < result.bus_utilisation <= 1
    if output is None:
        assert sum(stats.turnarounds for stats in result.channels) == 0


def test_one_core_without_prefetch_is_bound_by_its_fill_buffers() -> None:
    """Little's law: 10 lines in flight, each taking the path round (78 clocks) plus at least
    CL + a burst (a row hit) and at most tRP + tRCD + CL + a burst (a conflict), 0.75 ns each."""
    machine = CMP16.with_overrides(["cores.prefetch.distance=0"])
    rate = run_kernel(machine, "read", SMALL, cores=1).bytes_per_second
    line_bytes, window, clock_s = 64, 10, 0.75e-9
    fastest = window * line_bytes / ((78 + 19 + 4) * clock_s)
    slowest = window * line_bytes / ((78 + 19 + 19 + 19 + 4) * clock_s)
    assert slowest <= rate <= fastest


def test_the_streamer_raises_what_one_core_can_read() -> None:
    """The L2 streamer keeps the superqueue's 16 lines in flight instead of the 10 fill buffers:
    single-core read bandwidth of Skylake-SP parts was measured at 10.9-15.2 GB/s (RRZE kerncraft
    machine files: Xeon Gold 5122, 6148, Platinum 8174); docs/validation.md."""
    without = run_kernel(CMP16.with_overrides(["cores.prefetch.distance=0"]), "read", SMALL, 1)
    with_streamer = run_kernel(CMP16, "read", SMALL, cores=1)
    assert with_streamer.bytes_per_second > 1.4 * without.bytes_per_second
    assert 10.9e9 <= with_streamer.bytes_per_second <= 15.2e9


def test_a_cpu_splits_the_arrays_in_shares_and_a_gpu_deals_blocks_in_turn() -> None:
    """Four cores, eight lines each. cmp16 (OpenMP static): core 1 has lines 8-15. v100 (blocks of
    1024 doubles = 64 lines of 128 B dealt round-robin): core 1's first 64 lines are lines 64-127
    and its next block is the fifth, lines 320-383."""
    core = np.array([1, 1, 1, 1])
    turn = np.array([0, 7, 63, 64])
    assert line_of_turn(CMP16, core[:2], turn[:2], 4, 8).tolist() == [8, 15]
    assert line_of_turn(V100, core, turn, 4, 128).tolist() == [64, 71, 127, 320]


def test_the_same_machine_gives_the_same_numbers() -> None:
    assert run_kernel(CMP16, "triad", SMALL) == run_kernel(CMP16, "triad", SMALL)


def test_cmp16_triad_is_within_ten_percent_of_intel_s_stream_figure() -> None:
    """Validation, not a fit: Intel's 199 GB/s on two sockets is 99.5 GB/s per socket
    (docs/validation.md); at STREAM's array size (four times the LLC)."""
    rate = run_kernel(CMP16, "triad").bytes_per_second
    assert rate == pytest.approx(99.5e9, rel=0.10)


@pytest.mark.xfail(
    reason="known: 588 GB/s of the 776 GB/s measured; 64-entry queues fed by 80 interleaved "
    "streams find too few open-row bursts, and all-bank refresh (docs/validation.md)",
    strict=True,
)
def test_v100_copy_is_within_ten_percent_of_the_measured_776_gb_s() -> None:
    rate = run_kernel(V100, "copy").bytes_per_second
    assert rate == pytest.approx(776e9, rel=0.10)


def test_the_cli_prints_stream_s_table_and_writes_the_numbers(tmp_path: Path) -> None:
    out = tmp_path / "membench.json"
    shown = subprocess.run(
        [sys.executable, "-m", "bnsim", "membench", "--hw", "hwconfigs/cmp16.yaml",
         "--kernel", "copy", "--kernel", "read", "--array-size", "2MiB", "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout  # fmt: skip
    assert "rate (GB/s)" in shown
    assert "copy" in shown
    assert "read" in shown
    document = json.loads(out.read_text())
    assert [entry["kernel"] for entry in document["kernels"]] == ["copy", "read"]
    copy = document["kernels"][0]
    assert copy["dram_read_bytes"] == copy["dram_write_bytes"] == 2 << 20
    assert len(copy["channels"]) == 6
