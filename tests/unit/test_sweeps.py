"""Sweeps: grids and ranges, validation before running, the store, resume, failures, summaries."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import bnsim.experiment.sweeps.run as sweep_module  # where a task calls simulate_scheme
from bnsim.config.machine import load_machine
from bnsim.errors import ConfigError, InfeasibleError
from bnsim.experiment.point import Point
from bnsim.experiment.sweeps import (
    RESULTS_FILE,
    Store,
    Sweep,
    grid_values,
    load_sweep_file,
    parse_grid,
    plan,
    run_sweep,
    stored_points,
    summary_columns,
    summary_rows,
)
from bnsim.graph import load_workload
from bnsim.result import RunResult
from bnsim.schemes import SchemeSpec

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "hwconfigs" / "tiny.yaml")


def tiny_sweep(**changes: object) -> Sweep:
    fields: dict[str, object] = {
        "hw": TINY,
        "workloads": ("tiny_cnn",),
        "schemes": ("baseline", "bnff"),
        "grid": parse_grid(["llc.size=64KiB,256KiB", "batch=2,4"]),
    }
    fields.update(changes)
    return Sweep(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2MiB..64MiB*2", ("2MiB", "4MiB", "8MiB", "16MiB", "32MiB", "64MiB")),
        ("2MiB..60MiB*2", ("2MiB", "4MiB", "8MiB", "16MiB", "32MiB")),
        ("512KiB..2MiB*2", ("512KiB", "1024KiB", "2048KiB")),
        ("4..16+4", ("4", "8", "12", "16")),
        ("0.5..1.5+0.25", ("0.5", "0.75", "1", "1.25", "1.5")),
        ("10GB/s,20GB/s", ("10GB/s", "20GB/s")),
        ("7", ("7",)),
    ],
)
def test_grid_values_expand_lists_and_ranges(text: str, expected: tuple[str, ...]) -> None:
    assert grid_values("key", text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,,2", "separated by commas"),
        ("2MiB..64MiB*1", "FACTOR > 1"),
        ("8..4+1", "range is empty"),
        ("2MiB..8GHz*2", "units of one quantity"),
        ("2MiB..8MiB+1GHz", "units of one quantity"),
        ("1..5+0", "STEP > 0"),
        ("1..5*2MiB", r"START\.\.STOP\*FACTOR"),
    ],
)
def test_bad_grid_values_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        grid_values("llc.size", text)


def test_a_grid_key_given_twice_or_without_values_is_refused() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["batch=2", "batch=4"])
    with pytest.raises(ConfigError, match="expected KEY=VALUES"):
        parse_grid(["batch"])


def test_plan_orders_tasks_first_key_outermost_with_distinct_digests() -> None:
    tasks = plan(tiny_sweep())
    assert [(dict(t.values)["llc.size"], dict(t.values)["batch"], t.scheme) for t in tasks] == [
        ("64KiB", "2", "baseline"),
        ("64KiB", "2", "bnff"),
        ("64KiB", "4", "baseline"),
        ("64KiB", "4", "bnff"),
        ("256KiB", "2", "baseline"),
        ("256KiB", "2", "bnff"),
        ("256KiB", "4", "baseline"),
        ("256KiB", "4", "bnff"),
    ]
    assert len({task.key for task in tasks}) == 8
    assert [task.key for task in plan(tiny_sweep())] == [task.key for task in tasks]
    assert tasks[0].machine.llc.size_bytes == 64 * 1024
    assert tasks[2].network.batch == 4


def test_a_bad_grid_value_fails_before_anything_runs(tmp_path: Path) -> None:
    sweep = tiny_sweep(grid=parse_grid(["llc.size=64KiB,100B"]))
    with pytest.raises(ConfigError, match=r"grid point llc\.size=100B: .*llc"):
        run_sweep(sweep, tmp_path / "out", jobs=1)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="unknown scheme"):
        plan(tiny_sweep(schemes=("baseline", "bnfff")))
    with pytest.raises(ConfigError, match="did you mean"):
        plan(tiny_sweep(grid=parse_grid(["llc.sise=64KiB"])))


def test_a_sweep_stores_every_point_and_a_rerun_runs_nothing(tmp_path: Path) -> None:
    first = run_sweep(tiny_sweep(), tmp_path, jobs=2)
    assert len(first.records) == 8
    assert all(record["status"] == "ok" for record in first.records)
    summary = (tmp_path / "summary.csv").read_text()
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    seen: list[int] = []
    again = run_sweep(tiny_sweep(), tmp_path, jobs=2, on_plan=lambda todo, _: seen.append(todo))
    assert seen == [0]
    assert (tmp_path / RESULTS_FILE).read_text().splitlines() == lines
    assert (tmp_path / "summary.csv").read_text() == summary
    assert again.rows() == first.rows()
    header = summary.splitlines()[0].split(",")
    assert header[:3] == ["llc.size", "llc.size_bytes", "workload"]
    baseline, bnff = again.rows()[:2]
    assert baseline["speedup_vs_baseline"] == 1.0
    assert bnff["speedup_vs_baseline"] == baseline["cycles"] / bnff["cycles"]


def test_summary_rows_do_not_depend_on_jobs(tmp_path: Path) -> None:
    one = run_sweep(tiny_sweep(), tmp_path / "one", jobs=1)
    two = run_sweep(tiny_sweep(), tmp_path / "two", jobs=2)
    assert one.rows() == two.rows()
    assert (tmp_path / "one" / "summary.csv").read_bytes() == (
        tmp_path / "two" / "summary.csv"
    ).read_bytes()


def test_a_failing_point_is_stored_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = sweep_module.simulate_scheme

    def flaky(point: Point, spec: SchemeSpec) -> RunResult:
        if point.network.batch == 4 and spec.name == "bnff":
            raise InfeasibleError("no room for this tile")
        if point.network.batch == 4:
            raise RuntimeError("a bug")
        return real(point, spec)

    monkeypatch.setattr(sweep_module, "simulate_scheme", flaky)  # jobs=1 runs in this process
    results = run_sweep(tiny_sweep(), tmp_path, jobs=1)
    errors = {(r["values"]["batch"], r["scheme"]): r["error"] for r in results.failed()}
    assert errors == {
        ("4", "baseline"): "unexpected RuntimeError: a bug",
        ("4", "bnff"): "InfeasibleError: no room for this tile",
    }
    assert len(results.failed()) == 4  # batch 4 at both LLC sizes
    assert sum(record["status"] == "ok" for record in results.records) == 4
    rows = {(r["llc.size"], r["batch"], r["scheme"]): r for r in results.rows()}
    assert rows["64KiB", 4, "bnff"]["status"] == "failed"
    assert rows["64KiB", 4, "bnff"]["cycles"] == ""
    seen: list[int] = []
    run_sweep(tiny_sweep(), tmp_path, jobs=1, on_plan=lambda todo, _: seen.append(todo))
    monkeypatch.setattr(sweep_module, "simulate_scheme", real)
    retried = run_sweep(
        tiny_sweep(), tmp_path, jobs=1, retry_failed=True, on_plan=lambda t, _: seen.append(t)
    )
    assert seen == [0, 4]
    assert retried.failed() == []
    assert len(Store(tmp_path).load()) == 8


def test_a_torn_last_line_is_dropped_and_rewritten(tmp_path: Path) -> None:
    run_sweep(tiny_sweep(), tmp_path, jobs=1)
    path = tmp_path / RESULTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]) + lines[5][: len(lines[5]) // 2])  # killed mid-write
    assert len(Store(tmp_path).load()) == 5
    results = run_sweep(tiny_sweep(), tmp_path, jobs=1)
    assert len(results.records) == 8
    stored = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert sorted(record["key"] for record in stored) == sorted(t.key for t in results.tasks)


def test_a_corrupt_store_line_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / RESULTS_FILE).write_text('{"key": "x", "status": "ok"}\nnot json\n{}\n')
    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        Store(tmp_path).load()


def test_a_sweep_file_gives_the_same_tasks_as_flags(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        f"hw: {TINY}\n"
        "workloads: tiny_cnn\n"
        "schemes: [baseline, bnff]\n"
        "grid:\n"
        "  llc.size: [64KiB, 256KiB]\n"
        "  batch: 2..4*2\n"
    )
    assert [t.key for t in plan(load_sweep_file(sweep_file))] == [t.key for t in plan(tiny_sweep())]
    sweep_file.write_text(f"hw: {TINY}\nworkloads: [tiny_cnn]\ngird: {{batch: [2]}}\n")
    with pytest.raises(ConfigError, match=r"sweep\.yaml: .*gird.*did you mean 'grid'"):
        load_sweep_file(sweep_file)
    sweep_file.write_text(f"hw: {TINY}\nworkloads: [tiny_cnn]\nstep: 64\n")
    with pytest.raises(ConfigError, match=r"sweep\.yaml: step: .*has no unit"):
        load_sweep_file(sweep_file)


def test_the_step_is_part_of_a_points_identity(tmp_path: Path) -> None:
    """A point simulated with another step is another point (never a stored result reused)."""
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(f"hw: {TINY}\nworkloads: [tiny_cnn]\nstep: 128KiB\n")
    stepped = plan(load_sweep_file(sweep_file))
    assert stepped[0].options.step_bytes == 128 << 10
    assert [t.key for t in stepped] != [t.key for t in plan(tiny_sweep(grid=()))]
    assert [t.key for t in plan(tiny_sweep(grid=(), step_bytes=512 << 10))] == [
        t.key for t in plan(tiny_sweep(grid=()))
    ]


def test_stored_points_group_the_other_grid_values(tmp_path: Path) -> None:
    run_sweep(tiny_sweep(), tmp_path, jobs=1)
    stored = stored_points(tmp_path, "llc.size")
    groups, unit = stored.groups, stored.unit
    assert unit == "MiB"
    assert stored.context == "tiny_cnn, on tiny"  # two batches: in the group labels
    assert sorted(groups) == ["batch=2", "batch=4"]
    assert [x for x, _ in groups["batch=2"]] == [0.0625, 0.25]
    assert [run.scheme for run in groups["batch=2"][0][1]] == ["baseline", "bnff"]
    with pytest.raises(ConfigError, match="not a grid key"):
        stored_points(tmp_path, "cores.count")


def test_a_grids_cache_sizes_round_down_to_whole_sets_with_a_note(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cmp16's LLC has 11 ways of 64 B lines (704 B a set): 2, 4 and 8 MiB are not whole sets.
    `--set` keeps its size exact; a grid's ways (here from --set) decide the rounding."""
    cmp16 = str(REPO / "hwconfigs" / "cmp16.yaml")
    sweep = Sweep(
        hw=cmp16,
        workloads=("tiny_cnn",),
        schemes=("baseline",),
        grid=parse_grid(["llc.size=2MiB..8MiB*2"]),
    )
    with caplog.at_level(logging.WARNING, logger="bnsim.experiment.sweeps"):
        tasks = plan(sweep)
    assert [task.machine.llc.size_bytes for task in tasks] == [2978 * 704, 5957 * 704, 11915 * 704]
    assert (
        "grid point llc.size=2MiB: llc.size 2MiB is not whole sets of 11 ways × 64B; simulated at "
        "2,096,512 B (2,978 sets)"
    ) in caplog.text
    assert [dict(task.values)["llc.size"] for task in tasks] == ["2MiB", "4MiB", "8MiB"]
    sixteen_ways = plan(Sweep(**{**sweep.__dict__, "overrides": ("llc.ways=16",)}))
    assert [task.machine.llc.size_bytes for task in sixteen_ways] == [2**21, 2**22, 2**23]
    with pytest.raises(ConfigError, match=r"size 2MiB is not a multiple of ways × block"):
        load_machine(cmp16, ["llc.size=2MiB"])


