"""Microbenchmarks of the machine this runs on, for a hardware config of it (not a test).

Run: python benchmarks/measure_machine.py [--quick] [--json FILE]
Builds the C programs of benchmarks/machine/ with gcc (-O3 -march=native -fopenmp) and prints what
they measure, with the machine they ran on:

- caches: size, ways and line of each level, from Linux's sysfs (what the processor reports);
- FMA: sustained FP32 FLOP/s per thread with 256- and 512-bit vectors, one thread and all of them;
- bandwidth: STREAM's kernels (copy, scale, add, triad, read-only sum) with one thread and all of
  them, stores non-temporal and ordinary, arrays four times the last-level cache (STREAM's rule);
- latency: a dependent-load chase through buffers from 16 KiB to 1 GiB (each cache level, and none);
- memory-level parallelism: 1 to 64 independent chases through 1 GiB at once; the time per load
  falls until the core's outstanding misses run out, and the idle latency over the time per load is
  how many misses it keeps in flight (Little's law);
- concurrent streams: read bandwidth with 1 to 64 sequential streams per thread at once (what a
  core's prefetchers can follow), and the copy between NCHW and 16-channel blocks that oneDNN makes
  around convolutions, which reads or writes 16 channel planes at once.

Every value is the best of several runs (STREAM's rule for bandwidth, the least disturbed run for
latency and FMA), because other tenants of a shared virtual machine only ever slow it down.
`--quick` shrinks every run (to check the programs, not to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "machine"
PROGRAMS = {"stream": ["-fopenmp"], "fma": ["-fopenmp"], "latency": [], "streams": ["-fopenmp"]}
PROCESSOR_FIELDS = ("model name", "cpu family", "model", "stepping", "microcode")
UNSUPPORTED = 3  # a program's exit status for a vector width the processor does not have
KIB = 1024
MIB = KIB * KIB


def build(folder: Path) -> dict[str, Path]:
    """Compile each program; raise with gcc's message if one does not build."""
    built = {}
    for name, flags in PROGRAMS.items():
        binary = folder / name
        source = str(HERE / f"{name}.c")
        command = ["gcc", "-O3", "-march=native", *flags, source, "-o", str(binary)]
        subprocess.run(command, check=True, capture_output=True, text=True)
        built[name] = binary
    return built


def run(binary: Path, arguments: list[object], threads: int) -> list[list[str]]:
    """Run a program with `threads` OpenMP threads, bound one per core; its lines, split."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_PROC_BIND": "close"}
    done = subprocess.run(
        [str(binary), *map(str, arguments)],
        check=True, capture_output=True, text=True, env=environment,
    )  # fmt: skip
    return [line.split() for line in done.stdout.splitlines() if line.strip()]


def caches() -> list[dict[str, Any]]:
    """Each cache of CPU 0 as sysfs describes it."""
    found = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):

        def read(name: str, folder: Path = index) -> str:
            path = folder / name
            return path.read_text().strip() if path.exists() else ""

        size = read("size")
        found.append(
            {
                "level": int(read("level") or 0),
                "type": read("type"),
                "size_bytes": int(size[:-1]) * KIB if size.endswith("K") else int(size or 0),
                "ways": int(read("ways_of_associativity") or 0),
                "line_bytes": int(read("coherency_line_size") or 0),
                "shared_with_cpus": read("shared_cpu_list"),
            }
        )
    return found


def processor() -> dict[str, str]:
    """The processor's name and CPUID family, model and stepping, from /proc/cpuinfo."""
    fields = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in PROCESSOR_FIELDS and key not in fields:
            fields[key] = value.strip()
        if not line.strip() and fields:
            break
    return fields


