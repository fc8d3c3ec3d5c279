"""Cross-check the three fidelities on the cases of tests/integration/test_crosscheck.py and more.

Run: python benchmarks/fidelity_table.py [--large]
Prints the Markdown table of docs/model.md (Fidelity): per case and scheme, line fidelity's DRAM
bytes and cycles, and the relative differences of fast and analytic fidelity, and how long each
took.
`--large` adds DenseNet-121 and ResNet-50 at batch 32 (line fidelity: about a minute per scheme).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from test_crosscheck import CMP16, LAYER_CASES, NETWORK_CASES, TINY, layer_network

from bnsim.experiment.crosscheck import crosscheck, differences
from bnsim.experiment.point import make_point
from bnsim.graph.zoo import build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--large", action="store_true", help="add batch-32 networks")
    args = parser.parse_args()
    cases = [
        *LAYER_CASES,
        ("relu_32x224_b2", layer_network("relu", 32, 224, 2), CMP16),
        *NETWORK_CASES,
        ("tiny_cnn_b4@tiny", build_model("tiny_cnn", batch=4), TINY),
        ("densenet121_b1_64px", build_model("densenet121", batch=1, image=64), CMP16),
        ("resnet50_b1_64px", build_model("resnet50", batch=1, image=64), CMP16),
        ("densenet121_b2", build_model("densenet121", batch=2), CMP16),
        ("inception_v3_b1_75px", build_model("inception_v3", batch=1, image=75), CMP16),
    ]
    if args.large:
        cases += [
            ("densenet121_b32", build_model("densenet121", batch=32), CMP16),
            ("resnet50_b32", build_model("resnet50", batch=32), CMP16),
        ]
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        "| case | scheme | line DRAM (MB) | line time (Mcycles) | fast DRAM | fast time | "
        "analytic DRAM | analytic time | line / fast / analytic (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, network, machine in cases:
        timed = crosscheck(make_point(machine, network, ["baseline", "bnff"]))
        wall = {(t.run.scheme, t.run.fidelity): t.wall_seconds for t in timed}
        totals = [d for d in differences([t.run for t in timed]) if d.group == "total"]
        for scheme in ("baseline", "bnff"):
            line = next(d for d in totals if d.scheme == scheme and d.fidelity == "line")
            fast = next(d for d in totals if d.scheme == scheme and d.fidelity == "fast")
            closed = next(d for d in totals if d.scheme == scheme and d.fidelity == "analytic")
            seconds = " / ".join(f"{wall[(scheme, f)]:.1f}" for f in ("line", "fast", "analytic"))
            print(
                f"| {name} | {scheme} | {line.dram_bytes / 1e6:,.1f} | "
                f"{line.cycles / 1e6:,.2f} | {fast.dram_relative():+.2%} | "
                f"{fast.cycles_relative():+.2%} | {closed.dram_relative():+.2%} | "
                f"{closed.cycles_relative():+.1%} | {seconds} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
