"""Sweeps: a grid of points, run in parallel (local processes or Dask), stored as they finish.

A sweep is a hardware file with `--set` overrides, workloads, schemes, a fidelity and a grid: keys
(hardware keys, or `batch`, `image`, `workload`, `scheme`) with their values. Its tasks are every
combination of the grid's values (the first key outermost) × workload × scheme; each task is keyed
by a digest of everything that determines its result (the resolved machine, the network, the
scheme and its options, the fidelity and tile count, the bnsim version). Every task is planned and
validated before anything runs, so a bad key or value fails at once.

Finished tasks are appended to DIR/results.jsonl as they arrive, one JSON object per line, flushed
and fsynced: killing the sweep loses at most the tasks in flight, and a rerun skips every task whose
digest is stored (a torn last line from a kill is dropped). A failed task is stored with its
message and does not stop the sweep; `retry_failed` runs it again. DIR/summary.csv holds one row
per task in grid order with only simulated quantities, so two runs of a sweep give identical files.
"""

from __future__ import annotations

from bnsim.experiment.sweeps.grid import POINT_KEYS, Executor, Sweep, grid_values, parse_grid
from bnsim.experiment.sweeps.plan import Task, plan
from bnsim.experiment.sweeps.run import Outcome, SweepResults, execute, run_sweep, sweep
from bnsim.experiment.sweeps.store import RESULTS_FILE, Store, records_of
from bnsim.experiment.sweeps.stored import StoredSweep, shared_context, stored_points
from bnsim.experiment.sweeps.summary import (
    SUMMARY_COLUMNS,
    SUMMARY_FILE,
    summary_columns,
    summary_rows,
    write_summary,
)
from bnsim.experiment.sweeps.sweepfile import load_sweep_file

__all__ = [
    "POINT_KEYS",
    "RESULTS_FILE",
    "SUMMARY_COLUMNS",
    "SUMMARY_FILE",
    "Executor",
    "Outcome",
    "Store",
    "StoredSweep",
    "Sweep",
    "SweepResults",
    "Task",
    "execute",
    "grid_values",
    "load_sweep_file",
    "parse_grid",
    "plan",
    "records_of",
    "run_sweep",
    "shared_context",
    "stored_points",
    "summary_columns",
    "summary_rows",
    "sweep",
    "write_summary",
]
