"""Cross-validation of the fidelities: one point simulated at line, fast and analytic fidelity.

`crosscheck` runs every scheme of a point at every fidelity; `differences` compares each run with
the line-fidelity run of the same scheme (the exact one): totals, and DRAM bytes and cycles per
phase and per layer kind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, replace

from bnsim.experiment.parallel import process_pool
from bnsim.experiment.point import Point, Progress, simulate_scheme
from bnsim.result import RunResult
from bnsim.schemes import SchemeSpec
from bnsim.trace import FIDELITIES, Fidelity

REFERENCE: Fidelity = "line"
ORDER: tuple[Fidelity, ...] = (REFERENCE, *(f for f in FIDELITIES if f != REFERENCE))
GROUPS = ("total", "phase", "layer_kind")


@dataclass(frozen=True, slots=True)
class TimedRun:
    """A run and the wall-clock seconds its simulation took (not part of the result: it varies)."""

    run: RunResult
    wall_seconds: float


@dataclass(frozen=True, slots=True)
class Difference:
    """One fidelity's DRAM bytes and cycles against line fidelity's, for a scheme and a group."""

    scheme: str
    fidelity: str
    group: str  # "total", "phase" or "layer_kind"
    key: str  # the phase or layer kind ("" for the total)
    dram_bytes: int
    reference_dram_bytes: int
    cycles: int
    reference_cycles: int

    def dram_relative(self) -> float | None:
        """(bytes − line's) / line's; None where line fidelity moved no bytes."""
        return _relative(self.dram_bytes, self.reference_dram_bytes)

    def cycles_relative(self) -> float | None:
        """(cycles − line's) / line's; None where line fidelity spent no cycles."""
        return _relative(self.cycles, self.reference_cycles)


def crosscheck(
    point: Point,
    fidelities: Sequence[Fidelity] = ORDER,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> list[TimedRun]:
    """Simulate every scheme of `point` at every fidelity (scheme-major order); `progress` is
    called with each run as it finishes."""
    tasks = [
        (replace(point, options=replace(point.options, fidelity=fidelity)), spec)
        for spec in point.schemes
        for fidelity in fidelities
    ]
    if jobs <= 1 or len(tasks) <= 1:
        timed = []
        for task_point, spec in tasks:
            timed.append(_timed(task_point, spec))
            if progress is not None:
                progress(timed[-1].run)
        return timed
    with process_pool(min(jobs, len(tasks))) as pool:
        futures = [pool.submit(_timed, task_point, spec) for task_point, spec in tasks]
        if progress is not None:
            for future in as_completed(futures):
                progress(future.result().run)
        return [future.result() for future in futures]


def differences(runs: Sequence[RunResult]) -> list[Difference]:
    """Every run that has a line-fidelity run of its scheme, compared with it: total, per phase,
    per layer kind (the union of the keys either run has)."""
    reference = {run.scheme: run for run in runs if run.fidelity == REFERENCE}
    found = []
    for run in runs:
        line = reference.get(run.scheme)
        if line is None:
            continue
        found.append(
            Difference(
                run.scheme, run.fidelity, "total", "", run.dram_bytes(), line.dram_bytes(),
                run.cycles, line.cycles,
            )
        )  # fmt: skip
        for group in GROUPS[1:]:
            mine, theirs = _by(run, group), _by(line, group)
            for key in sorted(set(mine) | set(theirs)):
                dram, cycles = mine.get(key, (0, 0))
                line_dram, line_cycles = theirs.get(key, (0, 0))
                found.append(
                    Difference(
                        run.scheme, run.fidelity, group, key, dram, line_dram, cycles, line_cycles
                    )
                )
    return found


def _timed(point: Point, spec: SchemeSpec) -> TimedRun:
    start = time.perf_counter()
    run = simulate_scheme(point, spec)
    return TimedRun(run, time.perf_counter() - start)


def _by(run: RunResult, group: str) -> dict[str, tuple[int, int]]:
    return {
        row[group]: (row["dram_read_bytes"] + row["dram_write_bytes"], row["cycles"])
        for row in run.breakdown(group)
    }


def _relative(value: int, reference: int) -> float | None:
    return (value - reference) / reference if reference else None
