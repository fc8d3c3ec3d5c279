"""benchmarks/measure_machine.py: its C programs build with gcc and report every quantity a
hardware config of this machine takes (its numbers are measurements, which tests never judge)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_microbenchmarks_build_run_and_report_every_quantity(tmp_path: Path) -> None:
    out = tmp_path / "machine.json"
    subprocess.run(
        [sys.executable, "benchmarks/measure_machine.py", "--quick", "--json", str(out)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    results = json.loads(out.read_text())
    levels = {(cache["level"], cache["type"]) for cache in results["caches"]}
    assert {(1, "Data"), (2, "Unified")} <= levels
    assert all(cache["size_bytes"] > 0 and cache["line_bytes"] > 0 for cache in results["caches"])
    assert {entry["width_bits"] for entry in results["fma"]} >= {256}
    assert all(entry["gflops_per_thread"] > 0 for entry in results["fma"])
    kernels = {(e["kernel"], e["threads"], e["nontemporal_stores"]) for e in results["bandwidth"]}
    assert {kernel for kernel, _, _ in kernels} == {"copy", "scale", "add", "triad", "read"}
    assert len(kernels) == len(results["bandwidth"])  # each combination once
    assert {nontemporal for _, _, nontemporal in kernels} == {True, False}
    sizes = [entry["buffer_bytes"] for entry in results["latency"]]
    assert sizes == sorted(sizes)
    assert all(entry["ns_per_load"] > 0 for entry in results["latency"])
    chains = [entry["chains"] for entry in results["parallelism"]]
    assert chains == sorted(chains)
    assert chains[0] == 1
    assert [entry["streams"] for entry in results["streams"] if entry["threads"] == 1] == [
        1, 2, 4, 8, 16, 32, 64,
    ]  # fmt: skip
    assert {entry["direction"] for entry in results["reorders"]} == {"to_blocked", "to_plain"}
    assert all(entry["gb_per_second"] > 0 for entry in results["streams"] + results["reorders"])
    assert results["parallelism"][0]["in_flight"] > 0
