"""The `bnsim` command: parse arguments, call one library function, print a summary, exit.

The only module that prints, configures logging or exits. Exit codes: 0 ok; 2 bad input (usage,
config or workload error: one line on stderr, no traceback); 3 infeasible; 1 anything unexpected
(with traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bnsim import __version__, units
from bnsim.errors import (
    EXIT_BAD_INPUT,
    EXIT_INFEASIBLE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    BnsimError,
    ConfigError,
    InfeasibleError,
    WorkloadError,
)
from bnsim.report.tables import key_value_table, markdown_table, text_table

if TYPE_CHECKING:
    from bnsim.experiment.crosscheck import TimedRun
    from bnsim.experiment.point import Point, Progress
    from bnsim.result import RunResult
    from bnsim.sim.engine import KernelProgress

# Library modules that pull in networkx, pydantic or matplotlib are imported inside the handlers
# that need them, so that `bnsim --help` and argument errors answer at once.


Handler = Callable[[argparse.Namespace], int]


# --- workloads ---


def _workloads_list(args: argparse.Namespace) -> int:
    from bnsim.graph import summarize
    from bnsim.graph.zoo import BUILDERS, MODELS, build_model

    rows, documents = [], []
    for model in MODELS.values():
        network = build_model(model.name, batch=1)
        summary = summarize(network)
        rows.append(
            [
                model.name,
                f"{model.image}×{model.image}",
                f"{summary.params:,}",
                units.format_count(summary.macs_per_sample, "MAC"),
                model.description,
            ]
        )
        documents.append(
            {
                "name": model.name,
                "builder": model.builder,
                "image": model.image,
                "params": summary.params,
                "macs_per_sample": summary.macs_per_sample,
                "description": model.description,
            }
        )
    if args.json:
        print(json.dumps(documents, indent=2))
        return EXIT_OK
    header = ["model", "image (pixels)", "parameters", "MACs/sample", "description"]
    print(markdown_table(header, rows) if args.markdown else text_table(header, rows))
    print(f"\nbuilders for workload files: {', '.join(BUILDERS)}" if not args.markdown else "")
    return EXIT_OK


def _workloads_show(args: argparse.Namespace) -> int:
    from bnsim.graph import CATEGORIES, load_workload, summarize

    network = load_workload(args.workload, batch=args.batch, image=args.image)
    summary = summarize(network)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return EXIT_OK
    c, h, w = summary.input
    by_category = {category: 0 for category in CATEGORIES}
    for layer in network.layers[1:]:
        by_category[layer.layer_kind.category] += 1
    batch_bytes = summary.activation_bytes_per_sample * summary.batch
    rows = [
        ["input", f"{c}×{h}×{w} per sample, batch {summary.batch} samples"],
        ["parameters", f"{summary.params:,} ({units.format_bytes(summary.params * 4)} in fp32)"],
        [
            "forward MACs",
            f"{units.format_count(summary.macs_per_sample, 'MAC')} per sample "
            f"({summary.macs_per_sample:,} MAC; conv and linear layers)",
        ],
        [
            "activations",
            f"{units.format_bytes(summary.activation_bytes_per_sample)} per sample, "
            f"{units.format_bytes(batch_bytes)} per batch (fp32, every layer output once)",
        ],
        [
            "BN inputs",
            f"{summary.bn_input_elements_per_sample:,} elements per sample "
            f"({units.format_bytes(summary.bn_input_elements_per_sample * 4)} fp32)",
        ],
        ["layers", f"{summary.num_layers} layers"],
    ]
    print(f"{network.name}")
    print(key_value_table(rows, indent="  "))
    print("\n  layers by kind:")
    print(text_table(["kind", "layers"], list(summary.layer_counts.items()), indent="    "))
    print("\n  layers by breakdown category:")
    print(
        text_table(
            ["category", "layers"], [[k, v] for k, v in by_category.items() if v], indent="    "
        )
    )
    return EXIT_OK


def _workloads_export(args: argparse.Namespace) -> int:
    from bnsim.graph import load_workload
    from bnsim.graph.load import network_to_dot, network_to_graphml, network_to_yaml

    network = load_workload(args.workload, batch=args.batch, image=args.image)
    writers = {"yaml": network_to_yaml, "graphml": network_to_graphml, "dot": network_to_dot}
    text = writers[args.format](network)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _write_text(Path(args.out), text)
        print(f"wrote {args.out} ({len(network.layers) - 1} layers, {args.format})")
    return EXIT_OK


# --- hardware ---


def _hw_show(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.sim.dramrate import WRITE_SHARES, channel_rates

    machine = load_machine(args.file, args.set)
    if args.json:
        channels = machine.dram.channels
        derived = {
            "peak_flops_per_second": machine.peak_flops_per_second(),
            "dram_peak_bytes_per_second": machine.dram.peak_bandwidth_bytes_per_second(),
            "dram_sustained_bytes_per_second": {
                f"writes {share:.0%}": channels * rate
                for share, rate in zip(WRITE_SHARES, channel_rates(machine), strict=True)
            },
        }
        print(json.dumps({**machine.to_dict(), "derived": derived}, indent=2))
        return EXIT_OK
    from bnsim.report.machine import describe_machine

    print(describe_machine(machine))
    return EXIT_OK


def _hw_keys(args: argparse.Namespace) -> int:
    from bnsim.config.keys import describe_keys

    header = ["key", "type", "unit", "required", "meaning"]
    rows = [
        [
            doc.path,
            doc.type_name,
            doc.unit,
            "yes"
            if doc.required
            else f"with {doc.section}"
            if doc.section
            else f"no (default {doc.default})",
            doc.description,
        ]
        for doc in describe_keys()
    ]
    print(markdown_table(header, rows) if args.markdown else text_table(header, rows))
    return EXIT_OK


def _membench(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.report.membench import describe_membench, membench_document
    from bnsim.sim.membench import KERNELS, run_kernel

    machine = load_machine(args.hw, args.set)
    kernels = args.kernel or list(KERNELS)
    try:
        results = [run_kernel(machine, kernel, args.array_size, args.cores) for kernel in kernels]
    except ValueError as error:
        raise ConfigError(f"membench: {error}") from None
    peak = machine.dram.peak_bandwidth_bytes_per_second()
    print(describe_membench(machine.name, peak, results))
    if args.json:
        _write_text(Path(args.json), json.dumps(membench_document(machine.name, results), indent=2))
    return EXIT_OK


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


def _run(args: argparse.Namespace) -> int:
    from bnsim.experiment.point import (
        point_document,
        run_point,
        run_point_with_timelines,
        simulate_scheme,
    )

    if args.plot:
        _check_image_path(args.plot)
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
    print(describe_runs(point, runs))
    if args.json:
        document = point_document(point, runs, __version__)
        _write_text(Path(args.json), json.dumps(document, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.csv:
        _write_text(Path(args.csv), breakdown_csv(runs))
        print(f"wrote {args.csv}")
    if args.plot:
        from bnsim.report import plots

        plots.save(plots.traffic_breakdown(runs, title=_plot_title(point)), args.plot)
        print(f"wrote {args.plot}")
    if args.timeline:
        from bnsim.report.timeline import trace_events

        events = trace_events([timeline for _, timeline in recorded], runs)
        _write_text(Path(args.timeline), json.dumps(events, separators=(",", ":")) + "\n")
        print(f"wrote {args.timeline} (open it in ui.perfetto.dev or chrome://tracing)")
    if args.report:
        from bnsim.report.html import run_report, write_report

        write_report(run_report(point_document(point, runs, __version__)), args.report)
        print(f"wrote {args.report}")
    return EXIT_OK


def _plot_title(point: Point) -> str:
    network = point.network
    return f"{network.name}, batch {network.batch}, on {point.machine.name}: DRAM traffic"


def _check_image_path(path: str) -> None:
    """Refuse an image path whose format is unknown before anything runs."""
    from bnsim.report.plotdata import FORMATS

    if Path(path).suffix.lower().lstrip(".") not in FORMATS:
        raise ConfigError(
            f"{path}: cannot tell the image format from the extension "
            f"{Path(path).suffix or '(none)'!r}; use .png, .svg or .pdf"
        )


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


def _sweep(args: argparse.Namespace) -> int:
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


def _crosscheck(args: argparse.Namespace) -> int:
    from bnsim.experiment.crosscheck import crosscheck
    from bnsim.experiment.point import point_document
    from bnsim.trace import FIDELITIES

    point = _point(args, "fast")
    jobs = args.jobs or min(len(point.schemes) * len(FIDELITIES), os.cpu_count() or 1)
    with _progress(args, len(point.schemes) * len(FIDELITIES), "simulations") as progress:
        timed = crosscheck(point, jobs=jobs, progress=progress)
    print(describe_crosscheck(point, timed))
    if args.json:
        document = point_document(point, [entry.run for entry in timed], __version__)
        _write_text(Path(args.json), json.dumps(document, indent=1) + "\n")
        print(f"wrote {args.json}")
    return EXIT_OK


def describe_crosscheck(point: Point, timed: Sequence[TimedRun]) -> str:
    """The human summary of `bnsim crosscheck`: per scheme and fidelity, totals against line
    fidelity's, then DRAM traffic and time per phase and per layer kind."""
    from bnsim.experiment.crosscheck import REFERENCE, differences

    network, machine = point.network, point.machine
    c, (h, w) = network.input_channels(), network.image
    lines = [
        f"{network.name}, batch {network.batch} samples of {c}×{h}×{w}, one training iteration, on "
        f"{machine.name}: every fidelity against {REFERENCE} fidelity (exact set-associative LRU)"
    ]
    found = differences([entry.run for entry in timed])
    wall = {(entry.run.scheme, entry.run.fidelity): entry.wall_seconds for entry in timed}
    rows = [
        [
            d.scheme,
            d.fidelity,
            f"{d.dram_bytes / 1e9:.4f}",
            _percent(d.dram_relative(), d.fidelity),
            f"{d.cycles:,}",
            _percent(d.cycles_relative(), d.fidelity),
            f"{wall[(d.scheme, d.fidelity)]:.2f}",
        ]
        for d in found
        if d.group == "total"
    ]
    header = ["scheme", "fidelity", "DRAM (GB)", "vs line", "time (cycles)", "vs line"]
    lines += ["", text_table([*header, "simulated in (s)"], rows)]
    others = list(dict.fromkeys(d.fidelity for d in found if d.fidelity != REFERENCE))
    for group, title in (("phase", "phase"), ("layer_kind", "layer kind")):
        cells = {(d.scheme, d.key, d.fidelity): d for d in found if d.group == group}
        keys = list(dict.fromkeys((d.scheme, d.key) for d in found if d.group == group))
        rows = []
        for scheme, key in keys:
            line = cells[(scheme, key, REFERENCE)]
            traffic = [f"{line.dram_bytes / 1e6:.2f}"]
            cycles = [f"{line.cycles / 1e6:.3f}"]
            for fidelity in others:
                d = cells[(scheme, key, fidelity)]
                traffic.append(
                    f"{d.dram_bytes / 1e6:.2f} ({_percent(d.dram_relative(), fidelity)})"
                )
                cycles.append(f"{d.cycles / 1e6:.3f} ({_percent(d.cycles_relative(), fidelity)})")
            rows.append([scheme, key, *traffic, *cycles])
        header = [
            "scheme",
            title,
            *[f"{fidelity} MB" for fidelity in (REFERENCE, *others)],
            *[f"{fidelity} Mcycles" for fidelity in (REFERENCE, *others)],
        ]
        lines += [
            "",
            f"by {title}: DRAM traffic (MB, read + write) and time (million cycles); in brackets "
            f"the difference from {REFERENCE}",
            text_table(header, rows),
        ]
    return "\n".join(lines)


