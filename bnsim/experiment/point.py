"""One point of the design space: a machine, a workload and schemes, simulated; its result document.

`run_point` is what `bnsim run` calls (and sweeps will): it builds each scheme's schedule, simulates
it, optionally in parallel processes, and returns the runs in the order asked.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import Any

from bnsim.config.machine import Machine
from bnsim.experiment.parallel import process_pool
from bnsim.graph import Network, summarize
from bnsim.result import RunResult, result_document
from bnsim.result.timeline import Timeline
from bnsim.schemes import SchemeSpec, build_schedule, parse_scheme
from bnsim.sim import simulate
from bnsim.sim.engine import KernelProgress
from bnsim.trace import SimOptions, library_reorders


@dataclass(frozen=True, slots=True)
class Point:
    """The inputs of one simulation point."""

    machine: Machine
    network: Network
    schemes: tuple[SchemeSpec, ...]
    options: SimOptions

    def workload_dict(self) -> dict[str, Any]:
        """The `workload` block of the result document."""
        summary = summarize(self.network, dtype_bytes=self.machine.dtype_bytes())
        return {
            "name": summary.name,
            "batch": summary.batch,
            "input": list(summary.input),
            "params": summary.params,
            "macs_per_sample": summary.macs_per_sample,
        }


def make_point(
    machine: Machine,
    network: Network,
    schemes: Sequence[str | SchemeSpec],
    options: SimOptions | None = None,
) -> Point:
    """Validate the schemes and options of a point.

    Raises:
        ConfigError: a bad scheme spec or options that cannot simulate the machine.
    """
    specs = tuple(parse_scheme(s) if isinstance(s, str) else s for s in schemes)
    options = options or SimOptions()
    options.check(machine)
    return Point(machine=machine, network=network, schemes=specs, options=options)


Progress = Callable[[RunResult], None]  # called as each run finishes (in any order)


def run_point(point: Point, *, jobs: int = 1, progress: Progress | None = None) -> list[RunResult]:
    """Simulate every scheme of the point; `jobs` > 1 runs schemes in parallel processes."""
    return run_tasks([(point, spec) for spec in point.schemes], jobs=jobs, progress=progress)


def run_tasks(
    tasks: Sequence[tuple[Point, SchemeSpec]],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[RunResult]:
    """Simulate (point, scheme) pairs; results in task order, `jobs` > 1 in parallel processes."""
    return [run for run, _ in _run(_simulate_plain, tasks, jobs, progress)]


def run_point_with_timelines(
    point: Point, *, jobs: int = 1, progress: Progress | None = None
) -> list[tuple[RunResult, Timeline]]:
    """run_point, recording each scheme's timeline too (fast and line fidelity; slower)."""
    tasks = [(point, spec) for spec in point.schemes]
    return [
        (run, timeline)
        for run, timeline in _run(_simulate_with_timeline, tasks, jobs, progress)
        if timeline is not None
    ]


def simulate_scheme(
    point: Point, spec: SchemeSpec, *, on_kernel: KernelProgress | None = None
) -> RunResult:
    """One scheme of a point, simulated at the point's fidelity (`on_kernel`: see simulate)."""
    schedule = build_schedule(point.network, spec, reorders=library_reorders(point.machine))
    return simulate(schedule, point.machine, point.options, on_kernel=on_kernel)


def _simulate_plain(point: Point, spec: SchemeSpec) -> tuple[RunResult, None]:
    return simulate_scheme(point, spec), None


def _simulate_with_timeline(point: Point, spec: SchemeSpec) -> tuple[RunResult, Timeline]:
    timeline = Timeline(scheme=spec.name, clock_hz=point.machine.cores.clock_hz)
    schedule = build_schedule(point.network, spec, reorders=library_reorders(point.machine))
    return simulate(schedule, point.machine, point.options, timeline=timeline), timeline


def _run(
    function: Callable[[Point, SchemeSpec], tuple[RunResult, Timeline | None]],
    tasks: Sequence[tuple[Point, SchemeSpec]],
    jobs: int,
    progress: Progress | None,
) -> list[tuple[RunResult, Timeline | None]]:
    if jobs <= 1 or len(tasks) <= 1:
        done = []
        for point, spec in tasks:
            done.append(function(point, spec))
            if progress is not None:
                progress(done[-1][0])
        return done
    # tasks of one point share its network in a worker too, so that what is remembered per network
    # (the library's work splits, schedules) serves all of that worker's schemes
    call = f"{os.getpid()}.{next(_CALLS)}"
    keys = {id(point): f"{call}.{index}" for index, (point, _) in enumerate(tasks)}
    with process_pool(min(jobs, len(tasks))) as pool:
        futures = [
            pool.submit(_with_shared_point, function, keys[id(point)], point, spec)
            for point, spec in tasks
        ]
        if progress is not None:
            for future in as_completed(futures):
                progress(future.result()[0])
        return [future.result() for future in futures]


_CALLS = itertools.count()
_WORKER_POINTS: dict[str, Point] = {}  # in a worker: the points of the current call, by key


def _with_shared_point(
    function: Callable[[Point, SchemeSpec], tuple[RunResult, Timeline | None]],
    key: str,
    point: Point,
    spec: SchemeSpec,
) -> tuple[RunResult, Timeline | None]:
    """`function(point, spec)` with the first copy of `point` this worker received (each task
    arrives with its own unpickled copy)."""
    shared = _WORKER_POINTS.get(key)
    if shared is None:
        if len(_WORKER_POINTS) >= 8:
            _WORKER_POINTS.clear()
        shared = _WORKER_POINTS[key] = point
    return function(shared, spec)


def point_document(point: Point, runs: Sequence[RunResult], version: str) -> dict[str, Any]:
    """The result document (docs/results.md) of a simulated point."""
    return result_document(point.machine.to_dict(), point.workload_dict(), runs, version)
