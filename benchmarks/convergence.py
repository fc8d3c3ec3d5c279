"""Granularity convergence: results at the default simulation grain against 4× finer.

Run: python benchmarks/convergence.py [--networks densenet121,resnet50] [--machines cmp16,v100]
For each network (batch 32) and bundled machine, every scheme at fast fidelity with the default
options, with `--tiles-per-core 4` and with a step 4× smaller, and prints the largest relative
change of DRAM bytes and cycles and of bnff's speedup (docs/performance.md, Convergence). The
simulation options only change how finely bnsim simulates, so the results must not move (issue
goal: under 2 %, and the speedup under 0.02).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bnsim import RunResult, SimOptions, build_schedule, load_machine, load_workload, simulate
from bnsim.trace import DEFAULT_STEP_BYTES, library_reorders

REPO = Path(__file__).resolve().parents[1]
SCHEMES = ("baseline", "fission", "bnff", "recompute", "bnff+sampling")
FINER = {
    "default": SimOptions(),
    "tiles_per_core=4": SimOptions(tiles_per_core=4),
    f"step={DEFAULT_STEP_BYTES // 4 >> 10}KiB": SimOptions(step_bytes=DEFAULT_STEP_BYTES // 4),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--networks", default="densenet121,resnet50")
    parser.add_argument("--machines", default="cmp16,v100")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        "| network | machine | options | worst DRAM change | worst cycles change | "
        "bnff speedup | wall (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for machine_name in args.machines.split(","):
        machine = load_machine(REPO / "hwconfigs" / f"{machine_name}.yaml")
        for network_name in args.networks.split(","):
            network = load_workload(network_name, batch=args.batch)
            reorders = library_reorders(machine)
            schedules = [build_schedule(network, s, reorders=reorders) for s in SCHEMES]
            reference = None
            for label, options in FINER.items():
                started = time.perf_counter()
                runs = [simulate(schedule, machine, options) for schedule in schedules]
                wall = time.perf_counter() - started
                speedup = runs[0].cycles / runs[2].cycles
                if reference is None:
                    reference = runs
                    base_speedup = speedup
                dram = max(
                    abs(_total(run) / _total(ref) - 1)
                    for run, ref in zip(runs, reference, strict=True)
                )
                cycles = max(
                    abs(run.cycles / ref.cycles - 1)
                    for run, ref in zip(runs, reference, strict=True)
                )
                print(
                    f"| {network_name} | {machine_name} | {label} | {100 * dram:.2f} % | "
                    f"{100 * cycles:.2f} % | {speedup:.3f}× ({speedup - base_speedup:+.3f}) | "
                    f"{wall:.1f} |",
                    flush=True,
                )


def _total(run: RunResult) -> int:
    return run.dram_read_bytes + run.dram_write_bytes


if __name__ == "__main__":
    main()