def _percent(relative: float | None, fidelity: str) -> str:
    from bnsim.experiment.crosscheck import REFERENCE

    if fidelity == REFERENCE:
        return "—"
    return "n/a" if relative is None else f"{relative:+.2%}"


def describe_runs(point: Point, runs: Sequence[RunResult]) -> str:
    """The human summary of `bnsim run`: totals per scheme, then where traffic and time go."""
    from bnsim.report.summary import ATTRIBUTION, phase_kind_table, scheme_table

    lines = [point_heading(point), "", text_table(*scheme_table(runs))]
    for run in runs:
        lines += [
            "",
            f"{run.scheme}: DRAM traffic (read + write) and time by phase and layer kind",
            f"  ({ATTRIBUTION})",
            text_table(*phase_kind_table(run), indent="  "),
        ]
    return "\n".join(lines)


def point_heading(point: Point) -> str:
    """One line on what was simulated: network, batch, input, machine, fidelity."""
    machine, network = point.machine, point.network
    c = network.input_channels()
    h, w = network.image
    return (
        f"{network.name}, batch {network.batch} samples of {c}×{h}×{w}, one training iteration, on "
        f"{machine.name} ({machine.cores.count} cores, "
        f"{units.format_flop_rate(machine.peak_flops_per_second())}, "
        f"{units.format_bandwidth(machine.dram.peak_bandwidth_bytes_per_second())} DRAM), "
        f"{point.options.fidelity} fidelity"
    )


