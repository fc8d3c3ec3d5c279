"""Physical bounds at batch 32: fast against analytic fidelity, and what convolutions move.

Run: python benchmarks/bounds.py [--machines cmp16,v100] [--networks densenet121,resnet50,...]
For every bundled machine, network (batch 32) and scheme: fast and analytic fidelity's DRAM bytes
and time, their difference, and the largest ratio over the convolution kernels of DRAM bytes moved
to the bytes they must move (each operand read once, each output written once, plus the read for
ownership of outputs stored through the caches), and to the bytes its loop order reads (the
input once per pass; tests/integration/test_bounds.py). Prints the
Markdown table of docs/performance.md (Physical bounds).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_bounds import CONV_KINDS, necessary_bytes

from bnsim import (
    SimOptions,
    build_schedule,
    library_reorders,
    load_machine,
    load_workload,
    simulate,
)
from bnsim.trace import Trace

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ("baseline", "fission", "bnff", "recompute", "bnff+sampling")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--machines", default="cmp16,v100,tiny")
    parser.add_argument("--networks", default="densenet121,resnet50,inception_v3")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        "| network | machine | scheme | fast (ms) | fast DRAM (GB) | analytic (ms) | "
        "analytic DRAM (GB) | analytic − fast, DRAM | worst conv kernel: moved / each once | "
        "moved / loop order's passes | fast wall (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for machine_name in args.machines.split(","):
        machine = load_machine(REPO / "hwconfigs" / f"{machine_name}.yaml")
        for network_name in args.networks.split(","):
            network = load_workload(network_name, batch=32)
            for scheme in SCHEMES:
                schedule = build_schedule(network, scheme, reorders=library_reorders(machine))
                started = time.perf_counter()
                fast = simulate(schedule, machine)
                wall = time.perf_counter() - started
                analytic = simulate(schedule, machine, SimOptions(fidelity="analytic"))
                trace = Trace(schedule, machine, SimOptions())
                convs = [
                    (index, result.dram_read_bytes + result.dram_write_bytes)
                    for index, (kernel, result) in enumerate(
                        zip(schedule.kernels, fast.kernels, strict=True)
                    )
                    if kernel.main_op().kind in CONV_KINDS
                ]
                once = max(moved / necessary_bytes(schedule, trace, i) for i, moved in convs)
                passes = max(
                    moved / necessary_bytes(schedule, trace, i, passes=True) for i, moved in convs
                )
                fast_bytes = fast.dram_read_bytes + fast.dram_write_bytes
                analytic_bytes = analytic.dram_read_bytes + analytic.dram_write_bytes
                print(
                    f"| {network_name} | {machine_name} | {scheme} | {fast.seconds * 1e3:.1f} | "
                    f"{fast_bytes / 1e9:.2f} | {analytic.seconds * 1e3:.1f} | "
                    f"{analytic_bytes / 1e9:.2f} | "
                    f"{100 * (analytic_bytes - fast_bytes) / fast_bytes:+.1f} % | "
                    f"{once:.2f} | {passes:.2f} | {wall:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
