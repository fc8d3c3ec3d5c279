"""Single-file HTML reports of a simulated point or a stored sweep, readable offline.

A report holds the summary, the breakdown tables, the figures and the machine. Figures are PNG
images inside the file (data URIs) and the style sheet is inline: the file needs no network, no
other file and no script, so it can be mailed, archived beside a paper or opened from a laptop's
disk.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.figure import Figure

from bnsim.config.machine import Machine, machine_from_dict
from bnsim.errors import ConfigError
from bnsim.experiment.sweeps import SUMMARY_FILE, records_of, stored_points
from bnsim.files import write_text_whole
from bnsim.report import plots
from bnsim.report.machine import element_costs, machine_roofs, machine_rows
from bnsim.report.plotdata import baseline_index
from bnsim.report.summary import ATTRIBUTION, Table, phase_kind_table, scheme_table
from bnsim.result import RunResult, runs_from_document

FIGURE_DPI = 110
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
p.lead { color: #555; margin-top: 0; }
p.note { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
th { background: #f5f5f5; font-weight: 600; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
nav a { margin-right: 1em; }
"""


class Section(NamedTuple):
    """A titled part of a report: its heading and its HTML body."""

    title: str
    body: str


# --- a simulated point ---------------------------------------------------------------------------


def run_report(document: dict[str, Any], *, source: str = "result document") -> str:
    """The report of a result document (`bnsim run --json`, bnsim.point_document).

    Raises:
        ConfigError: not a bnsim result document, or its machine is not valid.
    """
    try:
        runs = runs_from_document(document)
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{source}: not a bnsim result document ({error})") from None
    machine = machine_from_dict(document["hardware"], source=f"{source} (hardware)")
    workload = document["workload"]
    heading = f"{workload['name']}, batch {workload['batch']}, on {machine.name}"
    fidelities = ", ".join(dict.fromkeys(run.fidelity for run in runs))
    lead = (
        f"One training iteration, forward and backward, {fidelities} fidelity; "
        f"bnsim {document.get('bnsim_version', '(version unknown)')}."
    )
    sections = [
        Section("Summary", table_html(scheme_table(runs)) + _workload_html(workload)),
        Section("Where traffic and time go", _breakdowns_html(runs)),
        Section("Figures", _run_figures_html(runs, machine, heading)),
        Section("Machine", machine_html(machine, document["hardware"])),
    ]
    return page(heading, lead, sections)


def _workload_html(workload: dict[str, Any]) -> str:
    channels, height, width = workload.get("input", ("?", "?", "?"))
    rows = [
        ["network", workload["name"]],
        ["batch", f"{workload['batch']} samples of {channels}×{height}×{width}"],
    ]
    if "params" in workload:
        rows.append(["parameters", f"{workload['params']:,}"])
    if "macs_per_sample" in workload:
        rows.append(["multiply-adds", f"{workload['macs_per_sample']:,} per sample"])
    return "<h3>Workload</h3>" + table_html(Table(["", ""], rows), header=False)


def _breakdowns_html(runs: Sequence[RunResult]) -> str:
    parts = [f'<p class="note">DRAM traffic (read + write) and time, {ATTRIBUTION}.</p>']
    for run in runs:
        parts.append(f"<h3>{html.escape(run.scheme)}</h3>")
        parts.append(table_html(phase_kind_table(run)))
    return "\n".join(parts)


def _run_figures_html(runs: Sequence[RunResult], machine: Machine, heading: str) -> str:
    figures: list[tuple[str, Figure]] = [
        ("DRAM traffic per scheme, by layer kind and phase",
         plots.traffic_breakdown(runs, title=f"{heading}: DRAM traffic")),
        ("Iteration time per scheme, by layer kind and phase",
         plots.time_breakdown(runs, title=f"{heading}: iteration time")),
    ]  # fmt: skip
    if len(runs) >= 2:
        first = baseline_index(runs) or 0
        second = next(index for index in range(len(runs)) if index != first)
        a, b = runs[first], runs[second]
        figures.append(
            (
                f"DRAM traffic per layer, {a.scheme} and {b.scheme}",
                plots.layer_traffic(
                    a, b, title=f"{heading}: DRAM traffic per layer, {a.scheme} vs {b.scheme}"
                ),
            )
        )
    figures.append(
        (
            "Kernels on the roofline (bytes the DRAM channels moved during each kernel)",
            plots.roofline(
                runs, machine_roofs(machine), title=f"{heading}: kernels on the roofline"
            ),
        )
    )
    return "\n".join(figure_html(figure, caption) for caption, figure in figures)


def machine_html(machine: Machine, configuration: dict[str, Any]) -> str:
    """A machine's parts, its element-wise costs, and its whole configuration (folded)."""
    title = html.escape(machine.name)
    if machine.description:
        title += f": {html.escape(machine.description)}"
    return (
        f"<p>{title}</p>"
        + table_html(Table(["", ""], machine_rows(machine)), header=False)
        + "<h3>Element-wise ops</h3>"
        + table_html(Table(["op", "cycles per element per core"], element_costs(machine)))
        + f'<p class="note">Rates from: {html.escape(machine.compute.source)}</p>'
        + "<details><summary>The whole configuration, as simulated</summary><pre>"
        + html.escape(json.dumps(configuration, indent=1))
        + "</pre></details>"
    )