def breakdown_csv(runs: Sequence[RunResult]) -> str:
    """One tidy row per (scheme, fidelity, phase, layer kind): cycles, seconds, DRAM bytes."""
    lines = ["scheme,fidelity,phase,layer_kind,cycles,seconds,dram_read_bytes,dram_write_bytes"]
    for run in runs:
        seconds_per_cycle = run.seconds / run.cycles if run.cycles else 0.0
        for row in run.breakdown("phase", "layer_kind"):
            lines.append(
                f"{run.scheme},{run.fidelity},{row['phase']},{row['layer_kind']},{row['cycles']},"
                f"{row['cycles'] * seconds_per_cycle!r},{row['dram_read_bytes']},"
                f"{row['dram_write_bytes']}"
            )
    return "\n".join(lines) + "\n"


# --- plots ---

PLOT_KINDS = ("traffic", "time", "speedup", "layers", "roofline")


def _plot(args: argparse.Namespace) -> int:
    from bnsim.config.machine import machine_from_dict
    from bnsim.report import plots
    from bnsim.report.documents import parameter_value, read_document

    _check_image_path(args.out)
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


def _report(args: argparse.Namespace) -> int:
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


# --- schemes and verification ---


def _schemes(args: argparse.Namespace) -> int:
    from bnsim.schemes import MODIFIERS, SCHEMES

    for scheme in (*SCHEMES.values(), *MODIFIERS.values()):
        kind = " (a modifier: X+sampling)" if scheme.name in MODIFIERS else ""
        print(f"{scheme.name}: {scheme.summary}{kind}")
        rows = [
            [key, repr(field.default), field.description or ""]
            for key, field in scheme.options_model.model_fields.items()
        ]
        if rows:
            print(text_table(["option", "default", "meaning"], rows, indent="  "))
    print("\noptions: --scheme NAME:key=value,key=value, e.g. baseline:bn_stats_passes=1")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from bnsim.config.machine import load_machine
    from bnsim.graph import load_workload
    from bnsim.schemes import parse_scheme
    from bnsim.verify import verify

    machine = load_machine(args.hw, args.set)
    network = load_workload(args.workload)
    specs = [parse_scheme(text) for text in args.scheme or ["fission", "bnff", "recompute"]]
    reports = [
        verify(
            network,
            spec,
            seed=args.seed,
            width_divisor=args.width_divisor,
            machine=machine,
        )
        for spec in specs
    ]
    print(f"{network.name}, down-scaled: channels ÷{args.width_divisor}, every layer kept")
    rows = [
        [
            r.scheme,
            "ok" if r.passed else "MISMATCH",
            f"{r.image[0]}×{r.image[1]}",
            r.batch,
            r.tensors_compared,
            f"{r.max_rel_err:.1e}",
            f"{r.tolerance:.0e}",
            r.num_kernels,
            r.num_tiles,
            f"{r.seconds:.2f}",
        ]
        for r in reports
    ]
    header = [
        "scheme",
        "result",
        "image (pixels)",
        "batch (samples)",
        "tensors",
        "max rel. error",
        "tolerance",
        "kernels",
        "tiles",
        "time (s)",
    ]
    print(text_table(header, rows))
    for report in reports:
        if report.sampled_mean_error is not None:
            print(
                f"{report.scheme}: statistics used vs exact batch statistics: mean off by up to "
                f"{report.sampled_mean_error:.3g} standard deviations, variance by up to "
                f"{report.sampled_var_error:.1%}"
            )
        if not report.passed:
            print(f"{report.scheme}: worst tensors:")
            worst = [[c.name, f"{c.max_rel_err:.2e}", f"{c.max_abs_err:.2e}"] for c in report.worst]
            print(text_table(["tensor", "max rel. error", "max abs. error"], worst, indent="  "))
    if args.json:
        _write_text(
            Path(args.json), json.dumps(_verify_document(network.name, reports), indent=2) + "\n"
        )
        print(f"wrote {args.json}")
    return EXIT_OK if all(r.passed for r in reports) else EXIT_UNEXPECTED


