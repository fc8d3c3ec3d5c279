"""A machine described for people: its parts in rows of text, its element-wise costs, its roofs.

What `bnsim hw show` prints and the HTML report's machine section show.
"""

from __future__ import annotations

from typing import Any

from bnsim import units
from bnsim.config.dramdevice import Controller
from bnsim.config.machine import Machine
from bnsim.report.plotdata import Roofs
from bnsim.report.tables import key_value_table, text_table
from bnsim.sim.dramrate import WRITE_SHARES, best_sustained_bandwidth, channel_rates
from bnsim.trace import library_reorders


def machine_rows(machine: Machine) -> list[list[str]]:
    """(label, description) rows of a machine: cores, caches, DRAM, library (`bnsim hw show`)."""
    cores, dram = machine.cores, machine.dram
    rows = [
        [
            "cores",
            f"{cores.count} × {units.format_frequency(cores.clock_hz)}, {cores.simd_lanes} "
            f"{machine.dtype} lanes × {cores.fma_units} FMA units = {cores.flops_per_cycle()} "
            f"FLOP/cycle/core, {cores.max_outstanding_misses} outstanding misses/core"
            + (
                f", a stream prefetcher {cores.prefetch.distance} lines ahead "
                f"({cores.prefetch.queue} in flight)"
                if cores.prefetch and cores.prefetch.distance
                else ""
            ),
        ],
        [
            "peak compute",
            f"{units.format_flop_rate(machine.peak_flops_per_second())} "
            f"({machine.dtype}, {machine.dtype_bytes()} bytes/element)",
        ],
    ]
    for label, cache in (("private", machine.private), ("llc", machine.llc)):
        scope = "shared" if label == "llc" else "per core"
        extra = ""
        if label == "llc":
            extra = ", inclusive" if machine.llc.inclusive else ", non-inclusive"
        rows.append(
            [
                label,
                f"{units.format_bytes(cache.size_bytes, binary=True)} {scope}, "
                f"{cache.ways}-way, {cache.block_bytes} B blocks, {cache.num_sets()} sets, "
                f"{cache.latency_cycles} cycles{extra}",
            ]
        )
    device = dram.device
    peak = dram.peak_bandwidth_bytes_per_second()
    rates = [dram.channels * rate for rate in channel_rates(machine)]
    sustained = rates[0]
    rows += [
        [
            "dram",
            f"{dram.channels} channels × "
            f"{units.format_bandwidth(dram.channel_peak_bytes_per_second())}"
            f" = {units.format_bandwidth(peak)} peak, "
            f"{units.format_duration(dram.latency_s)} idle latency, "
            f"{units.format_bytes(dram.interleave_bytes(), binary=True)} per channel in turn",
        ],
        [
            "dram devices",
            f"{device.ranks} rank(s) × {device.bank_groups} bank groups × "
            f"{device.banks_per_group} banks, {units.format_bytes(device.row_bytes, binary=True)} "
            f"rows, {units.format_frequency(device.clock_hz)}, CL-tRCD-tRP "
            f"{device.timing.cl}-{device.timing.trcd}-{device.timing.trp}",
        ],
        ["dram controller", _controller_text(dram.controller_settings())],
        [
            "dram sustained",
            ", ".join(
                f"{units.format_bandwidth(rate)} ({rate / peak:.0%}) at {share:.0%} writes"
                for share, rate in zip(WRITE_SHARES, rates, strict=True)
            ),
        ],
        [
            "machine balance",
            f"{machine.peak_flops_per_second() / sustained:.1f} FLOP/byte "
            "(peak compute / DRAM bandwidth sustained for reads)",
        ],
        _efficiency_row(machine),
        _library_row(machine),
    ]
    return rows


def element_costs(machine: Machine) -> list[list[str]]:
    """(op, cycles per element per core) of the machine's element-wise ops."""
    costs = machine.compute.cycles_per_element.model_dump(exclude_none=True)
    return [[op, f"{value:g} cycles"] for op, value in costs.items()]


def describe_machine(machine: Machine) -> str:
    """The human summary of `bnsim hw show`."""
    lines = [f"{machine.name}: {machine.description}" if machine.description else machine.name]
    lines.append(key_value_table(machine_rows(machine), indent="  "))
    lines.append("  element-wise ops (cycles/element per core):")
    lines.append(text_table(["op", "cycles/element"], element_costs(machine), indent="    "))
    lines.append(f"  rates from: {machine.compute.source}")
    return "\n".join(lines)


def machine_document(machine: Machine) -> dict[str, Any]:
    """The resolved machine as in its YAML file, with what follows from it under "derived": peak
    FLOP/s, DRAM peak bandwidth and what the channels sustain at each share of writes
    (`bnsim hw show --json`)."""
    channels = machine.dram.channels
    derived = {
        "peak_flops_per_second": machine.peak_flops_per_second(),
        "dram_peak_bytes_per_second": machine.dram.peak_bandwidth_bytes_per_second(),
        "dram_sustained_bytes_per_second": {
            f"writes {share:.0%}": channels * rate
            for share, rate in zip(WRITE_SHARES, channel_rates(machine), strict=True)
        },
    }
    return {**machine.to_dict(), "derived": derived}


def machine_roofs(machine: Machine) -> Roofs:
    """The machine's roofline: peak compute, DRAM sustained at the best mix, DRAM peak."""
    return Roofs(
        flops_per_second=machine.peak_flops_per_second(),
        sustained_bytes_per_second=best_sustained_bandwidth(machine),
        peak_bytes_per_second=machine.dram.peak_bandwidth_bytes_per_second(),
    )


def _library_row(machine: Machine) -> list[str]:
    """`hw show`'s row on the kernel library, the layouts kept and the copies between them."""
    compute = machine.compute
    reorders = library_reorders(machine)
    copied = [name for name in ("activations", "weights") if getattr(reorders, name)]
    copies = (
        f"; {compute.library} reorders the {' and '.join(copied)} of every convolution"
        if copied
        else ""
    )
    return ["library", f"{compute.library} under {compute.framework}, {compute.layout}{copies}"]


def _efficiency_row(machine: Machine) -> list[str]:
    """`hw show`'s row on the convolutions' and GEMMs' fractions of peak FMA throughput."""
    compute = machine.compute
    passes = compute.conv_efficiencies()
    fused = f"of peak FMA throughput; fused conv kernels × {compute.fused_conv_factor}"
    if isinstance(compute.conv_efficiency, float):
        return ["conv / fc", f"{passes.forward:.0%} / {compute.fc_efficiency:.0%} {fused}"]
    return [
        "conv / fc",
        f"{passes.forward:.0%} forward, {passes.backward_data:.0%} backward data, "
        f"{passes.backward_weight:.0%} backward weight / {compute.fc_efficiency:.0%} {fused}",
    ]


def _controller_text(controller: Controller) -> str:
    """One line on a channel controller's queues (in bursts)."""
    if controller.shared:
        queues = f"one FR-FCFS queue of {controller.read_queue} bursts, reads and writes together"
    else:
        queues = (
            f"read queue {controller.read_queue} bursts, write queue {controller.write_queue} "
            f"bursts drained from {controller.write_high} to {controller.write_low}"
        )
    if controller.miss_queue:
        return f"{queues}; {controller.miss_queue} bursts may wait in front (miss queue)"
    return f"{queues}; no miss queue"