# --- a stored sweep ------------------------------------------------------------------------------


def sweep_report(folder: str | Path) -> str:
    """The report of a sweep folder (finished or not): its summary table, speedup and traffic
    against each numeric grid key, DRAM traffic by layer kind per point, and the machine of its
    first point.

    Raises:
        ConfigError: not a sweep folder, or no finished point yet.
    """
    folder = Path(folder)
    records = [record for record in records_of(folder) if record["status"] == "ok"]
    if not records:
        raise ConfigError(f"{folder}: no finished points yet")
    summary_path = folder / SUMMARY_FILE
    sections = []
    if summary_path.exists():
        with summary_path.open(encoding="utf-8", newline="") as file:
            rows = list(csv.reader(file))
        sections.append(Section("Summary", table_html(Table(rows[0], rows[1:]))))
    figures = []
    keys = [key for key in records[0]["values"] if key not in ("scheme", "workload")]
    for key in keys:
        try:
            stored = stored_points(folder, key)
        except ConfigError:
            continue  # not a number to plot against
        for metric in ("speedup", "traffic"):
            figure = plots.parameter_sweep(
                stored.groups, key, metric=metric, unit=stored.unit, context=stored.context
            )
            figures.append(figure_html(figure, f"{metric} against {key}"))
    if figures:
        sections.append(Section("Figures", "\n".join(figures)))
    sections.append(Section("DRAM traffic by layer kind", _sweep_kinds_html(records)))
    if "hardware" in records[0]:
        machine = machine_from_dict(records[0]["hardware"], source=f"{folder} (first point)")
        note = '<p class="note">The first point\'s machine; grid values change it per point.</p>'
        sections.append(Section("Machine", note + machine_html(machine, records[0]["hardware"])))
    context = stored_points(folder, keys[0]).context if keys else ""
    heading = f"Sweep {folder.name}" + (f": {context}" if context else "")
    lead = f"{len(records)} finished simulations; bnsim's sweep store {folder}."
    return page(heading, lead, sections)


def _sweep_kinds_html(records: Sequence[dict[str, Any]]) -> str:
    kinds: dict[str, None] = {}
    rows = []
    for record in records:
        by_kind: dict[str, int] = {}
        for row in record["run"]["breakdown"]:
            kind = row["layer_kind"]
            kinds.setdefault(kind)
            by_kind[kind] = by_kind.get(kind, 0) + row["dram_read_bytes"] + row["dram_write_bytes"]
        values = ", ".join(f"{key}={value}" for key, value in record["values"].items())
        rows.append((record["workload"], values, by_kind))
    header = ["workload", "grid point", *(f"{kind} GB" for kind in kinds)]
    cells = [
        [workload, values, *(f"{by_kind.get(kind, 0) / 1e9:.2f}" for kind in kinds)]
        for workload, values, by_kind in rows
    ]
    return f'<p class="note">{ATTRIBUTION}.</p>' + table_html(Table(header, cells))


# --- building blocks -----------------------------------------------------------------------------


def page(title: str, lead: str, sections: Iterable[Section]) -> str:
    """A whole HTML document: a title, a lead paragraph, a table of contents and the sections."""
    sections = list(sections)
    anchors = [f"s{number}" for number in range(1, len(sections) + 1)]
    contents = " ".join(
        f'<a href="#{anchor}">{html.escape(section.title)}</a>'
        for anchor, section in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        f'<h2 id="{anchor}">{html.escape(section.title)}</h2>\n{section.body}'
        for anchor, section in zip(anchors, sections, strict=True)
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="lead">{html.escape(lead)}</p>\n'
        f"<nav>{contents}</nav>\n{body}\n</body>\n</html>\n"
    )


def table_html(table: Table, *, header: bool = True) -> str:
    """A table of text cells; cells that read as numbers are right-aligned."""
    head = ""
    if header:
        head = "<tr>" + "".join(f"<th>{html.escape(name)}</th>" for name in table.header) + "</tr>"
    rows = "".join(
        "<tr>" + "".join(_cell(str(value)) for value in row) + "</tr>\n" for row in table.rows
    )
    return f"<table>\n{head}\n{rows}</table>"


def _cell(text: str) -> str:
    numeric = bool(text) and (text[0].isdigit() or (text[0] in "+-" and text[1:2].isdigit()))
    css = ' class="number"' if numeric else ""
    return f"<td{css}>{html.escape(text)}</td>"


def figure_html(figure: Figure, caption: str) -> str:
    """A figure as a PNG inside the page, with its caption as the image's text alternative."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    text = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def write_report(text: str, path: str | Path) -> Path:
    """Write a report whole or not at all (no half-written report)."""
    return write_text_whole(path, text)
