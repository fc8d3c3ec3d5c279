"""Sweeps end to end: killed with SIGKILL and resumed, local against Dask, the command line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bnsim.cli import main
from bnsim.experiment.sweeps import RESULTS_FILE, Sweep, parse_grid, run_sweep

REPO = Path(__file__).resolve().parents[2]
CMP16 = str(REPO / "hwconfigs" / "cmp16.yaml")
TINY = str(REPO / "hwconfigs" / "tiny.yaml")
# 30 points of about a third of a second each: a few seconds with two processes
KILLABLE = [
    "sweep",
    "--hw",
    CMP16,
    "--workload",
    "densenet121",
    "--batch",
    "2",
    "--image",
    "32",
    "--scheme",
    "baseline",
    "--scheme",
    "bnff",
    "--scheme",
    "recompute",
    "--grid",
    "llc.size=2MiB..32MiB*2",
    "--grid",
    "cores.count=4,8",
    "--set",
    "llc.ways=16",
    "--jobs",
    "2",
    "--quiet",
]


def sweep_process(out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bnsim", *KILLABLE, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )


def test_a_sweep_killed_with_sigkill_resumes_to_the_same_results(tmp_path: Path) -> None:
    rng = random.Random(7)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = sweep_process(killed)
    store = killed / RESULTS_FILE
    deadline = time.monotonic() + 120
    while not (store.exists() and store.read_bytes().count(b"\n") >= 2):
        assert process.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.0))
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stored_before = store.read_bytes().count(b"\n")
    assert 2 <= stored_before < 30, "kill the sweep while it runs"
    assert not (killed / "summary.csv").exists()
    partial = tmp_path / "partial.png"  # a killed sweep's folder can be drawn from
    plot = ["plot", str(killed), "--kind", "speedup", "--x", "llc.size", "--out", str(partial)]
    assert main(plot) == 0
    assert partial.stat().st_size > 10_000

    assert main([*KILLABLE, "--out", str(killed)]) == 0  # resume
    assert main([*KILLABLE, "--out", str(whole)]) == 0  # uninterrupted
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 30
    assert len({record["key"] for record in records}) == 30  # each point exactly once
    assert all(record["status"] == "ok" for record in records)
    assert (killed / "summary.csv").read_bytes() == (whole / "summary.csv").read_bytes()


def test_local_and_dask_executors_give_identical_results(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    sweep = Sweep(
        hw=TINY,
        workloads=("tiny_cnn",),
        schemes=("baseline", "bnff", "recompute"),
        grid=parse_grid(["llc.size=64KiB..256KiB*2", "batch=2,4"]),
    )
    local = run_sweep(sweep, tmp_path / "local", jobs=2)
    dask = run_sweep(sweep, tmp_path / "dask", jobs=2, executor="dask")
    assert len(dask.records) == 18
    assert dask.rows() == local.rows()
    summary = "summary.csv"
    assert (tmp_path / "dask" / summary).read_bytes() == (tmp_path / "local" / summary).read_bytes()


def test_sweep_command_writes_summary_and_plots_and_plot_reads_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = [
        "sweep",
        "--hw",
        TINY,
        "--workload",
        "tiny_cnn",
        "--scheme",
        "baseline",
        "--scheme",
        "bnff",
        "--grid",
        "llc.size=64KiB..1MiB*4",
        "--batch",
        "2",
        "--out",
        str(tmp_path),
        "--jobs",
        "1",
        "--plot",
    ]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "6 points, 0 stored already, 6 to run" in out
    assert "6 points done, 0 failed" in out
    for name in ("summary.csv", "sweep_speedup.png", "sweep_traffic.png", RESULTS_FILE):
        assert (tmp_path / name).exists()
    assert main(arguments) == 0
    assert "6 points, 6 stored already, 0 to run" in capsys.readouterr().out
    figure = tmp_path / "from_folder.svg"
    assert (
        main(["plot", str(tmp_path), "--kind", "speedup", "--x", "llc.size", "--out", str(figure)])
        == 0
    )
    assert figure.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--grid", "llc.size=64KiB,100B"], "grid point llc.size=100B"),
        (["--grid", "llc.colour=1,2"], "llc.colour"),
        (["--grid", "batch=2,zero"], "--grid batch=zero: expected a positive whole number"),
        (["--scheme", "bnfff"], "unknown scheme"),
    ],
)
def test_sweep_command_refuses_a_bad_grid_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code = main(["sweep", "--hw", TINY, "--workload", "tiny_cnn", *arguments, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_sweep_command_takes_a_sweep_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_file = tmp_path / "llc.yaml"
    sweep_file.write_text(
        f"hw: {TINY}\nworkloads: tiny_cnn\nschemes: [baseline, bnff]\nbatch: 2\n"
        "grid:\n  llc.size: 64KiB..256KiB*4\n"
    )
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 0
    assert "4 points done, 0 failed" in capsys.readouterr().out
    both = ["sweep", str(sweep_file), "--hw", TINY, "--out", str(tmp_path / "x")]
    assert main(both) == 2
    assert "a sweep file replaces --hw" in capsys.readouterr().err


def test_sweep_results_become_a_dataframe(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    results = run_sweep(
        Sweep(hw=TINY, workloads=("tiny_cnn",), batch=2, grid=parse_grid(["cores.count=1,2"])),
        tmp_path,
        jobs=1,
    )
    frame = results.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["cores.count"]) == [1, 1, 2, 2]  # counts are numbers, not labels
    assert list(frame["scheme"]) == ["baseline", "bnff"] * 2
    assert frame["cycles"].tolist() == [row["cycles"] for row in results.rows()]
