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

import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bnsim import __version__, units
from bnsim.config.datafile import describe_errors, read_yaml
from bnsim.config.keys import key_value
from bnsim.config.machine import Machine, load_machine
from bnsim.errors import BnsimError, ConfigError
from bnsim.experiment.parallel import process_pool
from bnsim.experiment.point import make_point, simulate_scheme
from bnsim.graph import Network, load_workload
from bnsim.graph.load import network_to_dict
from bnsim.result import RunResult
from bnsim.schemes import DEFAULT_SCHEMES, parse_scheme
from bnsim.trace import FIDELITIES, SimOptions

Executor = Literal["local", "dask"]
logger = logging.getLogger(__name__)
POINT_KEYS = ("workload", "batch", "image", "scheme")  # grid keys that are not hardware keys
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.csv"
_RANGE = re.compile(
    r"^\s*(?P<start>[^,]+?)\s*\.\.\s*(?P<stop>[^,]+?)\s*(?P<op>[*+])\s*(?P<step>[^*+,]+?)\s*$"
)
_NUMBER = re.compile(
    r"^\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>[A-Za-z/]*)\s*$"
)


# --- the sweep and its grid ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """What to simulate: a machine, workloads, schemes, options and a grid of values."""

    hw: str
    workloads: tuple[str, ...]
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    grid: tuple[tuple[str, tuple[str, ...]], ...] = ()
    overrides: tuple[str, ...] = ()  # --set KEY=VALUE, applied before the grid's hardware keys
    batch: int | None = None
    image: int | None = None
    fidelity: str = "fast"
    tiles_per_core: int = 1
    step_bytes: int | None = None  # None: the default step (bnsim.trace.DEFAULT_STEP_BYTES)


def grid_values(key: str, text: str) -> tuple[str, ...]:
    """The values of `--grid key=text`: a comma-separated list, or a range.

    Ranges: `START..STOP*FACTOR` (geometric) or `START..STOP+STEP` (arithmetic), STOP included if
    reached, START and STOP with the same unit (if any).

    Raises:
        ConfigError: an empty list, or a malformed or empty range.

    >>> grid_values("llc.size", "2MiB..16MiB*2")
    ('2MiB', '4MiB', '8MiB', '16MiB')
    >>> grid_values("llc.size", "256KiB..1MiB*2")
    ('256KiB', '512KiB', '1024KiB')
    >>> grid_values("llc.size", "2MiB..8MiB+2MiB")
    ('2MiB', '4MiB', '6MiB', '8MiB')
    >>> grid_values("cores.count", "4..16+4")
    ('4', '8', '12', '16')
    >>> grid_values("batch", "8, 16,32")
    ('8', '16', '32')
    """
    match = _RANGE.match(text)
    if match is None:
        values = tuple(value.strip() for value in text.split(","))
        if not values or any(not value for value in values):
            raise ConfigError(f"--grid {key}={text}: expected values separated by commas")
        return values
    start, stop = _NUMBER.match(match["start"]), _NUMBER.match(match["stop"])
    step = _NUMBER.match(match["step"])
    if start is None or stop is None or step is None or (match["op"] == "*" and step["unit"]):
        raise ConfigError(
            f"--grid {key}={text}: a range is START..STOP*FACTOR or START..STOP+STEP, "
            "e.g. 2MiB..64MiB*2 or 4..16+4"
        )
    first = float(start["value"])
    last = float(stop["value"]) * _unit_ratio(stop["unit"], start["unit"], key, text)
    amount = float(step["value"])
    if match["op"] == "+":  # a step with a unit: 2MiB..32MiB+2MiB
        amount *= _unit_ratio(step["unit"] or start["unit"], start["unit"], key, text)
    if match["op"] == "*" and (amount <= 1 or first <= 0):
        raise ConfigError(f"--grid {key}={text}: a geometric range needs START > 0 and FACTOR > 1")
    if match["op"] == "+" and amount <= 0:
        raise ConfigError(f"--grid {key}={text}: an arithmetic range needs STEP > 0")
    found: list[str] = []
    value = first
    while value <= last * (1 + 1e-12):
        number = str(int(value)) if value == int(value) else f"{value:.9f}".rstrip("0")
        found.append(number + start["unit"])
        value = value * amount if match["op"] == "*" else value + amount
        if len(found) > 10_000:
            raise ConfigError(f"--grid {key}={text}: more than 10,000 values")
    if not found:
        raise ConfigError(f"--grid {key}={text}: the range is empty (START > STOP)")
    return tuple(found)