def _verify_document(workload: str, reports: Sequence[Any]) -> dict[str, Any]:
    """The `bnsim verify --json` document: totals over the schemes, then one report per scheme.

    Errors that are not finite (a tensor full of NaN) are written as null: JSON has no infinity.
    """

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [finite(item) for item in value]
        return value

    document: dict[str, Any] = finite(
        {
            "schema": "bnsim.verify/1",
            "bnsim_version": __version__,
            "workload": workload,
            "scheme": [r.scheme for r in reports],
            "passed": all(r.passed for r in reports),
            "tensors_compared": sum(r.tensors_compared for r in reports),
            "max_abs_err": max(r.max_abs_err for r in reports),
            "max_rel_err": max(r.max_rel_err for r in reports),
            "seconds": sum(r.seconds for r in reports),
            "reports": [r.to_dict() for r in reports],
        }
    )
    return document


# --- plumbing ---


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file and a rename: an interrupted run never leaves a truncated file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _add_overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--set KEY=VALUE`, repeatable: hardware keys overridden before validation."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _size(text: str) -> int:
    from bnsim import units
    from bnsim.errors import ConfigError

    try:
        return units.parse_bytes(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _output_file(text: str) -> str:
    """A file to write: refused before any work if it names a folder or its folder is missing."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text}: folder {path.parent} does not exist (bnsim creates no folders for a file)"
        )
    return text


def _report_file(text: str) -> str:
    """An HTML file to write, checked as `_output_file` checks, with an .html or .htm name."""
    if Path(text).suffix.lower() not in (".html", ".htm"):
        raise argparse.ArgumentTypeError(f"{text}: a report is HTML; name it .html")
    return _output_file(text)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(prog="bnsim", description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"bnsim {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold on stderr (default WARNING)",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    _add_workloads(commands)
    _add_run(commands)
    _add_sweep(commands)
    _add_plot(commands)
    _add_schemes_and_verify(commands)
    _add_membench(commands)
    _add_hw(commands)
    return parser


def _add_workloads(commands: Any) -> None:
    """`bnsim workloads list|show|export|import`."""
    workloads = commands.add_parser("workloads", help="list, inspect and export networks")
    workload_commands = workloads.add_subparsers(
        dest="subcommand", required=True, parser_class=_Parser
    )
    listing = workload_commands.add_parser("list", help="the model zoo")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument("--markdown", action="store_true", help="print a Markdown table")
    listing.set_defaults(handler=_workloads_list)
    for name, handler, text in (
        ("show", _workloads_show, "size facts of one network"),
        ("export", _workloads_export, "write a network as YAML, GraphML or DOT"),
        ("import", _workloads_export, "an ONNX file as a workload YAML file (export's YAML)"),
    ):
        sub = workload_commands.add_parser(name, help=text)
        sub.add_argument("workload", help="zoo model name, workload YAML or ONNX file path")
        sub.add_argument(
            "--batch", type=_positive_int, help="mini-batch size (default: the workload's)"
        )
        sub.add_argument("--image", type=_positive_int, help="input height = width in pixels")
        sub.set_defaults(handler=handler)
        if name == "show":
            sub.add_argument("--json", action="store_true", help="print a JSON document to stdout")
        elif name == "import":
            sub.set_defaults(format="yaml")
            sub.add_argument(
                "--out", type=_output_file, help="the workload YAML file to write (default: stdout)"
            )
        else:
            sub.add_argument("--format", choices=["yaml", "graphml", "dot"], default="yaml")
            sub.add_argument("--out", type=_output_file, help="output file (default: stdout)")


def _add_run(commands: Any) -> None:
    """`bnsim run` and `bnsim crosscheck`."""
    run = commands.add_parser("run", help="simulate one training iteration under each scheme")
    _add_point_arguments(run, "simulate")
    run.add_argument(
        "--fidelity",
        choices=["fast", "line", "analytic"],
        default="fast",
        help="fast (default): tile events, fully associative LRU caches tracked as byte ranges; "
        "line: tile events, exact set-associative caches of lines; analytic: tensor-level stack "
        "distances and a roofline, no tiles (docs/model.md, Fidelity)",
    )
    run.add_argument(
        "--csv",
        metavar="FILE",
        type=_output_file,
        help="write traffic and time by phase and layer kind",
    )
    run.add_argument(
        "--plot",
        metavar="FILE",
        type=_output_file,
        help="draw the DRAM traffic breakdown (.png, .svg or .pdf)",
    )
    run.add_argument(
        "--timeline",
        metavar="FILE",
        type=_output_file,
        help="write a Chrome/Perfetto trace (JSON) of tiles on cores, DRAM channels and the LLC",
    )
    run.add_argument(
        "--report",
        metavar="FILE.html",
        type=_report_file,
        help="write a single-file HTML report: summary, breakdowns, figures, machine",
    )
    run.set_defaults(handler=_run)
    check = commands.add_parser(
        "crosscheck",
        help="simulate each scheme at line, fast and analytic fidelity and compare them",
    )
    _add_point_arguments(check, "cross-check")
    check.set_defaults(handler=_crosscheck)


def _add_point_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The arguments that define a point: machine, workload, schemes, options, outputs."""
    parser.add_argument("--hw", required=True, help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    parser.add_argument(
        "--workload",
        required=True,
        help="zoo model name, workload YAML or ONNX file, or torchvision:NAME",
    )
    parser.add_argument(
        "--scheme",
        action="append",
        metavar="SPEC",
        help=f"scheme to {verb}, repeatable (default: baseline and bnff)",
    )
    parser.add_argument(
        "--batch",
        type=_positive_int,
        help="mini-batch size (default: the workload file's own, else 32)",
    )
    parser.add_argument("--image", type=_positive_int, help="input height = width in pixels")
    _add_overrides(parser, "override a hardware key, e.g. --set llc.size=32MiB (repeatable)")
    parser.add_argument(
        "--force",
        "--allow-slow",
        dest="allow_slow",
        action="store_true",
        help="run line fidelity even if estimated to take over an hour",
    )
    parser.add_argument(
        "--tiles-per-core",
        type=_positive_int,
        default=1,
        help="simulate each work item of a core in at least this many steps (a simulation "
        "grain: results move by under 2%%; default 1)",
    )
    parser.add_argument(
        "--step",
        type=_size,
        metavar="SIZE",
        help="the most bytes one simulation step issues, e.g. 64KiB (default 512KiB; finer "
        "is slower, and moves results by under 2%%)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        help="simulations to run at once in separate processes (default: as many as CPUs)",
    )
    parser.add_argument(
        "--json", metavar="FILE", type=_output_file, help="write the result document as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _add_sweep(commands: Any) -> None:
    """`bnsim sweep`."""
    sweep = commands.add_parser(
        "sweep", help="simulate a grid of points in parallel, storing each as it finishes"
    )
    sweep.add_argument("file", nargs="?", help="a sweep YAML file instead of the flags below")
    sweep.add_argument("--hw", help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    sweep.add_argument(
        "--workload", action="append", metavar="W", help="zoo model or workload YAML, repeatable"
    )
    sweep.add_argument(
        "--scheme", action="append", metavar="SPEC", help="repeatable (default: baseline and bnff)"
    )
    sweep.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=VALUES",
        help="a grid axis, repeatable: a hardware key, batch, image, workload or scheme with "
        "values v1,v2,... or a range START..STOP*FACTOR or START..STOP+STEP "
        "(e.g. llc.size=2MiB..64MiB*2)",
    )
    _add_overrides(sweep, "fixed hardware override")
    sweep.add_argument(
        "--batch",
        type=_positive_int,
        help="mini-batch size (default: the workload file's own, else 32)",
    )
    sweep.add_argument("--image", type=_positive_int, help="input height = width in pixels")
    sweep.add_argument(
        "--fidelity", choices=["fast", "line", "analytic"], default="fast", help="default fast"
    )
    sweep.add_argument("--tiles-per-core", type=_positive_int, default=1, help="default 1")
    sweep.add_argument(
        "--step", type=_size, metavar="SIZE", help="the most bytes one step issues (default 512KiB)"
    )
    sweep.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder (its store)")
    sweep.add_argument(
        "--jobs", type=_positive_int, help="processes (local) or workers (Dask); default: CPUs"
    )
    sweep.add_argument(
        "--executor",
        choices=["local", "dask"],
        default="local",
        help="local processes (default) or Dask (pip install 'bnsim[dask]')",
    )
    sweep.add_argument(
        "--scheduler", metavar="ADDRESS", help="a Dask scheduler (default: start a LocalCluster)"
    )
    sweep.add_argument(
        "--retry-failed", action="store_true", help="run the stored failed points again"
    )
    sweep.add_argument(
        "--plot", action="store_true", help="draw speedup and traffic against the first grid key"
    )
    sweep.add_argument(
        "--report",
        metavar="FILE.html",
        type=_report_file,
        help="write a single-file HTML report of the sweep when it ends",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    sweep.set_defaults(handler=_sweep)


def _add_plot(commands: Any) -> None:
    """`bnsim plot`."""
    from bnsim.report.plotdata import SWEEP_METRICS

    plot = commands.add_parser("plot", help="draw figures from saved result documents")
    plot.add_argument(
        "results",
        nargs="+",
        metavar="RESULT.json|DIR",
        help="result documents of bnsim run --json, or one bnsim sweep folder",
    )
    plot.add_argument(
        "--kind",
        choices=PLOT_KINDS,
        default="traffic",
        help="traffic or time breakdown per scheme (default traffic); speedup: a metric against "
        "--x over several documents; layers: DRAM traffic per layer of two schemes; roofline: "
        "every kernel under the machine's roofs",
    )
    plot.add_argument(
        "--x", metavar="PARAMETER", help="for --kind speedup: llc.size, cores.count, batch, ..."
    )
    plot.add_argument(
        "--metric",
        choices=list(SWEEP_METRICS),
        default="speedup",
        help="for --kind speedup: what to draw against --x (default speedup)",
    )
    plot.add_argument(
        "--schemes", metavar="A,B,...", help="only these schemes, in this order (default: all)"
    )
    plot.add_argument(
        "--out", required=True, type=_output_file, help="image file: .png, .svg or .pdf"
    )
    plot.set_defaults(handler=_plot)
    report = commands.add_parser(
        "report", help="write a single-file HTML report of a result document or a sweep folder"
    )
    report.add_argument(
        "source",
        metavar="RESULT.json|DIR",
        help="a document of bnsim run --json, or a sweep folder",
    )
    report.add_argument(
        "--out", required=True, metavar="FILE.html", type=_report_file, help="the report to write"
    )
    report.set_defaults(handler=_report)


def _add_schemes_and_verify(commands: Any) -> None:
    """`bnsim schemes` and `bnsim verify`."""
    schemes = commands.add_parser("schemes", help="the restructuring schemes and their options")
    schemes.set_defaults(handler=_schemes)
    check = commands.add_parser(
        "verify", help="prove schemes compute what the reference computes (NumPy, down-scaled)"
    )
    check.add_argument(
        "--workload",
        required=True,
        help="zoo model name, workload YAML or ONNX file, or torchvision:NAME",
    )
    check.add_argument(
        "--scheme",
        action="append",
        metavar="SPEC",
        help="scheme to verify, repeatable (default: fission, bnff, recompute)",
    )
    check.add_argument(
        "--hw",
        default="hwconfigs/cmp16.yaml",
        help="machine whose kernel library splits the kernels into the tiles verified "
        "(default: hwconfigs/cmp16.yaml)",
    )
    _add_overrides(check, "override a hardware key of --hw (repeatable)")
    check.add_argument("--seed", type=int, default=0, help="seed of data, weights and tile order")
    check.add_argument(
        "--width-divisor",
        type=_positive_int,
        default=8,
        help="divide every layer's channels by this (default 8)",
    )
    check.add_argument(
        "--json", metavar="FILE", type=_output_file, help="write the reports as JSON"
    )
    check.set_defaults(handler=_verify)


def _add_membench(commands: Any) -> None:
    """`bnsim membench`."""
    from bnsim.sim.membench import KERNELS

    bench = commands.add_parser(
        "membench", help="STREAM's kernels on the simulated machine's DRAM (GB/s, row hits, bus)"
    )
    bench.add_argument("--hw", required=True, help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    bench.add_argument(
        "--kernel",
        action="append",
        choices=list(KERNELS),
        help="a kernel to run (repeatable; default: all)",
    )
    bench.add_argument(
        "--array-size",
        type=_size,
        default=None,
        metavar="SIZE",
        help="bytes per array, e.g. 64MiB (default: four times the LLC, STREAM's rule)",
    )
    bench.add_argument(
        "--cores", type=_positive_int, default=None, help="cores that run it (default: all)"
    )
    _add_overrides(
        bench, "override a hardware key, e.g. --set cores.prefetch.distance=0 (repeatable)"
    )
    bench.add_argument(
        "--json", metavar="FILE", type=_output_file, help="also write the results as JSON"
    )
    bench.set_defaults(handler=_membench)


def _add_hw(commands: Any) -> None:
    """`bnsim hw show|keys`."""
    hw = commands.add_parser("hw", help="inspect hardware configs")
    hw_commands = hw.add_subparsers(dest="subcommand", required=True, parser_class=_Parser)
    show = hw_commands.add_parser("show", help="print the resolved machine with derived peaks")
    show.add_argument("file", help="hardware YAML file, e.g. hwconfigs/cmp16.yaml")
    _add_overrides(show, "override a key before validation, e.g. --set llc.size=32MiB (repeatable)")
    show.add_argument("--json", action="store_true", help="print the resolved machine as JSON")
    show.set_defaults(handler=_hw_show)
    keys = hw_commands.add_parser("keys", help="every config key with its unit and meaning")
    keys.add_argument("--markdown", action="store_true", help="print a Markdown table")
    keys.set_defaults(handler=_hw_keys)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one bnsim command; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except (
        SystemExit
    ) as stop:  # --help, --version and usage errors: argparse has printed its message
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    logging.basicConfig(level=args.log_level, format="bnsim: %(levelname)s: %(message)s")
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, WorkloadError) as err:
        print(f"bnsim: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InfeasibleError as err:
        print(f"bnsim: infeasible: {err}", file=sys.stderr)
        return EXIT_INFEASIBLE
    except BnsimError as err:
        print(f"bnsim: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_UNEXPECTED
    except KeyboardInterrupt:
        print("bnsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. `| head`); nothing more to say
        return EXIT_OK
