"""Running a sweep's tasks in local processes or on Dask, storing each as it finishes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from bnsim.config.machine import Machine
from bnsim.errors import BnsimError, ConfigError
from bnsim.experiment.parallel import process_pool
from bnsim.experiment.point import make_point, simulate_scheme
from bnsim.experiment.sweeps.grid import Executor, Sweep, grid_values
from bnsim.experiment.sweeps.plan import Task, plan
from bnsim.experiment.sweeps.store import Store
from bnsim.experiment.sweeps.summary import summary_rows, write_summary
from bnsim.graph import Network
from bnsim.result import RunResult
from bnsim.schemes import DEFAULT_SCHEMES
from bnsim.trace import SimOptions


@dataclass
class SweepResults:
    """The stored outcome of every task of a sweep, in grid order (missing tasks left out)."""

    tasks: list[Task]
    records: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per task: grid values, workload, scheme, status and the totals."""
        return summary_rows(self.tasks, self.records)

    def failed(self) -> list[dict[str, Any]]:
        """Records of the tasks that failed."""
        return [record for record in self.records if record["status"] == "failed"]

    def to_dataframe(self) -> Any:
        """The rows as a pandas DataFrame (needs pandas).

        Raises:
            ImportError: pandas is not installed.
        """
        import pandas as pd  # noqa: PLC0415 (optional)

        return pd.DataFrame(self.rows())


Progress = Callable[[dict[str, Any]], None]  # called with each record as it is stored


def run_sweep(
    sweep: Sweep,
    folder: str | Path,
    *,
    jobs: int | None = None,
    executor: Executor = "local",
    scheduler: str | None = None,
    retry_failed: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[int, int], None] | None = None,
) -> SweepResults:
    """Run every task of `sweep` not yet stored in `folder`; store each as it finishes.

    `jobs` processes (default: the CPUs) for the local executor; for Dask, the scheduler at
    `scheduler` or a LocalCluster of `jobs` single-threaded workers. `on_plan` is told (tasks to
    run, tasks in all) before anything runs. Writes `folder`/summary.csv at the end.

    Raises:
        ConfigError: a bad sweep (before anything runs), or Dask requested but not installed.
    """
    tasks = plan(sweep)
    store = Store(folder)
    stored = store.load()
    pending = [
        task
        for task in tasks
        if task.key not in stored or (retry_failed and stored[task.key]["status"] == "failed")
    ]
    if on_plan is not None:
        on_plan(len(pending), len(tasks))
    Path(folder).mkdir(parents=True, exist_ok=True)
    workers = jobs or os.cpu_count() or 1
    if pending:
        results = (
            _run_dask(pending, workers, scheduler)
            if executor == "dask"
            else _run_local(pending, workers)
        )
        for task, outcome in results:
            record = _record(task, outcome)
            store.append(record)
            stored[task.key] = record
            if progress is not None:
                progress(record)
    records = [stored[task.key] for task in tasks if task.key in stored]
    write_summary(folder, tasks, records)
    return SweepResults(tasks, records)


class Outcome(NamedTuple):
    """How one task ended: "ok" and the run's summary, or "failed" and the error's message."""

    status: str
    run: dict[str, Any] | None
    error: str | None


def execute(machine: Machine, network: Network, scheme: str, options: SimOptions) -> Outcome:
    """Simulate one task; a failure becomes a stored outcome, never an exception."""
    try:
        point = make_point(machine, network, [scheme], options)
        run = simulate_scheme(point, point.schemes[0])
    except BnsimError as err:
        return Outcome("failed", None, f"{type(err).__name__}: {err}")
    except Exception as err:  # a bug in one point must not end the sweep
        return Outcome("failed", None, f"unexpected {type(err).__name__}: {err}")
    return Outcome("ok", _run_summary(run), None)


def _run_local(tasks: list[Task], workers: int) -> Iterator[tuple[Task, Outcome]]:
    if workers <= 1 or len(tasks) == 1:
        for task in tasks:
            yield task, execute(task.machine, task.network, task.scheme, task.options)
        return
    with process_pool(min(workers, len(tasks))) as pool:
        futures = {
            pool.submit(execute, task.machine, task.network, task.scheme, task.options): task
            for task in tasks
        }
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def _run_dask(
    tasks: list[Task], workers: int, scheduler: str | None
) -> Iterator[tuple[Task, Outcome]]:
    try:
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415 (optional extra)
        from dask.distributed import as_completed as dask_completed  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "--executor dask needs Dask: pip install 'bnsim[dask]' (or use --executor local)"
        ) from None
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    client = Client(scheduler or cluster)
    try:
        futures = {
            client.submit(
                execute, task.machine, task.network, task.scheme, task.options, pure=False
            ): task
            for task in tasks
        }
        for future in dask_completed(list(futures)):
            yield futures[future], future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _run_summary(run: RunResult) -> dict[str, Any]:
    """What the store keeps of a run: its totals, breakdown and cache counters."""
    return run.to_dict(details=False)


def _record(task: Task, outcome: Outcome) -> dict[str, Any]:
    return {
        "key": task.key,
        "index": task.index,
        "values": dict(task.values),
        "workload": task.workload,
        "machine": task.machine.name,
        "hardware": task.machine.to_dict(),
        "batch": task.network.batch,
        "image": task.network.out_shape("input").h,
        "scheme": task.scheme,
        "fidelity": task.options.fidelity,
        "status": outcome.status,
        "run": outcome.run,
        "error": outcome.error,
    }


def sweep(
    hw: str | Path,
    workloads: str | Sequence[str],
    *,
    out: str | Path,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
    grid: Mapping[str, Sequence[object] | str] | None = None,
    overrides: Sequence[str] = (),
    batch: int | None = None,
    image: int | None = None,
    fidelity: str = "fast",
    jobs: int | None = None,
    executor: Executor = "local",
    scheduler: str | None = None,
    retry_failed: bool = False,
) -> SweepResults:
    """`bnsim sweep` as a function: run (or resume) a sweep, return its stored results.

    `grid` maps keys to lists of values or to a range text ("2MiB..64MiB*2"), in order (the first
    key outermost). `results.to_dataframe()` gives a pandas DataFrame.

    >>> results = sweep("hwconfigs/tiny.yaml", "tiny_cnn", out=getfixture("tmp_path"),
    ...                 grid={"llc.size": ["64KiB", "256KiB"]}, batch=2, jobs=1)
    >>> for row in results.rows():
    ...     print(row["llc.size"], row["scheme"], f"{row['speedup_vs_baseline']:.3f}")
    64KiB baseline 1.000
    64KiB bnff 1.126
    256KiB baseline 1.000
    256KiB bnff 1.124
    """
    axes = tuple(
        (key, grid_values(key, values) if isinstance(values, str) else tuple(map(str, values)))
        for key, values in (grid or {}).items()
    )
    spec = Sweep(
        hw=str(hw),
        workloads=(workloads,) if isinstance(workloads, str) else tuple(workloads),
        schemes=tuple(schemes),
        grid=axes,
        overrides=tuple(overrides),
        batch=batch,
        image=image,
        fidelity=fidelity,
    )
    return run_sweep(
        spec, out, jobs=jobs, executor=executor, scheduler=scheduler, retry_failed=retry_failed
    )
