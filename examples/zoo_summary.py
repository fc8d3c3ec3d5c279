"""Size facts of every zoo network and the machine balance of the bundled CPU, via the API.

Run: python examples/zoo_summary.py
"""

from pathlib import Path

import bnsim
from bnsim.graph.zoo import MODELS
from bnsim.sim.dramrate import sustained_bandwidth

REPO = Path(__file__).resolve().parent.parent

machine = bnsim.load_machine(REPO / "hwconfigs" / "cmp16.yaml")
balance = machine.peak_flops_per_second() / sustained_bandwidth(machine)  # streaming reads
print(f"{machine.name}: {balance:.1f} FLOP per DRAM byte to stay compute-bound")
print(f"{'model':14s} {'params':>12s} {'GMAC/sample':>12s} {'BN input MB/sample':>19s}")
for name in MODELS:
    summary = bnsim.summarize(bnsim.load_workload(name, batch=1))
    bn_megabytes = summary.bn_input_elements_per_sample * 4 / 1e6
    print(
        f"{name:14s} {summary.params:>12,d} {summary.macs_per_sample / 1e9:>12.3f} "
        f"{bn_megabytes:>19.1f}"
    )