def test_a_sweep_takes_a_workload_files_own_batch_as_load_workload_does() -> None:
    path = str(REPO / "workloads" / "custom_resnet_cifar.yaml")
    tasks = plan(Sweep(hw=TINY, workloads=(path,), schemes=("baseline",)))
    assert tasks[0].network.batch == load_workload(path).batch == 64
    assert (
        plan(Sweep(hw=TINY, workloads=("tiny_cnn",), schemes=("baseline",)))[0].network.batch == 32
    )


def test_rows_hold_each_quantity_as_a_number_in_a_column_named_with_its_unit() -> None:
    cmp16 = str(REPO / "hwconfigs" / "cmp16.yaml")
    sweep = Sweep(
        hw=cmp16,
        workloads=("tiny_cnn",),
        schemes=("baseline",),
        grid=parse_grid(["llc.size=4MiB,16MiB", "cores.count=4,8", "cores.clock=2GHz"]),
        overrides=("llc.ways=16",),
    )
    tasks = plan(sweep)
    records = [
        {"key": task.key, "status": "failed", "batch": 32, "image": 16, "fidelity": "fast",
         "run": None, "error": "not run"}
        for task in tasks
    ]  # fmt: skip
    rows = summary_rows(tasks, records)
    assert [(r["llc.size"], r["llc.size_bytes"], r["cores.count"]) for r in rows] == [
        ("4MiB", 2**22, 4),
        ("4MiB", 2**22, 8),
        ("16MiB", 2**24, 4),
        ("16MiB", 2**24, 8),
    ]
    assert rows[0]["cores.clock_hz"] == 2e9
    assert summary_columns(tasks)[:6] == [
        "llc.size",
        "llc.size_bytes",
        "cores.count",
        "cores.clock",
        "cores.clock_hz",
        "workload",
    ]
