"""Your own network, in Python or in YAML: check it, verify a scheme on it, simulate it.

Run: python examples/custom_network.py [--small] [--out DIR]
Builds a small CNN from layer objects (the same layers a workload YAML lists), loads the
hand-written workloads/custom_resnet_cifar.yaml, proves with the NumPy kernels that bnff computes
the same outputs and gradients as the baseline on both, then simulates both on the 16-core CPU and
writes custom_traffic_NETWORK.png into DIR (default out/). `--small`: batch 4 instead of 64.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bnsim
from bnsim.graph.layer import (
    Add,
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Linear,
    ReLU,
    SoftmaxCrossEntropy,
)
from bnsim.report import plots

REPO = Path(__file__).resolve().parent.parent


def residual_cnn(batch: int) -> bnsim.Network:
    """conv-BN-ReLU stem, one residual block, global pooling and a classifier, for 32×32 images."""
    layers = [
        Input(name="input", channels=3),
        Conv2d(name="stem.conv", inputs=("input",), out_channels=32, kernel=3, padding=1),
        BatchNorm2d(name="stem.bn", inputs=("stem.conv",)),
        ReLU(name="stem.relu", inputs=("stem.bn",)),
        Conv2d(name="block.conv1", inputs=("stem.relu",), out_channels=32, kernel=3, padding=1),
        BatchNorm2d(name="block.bn1", inputs=("block.conv1",)),
        ReLU(name="block.relu1", inputs=("block.bn1",)),
        Conv2d(name="block.conv2", inputs=("block.relu1",), out_channels=32, kernel=3, padding=1),
        BatchNorm2d(name="block.bn2", inputs=("block.conv2",)),
        Add(name="block.add", inputs=("block.bn2", "stem.relu")),
        ReLU(name="block.relu2", inputs=("block.add",)),
        GlobalAvgPool2d(name="pool", inputs=("block.relu2",)),
        Flatten(name="flatten", inputs=("pool",)),
        Linear(name="fc", inputs=("flatten",), out_features=10),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]
    return bnsim.build_network("residual_cnn", layers, batch=batch, image=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="batch 4 (tests)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (out/)")
    args = parser.parse_args()
    batch = 4 if args.small else 64
    networks = [
        residual_cnn(batch),
        bnsim.load_workload(REPO / "workloads" / "custom_resnet_cifar.yaml", batch=batch),
    ]
    machine = bnsim.load_machine(REPO / "hwconfigs" / "cmp16.yaml")

    args.out.mkdir(parents=True, exist_ok=True)
    for network in networks:
        summary = bnsim.summarize(network)
        print(f"{network.name}: {len(network.layers)} layers, {summary.params:,} parameters")
        report = bnsim.verify_scheme(network, "bnff", seed=0, width_divisor=1)
        verdict = "same outputs and gradients" if report.passed else "MISMATCH"
        print(f"  verify bnff: {verdict} (max relative error {report.max_rel_err:.1e})")
        runs = bnsim.run_point(bnsim.make_point(machine, network, ["baseline", "bnff"]), jobs=2)
        baseline, bnff = runs
        print(
            f"  baseline {baseline.seconds * 1e3:.3f} ms, {baseline.dram_bytes() / 1e6:.1f} MB; "
            f"bnff {bnff.seconds * 1e3:.3f} ms, {bnff.dram_bytes() / 1e6:.1f} MB "
            f"({baseline.cycles / bnff.cycles:.3f}× faster)"
        )
        title = f"{network.name}, batch {batch}, on {machine.name}: DRAM traffic"
        figure = plots.traffic_breakdown(runs, title=title)
        plots.save(figure, args.out / f"custom_traffic_{network.name}.png")
    print(f"wrote {len(networks)} figures into {args.out}/")


if __name__ == "__main__":
    main()
