"""The scheme comparison on a GPU: DenseNet-121 and ResNet-50 on the V100 configuration.

Run: python examples/gpu_v100.py [--small] [--out DIR]
hwconfigs/v100.yaml models the V100's 80 SMs as cores with private L1/shared memory and its 6 MiB
L2 as the shared cache, with HBM2 behind it (every value cited in the file; docs/hardware.md).
Prints time and DRAM traffic per scheme and network and writes v100_traffic_NETWORK.png into DIR
(default out/). `--small`: ResNet-50 at batch 2 and 64×64 pixels only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bnsim
from bnsim.report import plots

REPO = Path(__file__).resolve().parent.parent
SCHEMES = ["baseline", "fission", "bnff", "recompute"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a small point (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    points = (
        [("resnet50", 2, 64)] if args.small else [("densenet121", 32, None), ("resnet50", 32, None)]
    )
    machine = bnsim.load_machine(REPO / "hwconfigs" / "v100.yaml")

    args.out.mkdir(parents=True, exist_ok=True)
    for workload, batch, image in points:
        network = bnsim.load_workload(workload, batch=batch, image=image)
        runs = bnsim.run_point(bnsim.make_point(machine, network, SCHEMES), jobs=2)
        for run in runs:
            print(
                f"{workload:12s} {run.scheme:10s} {run.seconds * 1e3:8.2f} ms "
                f"{run.dram_bytes() / 1e9:7.2f} GB  {runs[0].cycles / run.cycles:.3f}× vs baseline"
            )
        figure = plots.traffic_breakdown(
            runs, title=f"{workload}, batch {batch}, on the V100: DRAM traffic"
        )
        plots.save(figure, args.out / f"v100_traffic_{workload}.png")
    print(f"wrote {len(points)} figures into {args.out}/")


if __name__ == "__main__":
    main()
