"""How the savings of each scheme depend on the LLC size: DenseNet-121 and ResNet-50, 2–64 MiB.

Run: python examples/sweep_cache_sizes.py [--small] [--out DIR]
Simulates every scheme on the 16-core CPU (hwconfigs/cmp16.yaml) with its LLC set to 2, 4, 8, 16,
32 and 64 MiB (16-way, so that every size divides into sets: cmp16's 11 ways do not divide powers of
two; associativity does not matter at fast fidelity, whose caches are fully associative) and writes
into DIR (default out/): llc_sweep.csv (one row per network, size and scheme), and per network
llc_speedup_NETWORK.png and llc_traffic_NETWORK.png. `--small`: tiny_cnn on tiny.yaml, 3 sizes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import bnsim
from bnsim.report import plots

REPO = Path(__file__).resolve().parent.parent
SCHEMES = ["baseline", "fission", "bnff", "recompute", "bnff+sampling"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny network and machine (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    if args.small:
        hw, networks, sizes_kib, batch = "tiny.yaml", ["tiny_cnn"], [64, 256, 1024], 4
    else:
        hw, networks, batch = "cmp16.yaml", ["densenet121", "resnet50"], 32
        sizes_kib = [1024 * mib for mib in (2, 4, 8, 16, 32, 64)]
    base = bnsim.load_machine(REPO / "hwconfigs" / hw)

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for workload in networks:
        network = bnsim.load_workload(workload, batch=batch)
        points = []
        for size in sizes_kib:
            machine = base.with_overrides([f"llc.size={size}KiB", "llc.ways=16"])
            runs = bnsim.run_point(bnsim.make_point(machine, network, SCHEMES), jobs=2)
            points.append((size / 1024, runs))
            for run in runs:
                rows.append(
                    {
                        "network": workload,
                        "llc_mib": size / 1024,
                        "scheme": run.scheme,
                        "seconds": run.seconds,
                        "dram_bytes": run.dram_bytes(),
                        "speedup_vs_baseline": runs[0].cycles / run.cycles,
                    }
                )
            bnff = next(run for run in runs if run.scheme == "bnff")
            print(
                f"{workload:12s} LLC {size / 1024:6.3g} MiB: "
                f"baseline {runs[0].seconds * 1e3:8.1f} ms, "
                f"bnff {runs[0].cycles / bnff.cycles:.3f}× faster, "
                f"{1 - bnff.dram_bytes() / runs[0].dram_bytes():.1%} less DRAM traffic"
            )
        for metric, name in (("speedup", "llc_speedup"), ("traffic", "llc_traffic")):
            figure = plots.parameter_sweep(
                points, "LLC size", metric=metric, unit="MiB", title=f"{workload}, batch {batch}"
            )
            plots.save(figure, args.out / f"{name}_{workload}.png")
    with (args.out / "llc_sweep.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote llc_sweep.csv and {2 * len(networks)} figures into {args.out}/")


if __name__ == "__main__":
    main()
