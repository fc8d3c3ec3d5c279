"""The `bnsim` commands that simulate and what they draw: run, sweep, crosscheck, plot, report."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnsim import __version__
from bnsim.cli.options import check_image_path, write_text
from bnsim.errors import EXIT_OK, ConfigError

if TYPE_CHECKING:
    from bnsim.experiment.point import Point, Progress
    from bnsim.result import RunResult
    from bnsim.sim.engine import KernelProgress

# Library modules that pull in networkx, pydantic or matplotlib are imported inside the handlers
# that need them, so that `bnsim --help` and argument errors answer at once.


# --- simulation ---


def _point(args: argparse.Namespace, fidelity: str) -> Point:
    from bnsim.config.machine import load_machine
    from bnsim.experiment.point import make_point
    from bnsim.graph import load_workload
    from bnsim.schemes import DEFAULT_SCHEMES
    from bnsim.trace import SimOptions

    machine = load_machine(args.hw, args.set)
    network = load_workload(args.workload, batch=args.batch, image=args.image)
    options = SimOptions(
        fidelity=fidelity,  # type: ignore[arg-type]  # argparse choices are the Fidelity values
        tiles_per_core=args.tiles_per_core,
        step_bytes=args.step,
        allow_slow=args.allow_slow,
    )
    return make_point(machine, network, args.scheme or list(DEFAULT_SCHEMES), options)


def run_command(args: argparse.Namespace) -> int:
    from bnsim.experiment.point import (
        point_document,
        run_point,
        run_point_with_timelines,
        simulate_scheme,
    )

    if args.plot:
        check_image_path(args.plot)
    if args.timeline and args.fidelity == "analytic":
        raise ConfigError("--timeline needs tiles: use --fidelity fast or line")
    point = _point(args, args.fidelity)
    jobs = args.jobs or min(len(point.schemes), os.cpu_count() or 1)
    if len(point.schemes) == 1 and not args.timeline and args.fidelity != "analytic":
        with _kernel_progress(args, point.schemes[0].name) as on_kernel:
            runs = [simulate_scheme(point, point.schemes[0], on_kernel=on_kernel)]
    else:
        with _progress(args, len(point.schemes), "schemes") as progress:
            if args.timeline:
                recorded = run_point_with_timelines(point, jobs=jobs, progress=progress)
                runs = [run for run, _ in recorded]
            else:
                runs = run_point(point, jobs=jobs, progress=progress)
    from bnsim.report.summary import breakdown_csv, describe_runs

    print(describe_runs(point, runs))
    if args.json:
        document = point_document(point, runs, __version__)
        write_text(Path(args.json), json.dumps(document, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.csv:
        write_text(Path(args.csv), breakdown_csv(runs))
        print(f"wrote {args.csv}")
    if args.plot:
        from bnsim.report import plots

        plots.save(plots.traffic_breakdown(runs, title=_plot_title(point)), args.plot)
        print(f"wrote {args.plot}")
    if args.timeline:
        from bnsim.report.timeline import trace_events

        events = trace_events([timeline for _, timeline in recorded], runs)
        write_text(Path(args.timeline), json.dumps(events, separators=(",", ":")) + "\n")
        print(f"wrote {args.timeline} (open it in ui.perfetto.dev or chrome://tracing)")
    if args.report:
        from bnsim.report.html import run_report, write_report

        write_report(run_report(point_document(point, runs, __version__)), args.report)
        print(f"wrote {args.report}")
    return EXIT_OK


def _plot_title(point: Point) -> str:
    network = point.network
    return f"{network.name}, batch {network.batch}, on {point.machine.name}: DRAM traffic"


@contextlib.contextmanager
def _kernel_progress(args: argparse.Namespace, scheme: str) -> Iterator[KernelProgress | None]:
    """A progress bar over the kernels of one simulation (same rules as `_progress`)."""
    if args.quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(unit="kernel", desc=f"bnsim: simulating {scheme}", leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield advance


@contextlib.contextmanager
def _progress(args: argparse.Namespace, total: int, unit: str) -> Iterator[Progress | None]:
    """A progress bar on stderr over `total` tasks; none if stderr is not a terminal, with
    --quiet, or for a single task."""
    if args.quiet or total <= 1 or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    # few, slow tasks: draw every update (tqdm would skip those closer than 0.1 s)
    bar = tqdm(
        total=total, unit=unit[:-1], desc=f"bnsim: simulating {unit}", leave=False, mininterval=0
    )
    with bar:

        def advance(run: RunResult) -> None:
            bar.set_postfix_str(f"{run.scheme} ({run.fidelity})", refresh=False)
            bar.update()

        yield advance


def sweep_command(args: argparse.Namespace) -> int:
    from bnsim.experiment.sweeps import Sweep, load_sweep_file, parse_grid, run_sweep

    if args.file:
        if args.hw or args.workload or args.grid or args.scheme or args.set:
            raise ConfigError(
                f"{args.file}: a sweep file replaces --hw, --workload, --scheme, --set and --grid"
            )
        sweep = load_sweep_file(args.file)
    else:
        missing = [
            flag for flag, value in (("--hw", args.hw), ("--workload", args.workload)) if not value
        ]
        if missing:
            raise ConfigError(f"bnsim sweep needs {' and '.join(missing)} (or a sweep file)")
        from bnsim.schemes import DEFAULT_SCHEMES

        sweep = Sweep(
            hw=args.hw,
            workloads=tuple(args.workload),
            schemes=tuple(args.scheme or DEFAULT_SCHEMES),
            grid=parse_grid(args.grid),
            overrides=tuple(args.set),
            batch=args.batch,
            image=args.image,
            fidelity=args.fidelity,
            tiles_per_core=args.tiles_per_core,
            step_bytes=args.step,
        )
    if args.plot and not sweep.grid:
        raise ConfigError("--plot draws against the first --grid key; this sweep has no grid")
    # Dask logs every scheduler event at INFO; follow --log-level unless the user configured Dask
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", args.log_level.lower())
    bar: Any = None
    failures = 0

    def planned(pending: int, total: int) -> None:
        nonlocal bar
        print(f"{total} points, {total - pending} stored already, {pending} to run in {args.out}")
        if pending and not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=pending, unit="point", desc="bnsim sweep", mininterval=0.5)

    def stored(record: dict[str, Any]) -> None:
        nonlocal failures
        if record["status"] == "failed":
            failures += 1
            logging.getLogger("bnsim").warning("point failed: %s", record["error"])
        if bar is not None:
            bar.set_postfix(failed=failures, refresh=False)
            bar.update()

    try:
        results = run_sweep(
            sweep,
            args.out,
            jobs=args.jobs,
            executor=args.executor,
            scheduler=args.scheduler,
            retry_failed=args.retry_failed,
            progress=stored,
            on_plan=planned,
        )
    finally:
        if bar is not None:
            bar.close()
    failed = results.failed()
    print(
        f"{len(results.records) - len(failed)} points done, {len(failed)} failed; "
        f"wrote {Path(args.out) / 'summary.csv'}"
    )
    for record in failed[:5]:
        print(
            f"  failed: {record['workload']} {record['scheme']} {record['values']}: "
            f"{record['error']}"
        )
    if args.plot:
        _plot_sweep(args.out, sweep.grid[0][0])
    if args.report and len(failed) == len(results.records):
        print(f"no report written to {args.report}: no point of the sweep has finished")
    elif args.report:
        from bnsim.report.html import sweep_report, write_report

        write_report(sweep_report(args.out), args.report)
        print(f"wrote {args.report}")
    return EXIT_OK


def _plot_sweep(folder: str, parameter: str) -> None:
    """speedup and traffic against `parameter`, from the sweep's store."""
    from bnsim.experiment.sweeps import stored_points
    from bnsim.report import plots

    stored = stored_points(folder, parameter)
    for metric, name in (("speedup", "sweep_speedup.png"), ("traffic", "sweep_traffic.png")):
        figure = plots.parameter_sweep(
            stored.groups, parameter, metric=metric, unit=stored.unit, context=stored.context
        )
        plots.save(figure, Path(folder) / name)
        print(f"wrote {Path(folder) / name}")


