"""Every examples/*.py runs: at its reduced size (--small), writing what its docstring promises."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# example → files it writes at --small
WRITES = {
    "compare_schemes": [
        "compare.json",
        "compare_traffic.png",
        "compare_time.png",
        "compare_layers.png",
        "compare_roofline.png",
    ],
    "sweep_cache_sizes": ["llc_sweep", "llc_speedup.png", "llc_traffic.png"],
    "batch_size": ["batch_sweep.csv", "batch_speedup.png", "batch_traffic_saved.png"],
    "gpu_v100": ["v100_traffic_resnet50.png"],
    "custom_network": [
        "custom_traffic_residual_cnn.png",
        "custom_traffic_custom_resnet_cifar.png",
    ],
    "torchvision_models": ["torchvision_models.json", "torchvision_models.md"],
}


def run_example(name: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )


def test_every_example_is_tested() -> None:
    assert {path.stem for path in EXAMPLES.glob("*.py")} == {*WRITES, "zoo_summary"}


def test_zoo_summary_prints_its_committed_output() -> None:
    result = run_example("zoo_summary")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (EXAMPLES / "zoo_summary.out").read_text()


@pytest.mark.parametrize("name", sorted(WRITES))
def test_example_runs_small_and_writes_its_files(name: str, tmp_path: Path) -> None:
    if name == "torchvision_models":
        pytest.importorskip("torchvision", reason="needs torchvision (bnsim[test])")
    result = run_example(name, "--small", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(WRITES[name])
    for path in tmp_path.glob("*.png"):
        with Image.open(path) as image:
            assert image.size[0] > 400
    if name == "compare_schemes":
        runs = json.loads((tmp_path / "compare.json").read_text())["runs"]
        assert [run["scheme"] for run in runs][:3] == ["baseline", "fission", "bnff"]
    if name == "sweep_cache_sizes":
        rows = list(csv.DictReader((tmp_path / "llc_sweep" / "summary.csv").open()))
        assert len(rows) == 3 * 5
        sizes_kib = {"64KiB": 64, "256KiB": 256, "1024KiB": 1024}
        baseline = {
            sizes_kib[r["llc.size"]]: int(r["dram_read_bytes"]) + int(r["dram_write_bytes"])
            for r in rows
            if r["scheme"] == "baseline"
        }
        sizes = sorted(baseline)
        assert all(baseline[a] >= baseline[b] for a, b in itertools.pairwise(sizes))
    if name == "torchvision_models":
        assert result.stdout.count("as torchvision counts") == 2
        rows = json.loads((tmp_path / "torchvision_models.json").read_text())
        assert [row["verified"] for row in rows] == [{"baseline": True, "bnff": True}] * 2
    if name == "custom_network":
        assert result.stdout.count("same outputs and gradients") == 2
