"""How the savings of each scheme depend on the LLC size: DenseNet-121 and ResNet-50, 2–64 MiB.

Run: python examples/sweep_cache_sizes.py [--small] [--out DIR]
A sweep (bnsim.sweep: parallel processes, every point stored as it finishes, so a second run
resumes where the first stopped) of every scheme on the 16-core CPU (hwconfigs/cmp16.yaml) with its
LLC at 2, 4, 8, 16, 32 and 64 MiB, 16-way so that every size divides into sets (cmp16's 11 ways do
not divide powers of two; fast fidelity's caches are fully associative anyway). Writes into DIR
(default out/): the sweep folder llc_sweep/ (results.jsonl, summary.csv: one row per point and
scheme), llc_speedup.png and llc_traffic.png. `--small`: tiny_cnn on tiny.yaml at 3 sizes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bnsim
from bnsim.experiment.sweeps import stored_points
from bnsim.report import plots

REPO = Path(__file__).resolve().parent.parent
SCHEMES = ["baseline", "fission", "bnff", "recompute", "bnff+sampling"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tiny network and machine (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    if args.small:
        hw, networks, sizes, batch = "tiny.yaml", ["tiny_cnn"], "64KiB..1MiB*4", 4
    else:
        hw, networks, sizes, batch = "cmp16.yaml", ["densenet121", "resnet50"], "2MiB..64MiB*2", 32

    folder = args.out / "llc_sweep"
    results = bnsim.sweep(
        REPO / "hwconfigs" / hw,
        networks,
        out=folder,
        schemes=SCHEMES,
        grid={"workload": networks, "llc.size": sizes},
        overrides=["llc.ways=16"],
        batch=batch,
        jobs=2,
    )
    for row in results.rows():
        if row["scheme"] == "bnff":
            print(
                f"{row['workload']:12s} LLC {row['llc.size']:>7s}: "
                f"bnff {row['speedup_vs_baseline']:.3f}× faster, "
                f"{1 - row['dram_vs_baseline']:.1%} less DRAM traffic"
            )
    stored = stored_points(folder, "llc.size")
    context = f"{stored.context}, a 16-way LLC"
    for metric, name in (("speedup", "llc_speedup.png"), ("traffic", "llc_traffic.png")):
        figure = plots.parameter_sweep(
            stored.groups, "LLC size", metric=metric, unit=stored.unit, context=context
        )
        plots.save(figure, args.out / name)
    print(f"wrote {folder}/summary.csv, llc_speedup.png and llc_traffic.png into {args.out}/")


if __name__ == "__main__":
    main()