def measure(quick: bool) -> dict[str, Any]:
    threads = os.cpu_count() or 1
    levels = caches()
    last_level = max((cache for cache in levels if cache["type"] != "Instruction"),
                     key=lambda cache: cache["level"])  # fmt: skip
    array_bytes = 4 * int(last_level["size_bytes"]) if not quick else 4 * MIB
    repeat = 10 if not quick else 2
    fma_iterations = 200_000_000 if not quick else 1_000_000
    loads = 50_000_000 if not quick else 100_000
    results: dict[str, Any] = {
        "machine": {
            "processor": processor(),
            "cpus": threads,
            "kernel": platform.release(),
            "python": platform.python_version(),
        },
        "caches": levels,
    }
    with tempfile.TemporaryDirectory() as folder:
        binaries = build(Path(folder))
        fma = []
        for width in (256, 512):
            for count in sorted({1, threads}):
                try:
                    best = max(
                        float(run(binaries["fma"], [width, fma_iterations], count)[0][2])
                        for _ in range(3)
                    )
                except subprocess.CalledProcessError as error:
                    if error.returncode == UNSUPPORTED:
                        continue  # no 512-bit vectors on this processor
                    raise
                fma.append({"width_bits": width, "threads": count, "gflops_per_thread": best})
        results["fma"] = fma
        bandwidth = []
        for count in sorted({1, threads}):
            for nontemporal in (1, 0):
                lines = run(binaries["stream"], [array_bytes, repeat, nontemporal], count)
                for kernel, rate, seconds in lines:
                    bandwidth.append(
                        {
                            "kernel": kernel,
                            "threads": count,
                            "nontemporal_stores": bool(nontemporal),
                            "array_bytes": array_bytes,
                            "gb_per_second": float(rate),
                            "best_seconds": float(seconds),
                        }
                    )
        results["bandwidth"] = bandwidth
        memory = 1024 * MIB if not quick else 64 * MIB
        sizes = [16 * KIB, 256 * KIB, 1 * MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB, 32 * MIB]
        sizes += [64 * MIB, memory] if not quick else [memory]

        def chase(size: int, chains: int) -> float:
            return min(
                float(run(binaries["latency"], [size, loads, seed, chains], 1)[0][2])
                for seed in (1, 2, 3)
            )

        results["latency"] = [
            {"buffer_bytes": size, "ns_per_load": chase(size, 1)} for size in sizes
        ]
        results["streams"], results["reorders"] = [], []
        for count in sorted({1, threads}):
            for name, value, rate in run(binaries["streams"], [array_bytes // MIB, 3], count):
                if name == "streams":
                    results["streams"].append(
                        {"threads": count, "streams": int(value), "gb_per_second": float(rate)}
                    )
                else:
                    results["reorders"].append(
                        {"threads": count, "direction": value, "gb_per_second": float(rate)}
                    )
        per_load = {chains: chase(memory, chains) for chains in (1, 2, 4, 8, 16, 24, 32, 48, 64)}
        results["parallelism"] = [
            {"chains": chains, "ns_per_load": time, "in_flight": per_load[1] / time}
            for chains, time in per_load.items()
        ]
    return results


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    cpu = machine["processor"]
    lines = [
        f"machine: {cpu.get('model name', '?')} (CPUID family {cpu.get('cpu family', '?')}, model "
        f"{cpu.get('model', '?')}, stepping {cpu.get('stepping', '?')}), {machine['cpus']} CPUs, "
        f"Linux {machine['kernel']}",
        "",
        "| cache | size | ways | line | shared by CPUs |",
        "|---|---|---|---|---|",
    ]
    for cache in results["caches"]:
        lines.append(
            f"| L{cache['level']} {cache['type'].lower()} | {cache['size_bytes'] // KIB} KiB | "
            f"{cache['ways']} | {cache['line_bytes']} B | {cache['shared_with_cpus']} |"
        )
    lines += ["", "| FMA vector | threads | GFLOP/s per thread |", "|---|---|---|"]
    for entry in results["fma"]:
        lines.append(
            f"| {entry['width_bits']} bit | {entry['threads']} | {entry['gflops_per_thread']:.1f} |"
        )
    lines += ["", "| kernel | threads | stores | GB/s (STREAM's bytes) |", "|---|---|---|---|"]
    for entry in results["bandwidth"]:
        stores = "non-temporal" if entry["nontemporal_stores"] else "ordinary"
        lines.append(
            f"| {entry['kernel']} | {entry['threads']} | {stores} | {entry['gb_per_second']:.2f} |"
        )
    lines += ["", "| chase through | ns per load |", "|---|---|"]
    for entry in results["latency"]:
        lines.append(f"| {entry['buffer_bytes'] // KIB} KiB | {entry['ns_per_load']:.2f} |")
    lines += ["", "| threads | streams per thread | read GB/s |", "|---|---|---|"]
    for entry in results["streams"]:
        lines.append(f"| {entry['threads']} | {entry['streams']} | {entry['gb_per_second']:.1f} |")
    lines += ["", "| threads | NCHW ↔ nChw16c copy | GB/s (STREAM's bytes) |", "|---|---|---|"]
    for entry in results["reorders"]:
        lines.append(
            f"| {entry['threads']} | {entry['direction']} | {entry['gb_per_second']:.1f} |"
        )
    lines += ["", "| independent chases | ns per load | misses in flight |", "|---|---|---|"]
    for entry in results["parallelism"]:
        lines.append(
            f"| {entry['chains']} | {entry['ns_per_load']:.2f} | {entry['in_flight']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs: check, do not measure")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    try:
        results = measure(args.quick)
    except subprocess.CalledProcessError as error:
        print(f"measure_machine: {error.cmd[0]} failed: {error.stderr.strip()}", file=sys.stderr)
        return 1
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
