"""Wall time and peak memory of `bnsim run` at each fidelity, and `bnsim --help` (not a test).

Run: python benchmarks/run_benchmarks.py [--quick] [--repeat N]
Prints Markdown tables for docs/performance.md. Each `bnsim run` runs in a fresh process, N times
(default 5; the median, and the fastest and slowest, because a shared virtual machine's speed
drifts by tens of percent); peak memory is the largest resident set of that process and the
processes it started. The sweep of docs/sweeps.md runs at fast and at analytic fidelity. The
analytic model is also timed apart from building the schedules, in a fresh process per network
(wall time: its first run, and the median of five more).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *arguments], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    report = json.loads(result.stderr.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"bnsim {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}")
    return {"wall_s": wall, "peak_mib": report["peak_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="DenseNet-121 at batch 32 only")
    parser.add_argument("--repeat", type=int, default=5, help="runs per row (default 5)")
    parser.add_argument("--analytic-only", metavar="WORKLOAD", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.analytic_only:
        print(json.dumps(time_analytic(args.analytic_only)))
        return
    global REPEAT  # noqa: PLW0603 (a script's one setting)
    REPEAT = args.repeat
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bnsim", "--help"], capture_output=True, check=True)
    print(f"`bnsim --help`: {time.perf_counter() - started:.2f} s wall\n")
    workloads = ["densenet121"] if args.quick else ["densenet121", "resnet50", "inception_v3"]
    batches = [32] if args.quick else [32, 64]
    every = [arg for scheme in SCHEMES for arg in ("--scheme", scheme)]
    print(
        "| fidelity | workload | batch | schemes | jobs | wall, median (s) | fastest–slowest (s) "
        "| peak memory (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workload in workloads:
        for batch in batches:
            for jobs in (1, 2):
                row(["fast", workload, batch, "all five", jobs], workload, batch, every, jobs)
    for workload in workloads:
        row(["analytic", workload, 32, "all five", 1], workload, 32, every, 1, "analytic")
    for workload in workloads:
        baseline = ["--scheme", "baseline"]
        row(["line", workload, 32, "baseline", 1], workload, 32, baseline, 1, "line")
    print()
    for fidelity in ("fast", "analytic"):
        seconds = time_sweep(fidelity)
        print(
            f"sweep, 16 LLC sizes × 5 schemes, DenseNet-121 batch 32, {fidelity} fidelity, 2 jobs: "
            f"{seconds:.1f} s wall"
        )
    print()
    for workload in workloads:
        # each network in a fresh process: the schedule cache and NumPy's start-up are its own
        result = subprocess.run(
            [sys.executable, __file__, "--analytic-only", workload],
            capture_output=True,
            text=True,
            check=True,
        )
        built, first, median = json.loads(result.stdout)
        print(
            f"analytic model, {workload} batch 32, all five schemes: first run "
            f"{first * 1e3:.0f} ms, then {median * 1e3:.0f} ms (median of five); building the five "
            "schedules: "
            f"{built * 1e3:.0f} ms"
        )


REPEAT = 5


def row(
    cells: list[object],
    workload: str,
    batch: int,
    schemes: list[str],
    jobs: int,
    fidelity: str = "fast",
) -> None:
    arguments = [
        "run",
        "--hw",
        "hwconfigs/cmp16.yaml",
        "--workload",
        workload,
        "--batch",
        str(batch),
        "--jobs",
        str(jobs),
        "--fidelity",
        fidelity,
        *schemes,
    ]
    results = [measure(arguments) for _ in range(REPEAT if fidelity != "line" else 1)]
    walls = [result["wall_s"] for result in results]
    peak = max(result["peak_mib"] for result in results)
    print(
        "| "
        + " | ".join(str(cell) for cell in cells)
        + f" | {statistics.median(walls):.1f} | {min(walls):.1f}–{max(walls):.1f} | {peak:.0f} |",
        flush=True,
    )


def time_sweep(fidelity: str) -> float:
    """Wall seconds of the sweep of docs/sweeps.md at `fidelity`, into a fresh folder."""
    import tempfile  # noqa: PLC0415

    every = [arg for scheme in SCHEMES for arg in ("--scheme", scheme)]
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bnsim",
                "sweep",
                "--hw",
                "hwconfigs/cmp16.yaml",
                "--workload",
                "densenet121",
                *every,
                "--grid",
                "llc.size=2MiB..32MiB+2MiB",
                "--set",
                "llc.ways=16",
                "--fidelity",
                fidelity,
                "--jobs",
                "2",
                "--quiet",
                "--out",
                folder,
            ],
            capture_output=True,
            check=True,
        )
        return time.perf_counter() - started


def time_analytic(workload: str) -> tuple[float, float, float]:
    """Wall seconds to build the five schedules, then of the analytic model on them: its first run
    in this process, and the median of five more. Wall time, not CPU time: NumPy's first call starts
    its BLAS threads, whose spinning CPU time would count."""
    from bnsim import load_machine, load_workload  # noqa: PLC0415
    from bnsim.schemes import build_schedule  # noqa: PLC0415
    from bnsim.sim import simulate  # noqa: PLC0415
    from bnsim.trace import SimOptions  # noqa: PLC0415

    machine = load_machine("hwconfigs/cmp16.yaml")
    network = load_workload(workload, batch=32)
    started = time.perf_counter()
    schedules = [build_schedule(network, scheme) for scheme in SCHEMES]
    built = time.perf_counter() - started
    runs = []
    for _ in range(6):
        started = time.perf_counter()
        for schedule in schedules:
            simulate(schedule, machine, SimOptions(fidelity="analytic"))
        runs.append(time.perf_counter() - started)
    return built, runs[0], statistics.median(runs[1:])


if __name__ == "__main__":
    main()