def _unit_ratio(unit: str, base: str, key: str, text: str) -> float:
    """How many `base` units one `unit` is (64KiB..1MiB means 64KiB..1024KiB)."""
    if unit == base:
        return 1.0
    try:
        value, quantity = units.axis_value(f"1{unit}")
        base_value, base_quantity = units.axis_value(f"1{base}")
    except ConfigError:
        base_quantity, quantity, value, base_value = "", "?", 0.0, 1.0
    if quantity != base_quantity or not base_value:
        raise ConfigError(f"--grid {key}={text}: START, STOP and STEP need units of one quantity")
    return value / base_value


def parse_grid(arguments: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`--grid key=values` arguments, in order.

    Raises:
        ConfigError: no '=', an empty key, a key given twice, or bad values.
    """
    grid: list[tuple[str, tuple[str, ...]]] = []
    for argument in arguments:
        key, equals, text = argument.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ConfigError(
                f"--grid {argument}: expected KEY=VALUES, e.g. llc.size=2MiB..64MiB*2"
            )
        if key in {known for known, _ in grid}:
            raise ConfigError(f"--grid {key}: given twice")
        grid.append((key, grid_values(key, text)))
    return tuple(grid)


class _SweepFile(BaseModel):
    """A sweep file: the flags of `bnsim sweep`, as YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hw: str = Field(description="hardware YAML file, relative to the sweep file")
    workloads: list[str] = Field(min_length=1)
    schemes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCHEMES), min_length=1)
    grid: dict[str, list[str | int | float] | str] = Field(default_factory=dict)
    set: list[str] = Field(default_factory=list)
    batch: int | None = Field(default=None, gt=0)
    image: int | None = Field(default=None, gt=0)
    fidelity: Literal["fast", "line", "analytic"] = "fast"
    tiles_per_core: int = Field(default=1, gt=0)
    step: str | int | None = Field(default=None, description="the most bytes one step issues")

    @field_validator("workloads", "schemes", "set", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def load_sweep_file(path: str | Path) -> Sweep:
    """A Sweep from a YAML file (keys: hw, workloads, schemes, grid, set, batch, image, fidelity,
    tiles_per_core, step); paths in it are relative to the file.

    Raises:
        ConfigError: naming the file and the bad key.
    """
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    try:
        parsed = _SweepFile.model_validate(raw)
    except ValidationError as err:
        lines = describe_errors(err, _SweepFile)
        raise ConfigError(f"{path}: {'; '.join(lines)}") from None
    grid = []
    for key, values in parsed.grid.items():
        if isinstance(values, str):
            grid.append((key, grid_values(key, values)))
        elif not values:
            raise ConfigError(f"{path}: grid.{key}: no values")
        else:
            grid.append((key, tuple(str(value) for value in values)))
    base = path.parent

    def relative(name: str) -> str:
        candidate = base / name
        return str(candidate) if candidate.exists() or not Path(name).exists() else name

    workloads = tuple(relative(w) if w.endswith((".yaml", ".yml")) else w for w in parsed.workloads)
    return Sweep(
        hw=relative(parsed.hw),
        workloads=workloads,
        schemes=tuple(parsed.schemes),
        grid=tuple(grid),
        overrides=tuple(parsed.set),
        batch=parsed.batch,
        image=parsed.image,
        fidelity=parsed.fidelity,
        tiles_per_core=parsed.tiles_per_core,
        step_bytes=None if parsed.step is None else _step_bytes(path, parsed.step),
    )


def _step_bytes(path: Path, text: str | int) -> int:
    try:
        return units.parse_bytes(text)
    except ConfigError as err:
        raise ConfigError(f"{path}: step: {err}") from None


# --- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One simulation of a sweep: a grid combination, a workload and a scheme."""

    index: int  # position in grid order
    values: tuple[tuple[str, str], ...]  # the grid's (key, value) of this task
    workload: str
    scheme: str
    machine: Machine
    network: Network
    options: SimOptions
    key: str  # digest of the inputs


def plan(sweep: Sweep) -> list[Task]:
    """Every task of the sweep, in grid order, validated.

    Raises:
        ConfigError: a bad hardware key or value (naming the grid point), workload, scheme or
            fidelity; WorkloadError: a network that cannot be built.
    """
    if sweep.fidelity not in FIDELITIES:
        raise ConfigError(f"unknown fidelity {sweep.fidelity!r}; expected {', '.join(FIDELITIES)}")
    base = load_machine(sweep.hw, sweep.overrides)
    machines: dict[tuple[str, ...], Machine] = {}
    networks: dict[tuple[str, int | None, int | None], Network] = {}
    documents: dict[int, str] = {}  # id(network) → its canonical JSON
    options = SimOptions(
        fidelity=sweep.fidelity,
        tiles_per_core=sweep.tiles_per_core,
        step_bytes=sweep.step_bytes,
    )
    tasks: list[Task] = []
    keys = [key for key, _ in sweep.grid]
    for combination in itertools.product(*(values for _, values in sweep.grid)):
        values = tuple(zip(keys, combination, strict=True))
        chosen = dict(values)
        hardware = tuple(f"{k}={v}" for k, v in values if k not in POINT_KEYS)
        machine = machines.get(hardware)
        if machine is None:
            try:
                machine = machines[hardware] = base.with_overrides(_whole_sets(base, hardware))
            except ConfigError as err:
                raise ConfigError(f"grid point {', '.join(hardware)}: {err}") from None
            options.check(machine)
        batch = _whole(chosen["batch"], "batch") if "batch" in chosen else sweep.batch
        image = _whole(chosen["image"], "image") if "image" in chosen else sweep.image
        workloads = (chosen["workload"],) if "workload" in chosen else sweep.workloads
        schemes = (chosen["scheme"],) if "scheme" in chosen else sweep.schemes
        for workload in workloads:
            network = networks.get((workload, batch, image))
            if network is None:
                network = networks[workload, batch, image] = load_workload(
                    workload, batch=batch, image=image
                )
                documents[id(network)] = _canonical(network_to_dict(network))
            for scheme in schemes:
                spec = parse_scheme(scheme)
                digest = _digest(machine, documents[id(network)], spec.label(), options)
                tasks.append(
                    Task(
                        len(tasks),
                        values,
                        workload,
                        spec.label(),
                        machine,
                        network,
                        options,
                        digest,
                    )
                )
    return tasks


CACHES = ("private", "llc")


def _whole_sets(base: Machine, hardware: tuple[str, ...]) -> list[str]:
    """A grid point's hardware overrides with each cache size rounded down to whole sets of that
    point's ways × block, with a note: a sweep over sizes (2MiB..64MiB*2) must run on an 11-way
    cache too. `--set` keeps its size exact and refuses one that is not whole sets."""
    sizes = [item for item in hardware if item.split("=", 1)[0] in (f"{c}.size" for c in CACHES)]
    if not sizes:
        return list(hardware)
    others = base.with_overrides([item for item in hardware if item not in sizes])
    rounded = []
    for item in hardware:
        if item not in sizes:
            rounded.append(item)
            continue
        key, text = item.split("=", 1)
        cache = getattr(others, key.split(".")[0])
        set_bytes = cache.ways * cache.block_bytes
        size = units.parse_bytes(text)
        whole = size // set_bytes * set_bytes
        if whole != size and whole > 0:
            logger.warning(
                "grid point %s: %s %s is not whole sets of %d ways × %s; simulated at %s B "
                "(%s sets)",
                ", ".join(hardware),
                key,
                text,
                cache.ways,
                units.bytes_text(cache.block_bytes),
                f"{whole:,}",
                f"{whole // set_bytes:,}",
            )
        rounded.append(f"{key}={whole}B" if whole not in (size, 0) else item)
    return rounded


def _whole(text: str, key: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--grid {key}={text}: expected a positive whole number") from None
    if value < 1:
        raise ConfigError(f"--grid {key}={text}: expected a positive whole number")
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _digest(machine: Machine, network_json: str, scheme: str, options: SimOptions) -> str:
    inputs = {
        "machine": machine.to_dict(),
        "network": network_json,
        "scheme": scheme,
        "fidelity": options.fidelity,
        "tiles_per_core": options.tiles_per_core,
        "step_bytes": options.step(),
        "bnsim": __version__,
    }
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()[:32]


# --- the store -----------------------------------------------------------------------------------


class Store:
    """DIR/results.jsonl: finished tasks, appended one line each, flushed and fsynced."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RESULTS_FILE

    def load(self) -> dict[str, dict[str, Any]]:
        """Stored records by key (the last record of a key wins); a torn last line is dropped."""
        if not self.path.exists():
            return {}
        records: dict[str, dict[str, Any]] = {}
        with self.path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if not line.endswith(b"\n"):
                    break  # the line being written when the sweep was killed
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise ConfigError(
                        f"{self.path}: line {number} is not JSON; this file is bnsim's own store, "
                        "do not edit it"
                    ) from None
                records[record["key"]] = record
        return records

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one record durably (after dropping a torn last line)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._drop_torn_line()
        with self.path.open("ab") as file:
            file.write(_canonical(record).encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())

    def _drop_torn_line(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb+") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            if size == 0:
                return
            file.seek(size - 1)
            if file.read(1) == b"\n":
                return
            file.seek(0)
            data = file.read()
            file.truncate(data.rfind(b"\n") + 1)


# --- running -------------------------------------------------------------------------------------


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


# --- outputs -------------------------------------------------------------------------------------


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
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(buffer.getvalue(), encoding="utf-8")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def records_of(folder: str | Path) -> list[dict[str, Any]]:
    """Every stored record of a sweep folder (finished, failed), in grid order.

    Raises:
        ConfigError: no store in `folder`.
    """
    store = Store(folder)
    if not store.path.exists():
        raise ConfigError(f"{folder}: no {RESULTS_FILE}; is it a bnsim sweep folder?")
    return sorted(store.load().values(), key=lambda record: record["index"])


@dataclass(frozen=True)
class StoredSweep:
    """What a plot of a stored sweep draws against one of its grid keys."""

    groups: dict[str, list[tuple[float, list[RunResult]]]]  # other grid values → (x, runs)
    unit: str  # of the x values
    context: str  # what every point shares: "densenet121, batch 32, on cmp16" (parts that vary
    # are in the group labels)


def stored_points(folder: str | Path, parameter: str) -> StoredSweep:
    """For plotting a stored sweep (finished or not): per group of the other grid values, the
    (value of `parameter`, runs) points; the parameter's axis unit; and what all points share
    (workload, batch, machine). Reads results.jsonl only.

    Raises:
        ConfigError: no store in `folder`, or `parameter` is not a grid key of the sweep.
    """
    records = [r for r in records_of(folder) if r["status"] == "ok"]
    if not records:
        raise ConfigError(f"{Path(folder) / RESULTS_FILE}: no finished points yet")
    groups: dict[str, dict[float, list[RunResult]]] = {}
    unit = ""
    for record in records:
        values = dict(record["values"])
        if parameter in ("batch", "image"):
            x, unit = float(record[parameter]), ""
        elif parameter in values:
            try:
                x, unit = units.axis_value(values[parameter])
            except ConfigError:
                raise ConfigError(
                    f"{folder}: grid key {parameter!r} has value {values[parameter]!r}, "
                    "not a number to plot against"
                ) from None
        else:
            raise ConfigError(
                f"{folder}: {parameter!r} is not a grid key of this sweep "
                f"(its grid keys: {', '.join(values) or 'none'})"
            )
        others = [f"{k}={v}" for k, v in values.items() if k not in (parameter, "scheme")]
        if "workload" not in values and len({r["workload"] for r in records}) > 1:
            others.insert(0, record["workload"])
        label = ", ".join(others)
        run = RunResult.from_dict({**record["run"], "kernels": [], "traffic": [], "op_times": []})
        groups.setdefault(label, {}).setdefault(x, []).append(run)
    return StoredSweep(
        {label: sorted(points.items()) for label, points in groups.items()},
        unit,
        shared_context(records, parameter),
    )


def shared_context(points: Sequence[Mapping[str, Any]], parameter: str) -> str:
    """What a plot's points share, for its title: their "workload", "batch" and "machine" keys,
    each where it is one for all and not the `parameter` plotted against."""
    parts = []
    for key, spell in (
        ("workload", "{}"),
        ("batch", "batch {}"),
        ("machine", "on {}"),
    ):
        found = {point.get(key) for point in points}
        if len(found) == 1 and None not in found and key != parameter:
            parts.append(spell.format(found.pop()))
    return ", ".join(parts)