def crosscheck_command(args: argparse.Namespace) -> int:
    from bnsim.experiment.crosscheck import crosscheck
    from bnsim.experiment.point import point_document
    from bnsim.trace import FIDELITIES

    point = _point(args, "fast")
    jobs = args.jobs or min(len(point.schemes) * len(FIDELITIES), os.cpu_count() or 1)
    with _progress(args, len(point.schemes) * len(FIDELITIES), "simulations") as progress:
        timed = crosscheck(point, jobs=jobs, progress=progress)
    from bnsim.report.crosscheck import describe_crosscheck

    print(describe_crosscheck(point, timed))
    if args.json:
        document = point_document(point, [entry.run for entry in timed], __version__)
        write_text(Path(args.json), json.dumps(document, indent=1) + "\n")
        print(f"wrote {args.json}")
    return EXIT_OK


# --- plots ---

PLOT_KINDS = ("traffic", "time", "speedup", "layers", "roofline")


def plot_command(args: argparse.Namespace) -> int:
    from bnsim.config.machine import machine_from_dict
    from bnsim.report import plots
    from bnsim.report.documents import parameter_value, read_document

    check_image_path(args.out)
    if len(args.results) == 1 and Path(args.results[0]).is_dir():
        from bnsim.experiment.sweeps import stored_points

        if args.kind != "speedup" or not args.x:
            raise ConfigError(
                f"{args.results[0]}: a sweep folder draws --kind speedup --x GRID_KEY"
            )
        stored = stored_points(args.results[0], args.x)
        figure = plots.parameter_sweep(
            stored.groups, args.x, metric=args.metric, unit=stored.unit, context=stored.context
        )
        plots.save(figure, args.out)
        print(f"wrote {args.out}")
        return EXIT_OK
    loaded = [(path, *read_document(path)) for path in args.results]
    if args.kind == "speedup":
        if not args.x:
            raise ConfigError("--kind speedup needs --x PARAMETER, e.g. --x llc.size")
        points, unit = [], ""
        for path, document, runs in loaded:
            value, unit = parameter_value(document, args.x, source=path)
            points.append((value, _chosen(runs, args.schemes, path)))
        from bnsim.experiment.sweeps import shared_context

        context = shared_context(
            [
                {
                    "workload": document["workload"].get("name"),
                    "batch": document["workload"].get("batch"),
                    "machine": document["hardware"].get("name"),
                }
                for _, document, _ in loaded
            ],
            args.x,
        )
        figure = plots.parameter_sweep(
            points, args.x, metric=args.metric, unit=unit, context=context
        )
    else:
        if len(loaded) != 1:
            raise ConfigError(
                f"--kind {args.kind} draws one result document; got {len(loaded)} "
                "(several documents make a --kind speedup plot)"
            )
        path, document, runs = loaded[0]
        runs = _chosen(runs, args.schemes, path)
        title = f"{document['workload']['name']}, batch {document['workload']['batch']}"
        title += f", on {document['hardware'].get('name', 'a machine')}"
        if args.kind == "traffic":
            figure = plots.traffic_breakdown(runs, title=f"{title}: DRAM traffic")
        elif args.kind == "time":
            figure = plots.time_breakdown(runs, title=f"{title}: iteration time")
        elif args.kind == "layers":
            if len(runs) < 2:
                raise ConfigError(f"{path}: --kind layers compares two schemes; it holds one")
            figure = plots.layer_traffic(
                runs[0],
                runs[1],
                title=f"{title}: DRAM traffic per layer, {runs[0].scheme} vs {runs[1].scheme}",
            )
        else:
            from bnsim.report.machine import machine_roofs

            machine = machine_from_dict(document["hardware"], source=f"{path} (hardware)")
            figure = plots.roofline(
                runs, machine_roofs(machine), title=f"{title}: kernels on the roofline"
            )
    plots.save(figure, args.out)
    print(f"wrote {args.out}")
    return EXIT_OK


def report_command(args: argparse.Namespace) -> int:
    from bnsim.report.documents import read_document
    from bnsim.report.html import run_report, sweep_report, write_report

    source = Path(args.source)
    if source.is_dir():
        text = sweep_report(source)
    else:
        document, _ = read_document(source)
        text = run_report(document, source=str(source))
    write_report(text, args.out)
    print(f"wrote {args.out}")
    return EXIT_OK


def _chosen(runs: list[RunResult], schemes: str | None, path: str) -> list[RunResult]:
    """The runs of the schemes named in `schemes` (comma-separated, in that order), or all."""
    if not schemes:
        return runs
    by_name = {run.scheme: run for run in runs}
    chosen = []
    for name in schemes.split(","):
        if name not in by_name:
            raise ConfigError(f"{path}: no run of scheme {name!r}; it holds {', '.join(by_name)}")
        chosen.append(by_name[name])
    return chosen
