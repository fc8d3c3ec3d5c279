"""Wall time and peak memory of `bnsim run` and `bnsim --help` on this machine (not a test).

Run: python benchmarks/run_benchmarks.py [--quick]
Prints a Markdown table for docs/performance.md. Each measurement runs in a fresh process; peak memory
is the largest resident set of that process and the processes it started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

SCHEMES = ["baseline", "fission", "bnff", "recompute", "bnff+sampling"]
MEASURE = """
import json, resource, sys, time
from bnsim.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - started
peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"code": code, "seconds": seconds, "peak_mib": peak_kib / 1024}), file=sys.stderr)
"""


def measure(arguments: list[str]) -> dict[str, float]:
    """Run `bnsim ARGUMENTS` in a fresh interpreter; wall time includes interpreter start-up."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *arguments], capture_output=True,
                            text=True, check=False)
    wall = time.perf_counter() - started
    report = json.loads(result.stderr.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"bnsim {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")
    return {"wall_s": wall, "peak_mib": report["peak_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="DenseNet-121 at batch 32 only")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnsim", "--help"], capture_output=True, check=True)
    print(f"`bnsim --help`: {time.perf_counter() - started:.2f} s wall\n")
    workloads = ["densenet121"] if args.quick else ["densenet121", "resnet50", "inception_v3"]
    batches = [32] if args.quick else [32, 64]
    print("| workload | batch | schemes | jobs | wall (s) | peak memory (MiB) |")
    print("|---|---|---|---|---|---|")
    for workload in workloads:
        for batch in batches:
            for jobs in (1, 2):
                schemes = [arg for scheme in SCHEMES for arg in ("--scheme", scheme)]
                result = measure(["run", "--hw", "hwconfigs/cmp16.yaml", "--workload", workload,
                                  "--batch", str(batch), "--jobs", str(jobs), *schemes])
                print(f"| {workload} | {batch} | all five | {jobs} | {result['wall_s']:.1f} | "
                      f"{result['peak_mib']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
