"""How the savings change with the mini-batch size: DenseNet-121 on the 16-core CPU, batch 8–64.

Run: python examples/batch_size.py [--small] [--out DIR]
Simulates baseline, bnff and recompute at batch 8, 16, 32 and 64 and writes into DIR (default
out/): batch_sweep.csv, batch_speedup.png and batch_traffic_saved.png. A larger batch makes every
activation larger against the fixed LLC, so more of the passes that BN fission and fusion remove
would have gone to DRAM: the savings grow with the batch. `--small`: tiny_cnn on tiny.yaml at
batch 2, 4 and 8.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import bnsim
from bnsim.report import plots

REPO = Path(__file__).resolve().parent.parent
SCHEMES = ["baseline", "bnff", "recompute"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny network and machine (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    hw, workload, batches = (
        ("tiny.yaml", "tiny_cnn", [2, 4, 8])
        if args.small
        else ("cmp16.yaml", "densenet121", [8, 16, 32, 64])
    )
    machine = bnsim.load_machine(REPO / "hwconfigs" / hw)

    points, rows = [], []
    for batch in batches:
        network = bnsim.load_workload(workload, batch=batch)
        runs = bnsim.run_point(bnsim.make_point(machine, network, SCHEMES), jobs=2)
        points.append((batch, runs))
        for run in runs:
            speedup = runs[0].cycles / run.cycles
            saved = 1 - run.dram_bytes() / runs[0].dram_bytes()
            rows.append(
                {
                    "batch": batch,
                    "scheme": run.scheme,
                    "ms_per_sample": run.seconds * 1e3 / batch,
                    "dram_bytes_per_sample": run.dram_bytes() / batch,
                    "speedup_vs_baseline": speedup,
                    "traffic_saved": saved,
                }
            )
            print(
                f"batch {batch:3d} {run.scheme:10s} {run.seconds * 1e3 / batch:7.2f} ms/sample "
                f"{run.dram_bytes() / batch / 1e6:8.1f} MB/sample  {speedup:.3f}×  "
                f"{saved:6.1%} saved"
            )

    args.out.mkdir(parents=True, exist_ok=True)
    context = f"{workload}, on {machine.name}"
    figure = plots.parameter_sweep(points, "batch", context=context)
    plots.save(figure, args.out / "batch_speedup.png")
    figure = plots.parameter_sweep(points, "batch", metric="traffic_reduction", context=context)
    plots.save(figure, args.out / "batch_traffic_saved.png")
    with (args.out / "batch_sweep.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote batch_sweep.csv and 2 figures into {args.out}/")


if __name__ == "__main__":
    main()
