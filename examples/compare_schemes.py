"""Every scheme on one machine: time and DRAM traffic, breakdown, per-layer and roofline figures.

Run: python examples/compare_schemes.py [--small] [--out DIR]
Simulates DenseNet-121 at batch 32 on the 16-core CPU (hwconfigs/cmp16.yaml) under baseline,
fission, bnff, recompute and bnff+sampling, prints the totals and writes into DIR (default out/):
compare.json (the result document), compare_traffic.png, compare_time.png, compare_layers.png
(baseline against bnff, layer by layer) and compare_roofline.png. `--small` runs a tiny network
on a tiny machine instead (what the tests run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bnsim
from bnsim.report import plots
from bnsim.report.machine import machine_roofs

REPO = Path(__file__).resolve().parent.parent
SCHEMES = ["baseline", "fission", "bnff", "recompute", "bnff+sampling"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny network and machine (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    hw, workload, batch = (
        ("tiny.yaml", "tiny_cnn", 4) if args.small else ("cmp16.yaml", "densenet121", 32)
    )

    machine = bnsim.load_machine(REPO / "hwconfigs" / hw)
    network = bnsim.load_workload(workload, batch=batch)
    point = bnsim.make_point(machine, network, SCHEMES)
    runs = bnsim.run_point(point, jobs=2)

    baseline = runs[0]
    print(f"{network.name}, batch {batch}, on {machine.name}")
    print(f"{'scheme':15s} {'time (ms)':>10s} {'DRAM (GB)':>10s} {'speedup':>8s} {'traffic':>8s}")
    for run in runs:
        print(
            f"{run.scheme:15s} {run.seconds * 1e3:10.1f} {run.dram_bytes() / 1e9:10.2f} "
            f"{baseline.cycles / run.cycles:7.3f}× "
            f"{run.dram_bytes() / baseline.dram_bytes() - 1:+8.1%}"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    document = bnsim.point_document(point, runs, bnsim.__version__)
    (args.out / "compare.json").write_text(json.dumps(document, indent=1) + "\n")
    title = f"{network.name}, batch {batch}, on {machine.name}"
    figures = {
        "compare_traffic.png": plots.traffic_breakdown(runs, title=f"{title}: DRAM traffic"),
        "compare_time.png": plots.time_breakdown(runs, title=f"{title}: iteration time"),
        "compare_layers.png": plots.layer_traffic(runs[0], runs[2]),
        "compare_roofline.png": plots.roofline(
            runs, machine_roofs(machine), title=f"{title}: kernels on the roofline"
        ),
    }
    for name, figure in figures.items():
        plots.save(figure, args.out / name)
    print(f"wrote compare.json and {len(figures)} figures into {args.out}/")


if __name__ == "__main__":
    main()
