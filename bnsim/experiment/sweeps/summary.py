"""DIR/summary.csv: one row per task in grid order, grid values as numbers with units."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bnsim.config.keys import key_value
from bnsim.experiment.sweeps.grid import POINT_KEYS
from bnsim.experiment.sweeps.plan import Task
from bnsim.files import write_text_whole

SUMMARY_FILE = "summary.csv"


SUMMARY_COLUMNS = (
    "workload",
    "batch",
    "image",
    "scheme",
    "fidelity",
    "status",
    "cycles",
    "seconds",
    "flops",
    "dram_read_bytes",
    "dram_write_bytes",
    "speedup_vs_baseline",
    "dram_vs_baseline",
    "error",
)


def summary_rows(tasks: Sequence[Task], records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per stored task, in grid order: grid values, then SUMMARY_COLUMNS."""
    grid_keys = _grid_columns(tasks)
    by_key = {record["key"]: record for record in records}
    baselines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for task in tasks:
        record = by_key.get(task.key)
        if record and record["status"] == "ok" and task.scheme.split(":")[0] == "baseline":
            baselines[_group(task)] = record["run"]
    rows = []
    for task in tasks:
        record = by_key.get(task.key)
        if record is None:
            continue
        run = record["run"] or {}
        baseline = baselines.get(_group(task))
        row: dict[str, Any] = {key: dict(task.values)[key] for key in grid_keys}
        row.update(_resolved(task, grid_keys))
        row.update(
            workload=task.workload,
            batch=record["batch"],
            image=record["image"],
            scheme=task.scheme,
            fidelity=record["fidelity"],
            status=record["status"],
            cycles=run.get("cycles", ""),
            seconds=run.get("seconds", ""),
            flops=run.get("flops", ""),
            dram_read_bytes=run.get("dram_read_bytes", ""),
            dram_write_bytes=run.get("dram_write_bytes", ""),
            speedup_vs_baseline=baseline["cycles"] / run["cycles"] if baseline and run else "",
            dram_vs_baseline=(
                (run["dram_read_bytes"] + run["dram_write_bytes"])
                / (baseline["dram_read_bytes"] + baseline["dram_write_bytes"])
                if baseline and run
                else ""
            ),
            error=record["error"] or "",
        )
        rows.append(row)
    return rows


def _resolved(task: Task, grid_keys: Sequence[str]) -> dict[str, Any]:
    """The machine's value of each hardware grid key, as numbers: a quantity in its own column
    named with its unit (`llc.size_bytes`, next to the label `2MiB` as given); a count or a
    fraction in place of its label."""
    columns: dict[str, Any] = {}
    for key in grid_keys:
        if key in POINT_KEYS:
            continue
        value, suffix = key_value(task.machine, key)
        if suffix:
            columns[f"{key}_{suffix}"] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            columns[key] = value
    return columns


def summary_columns(tasks: Sequence[Task]) -> list[str]:
    """The columns of summary rows: each grid key (with its value in its unit after it, for a
    quantity), then SUMMARY_COLUMNS."""
    grid_keys = _grid_columns(tasks)
    values = _resolved(tasks[0], grid_keys) if tasks else {}
    columns = []
    for key in grid_keys:
        columns.append(key)
        columns += [column for column in values if column.startswith(f"{key}_")]
    return [*columns, *SUMMARY_COLUMNS]


def _grid_columns(tasks: Sequence[Task]) -> list[str]:
    """The grid's keys that are not summary columns already (batch, image, workload, scheme)."""
    keys = [key for key, _ in tasks[0].values] if tasks else []
    return [key for key in keys if key not in SUMMARY_COLUMNS]


def _group(task: Task) -> tuple[Any, ...]:
    """The tasks that share a baseline: same grid values except the scheme, same workload."""
    return (tuple((k, v) for k, v in task.values if k != "scheme"), task.workload)


def write_summary(
    folder: str | Path, tasks: Sequence[Task], records: Sequence[dict[str, Any]]
) -> Path:
    """Write folder/summary.csv (through a temporary file and a rename)."""
    rows = summary_rows(tasks, records)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=summary_columns(tasks), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(folder) / SUMMARY_FILE
    write_text_whole(path, buffer.getvalue())
    return path
