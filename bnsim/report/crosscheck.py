"""What `bnsim crosscheck` prints: every fidelity of a point against line fidelity, in totals, per
phase and per layer kind."""

from __future__ import annotations

from collections.abc import Sequence

from bnsim.experiment.crosscheck import REFERENCE, TimedRun, differences
from bnsim.experiment.point import Point
from bnsim.report.tables import text_table


def describe_crosscheck(point: Point, timed: Sequence[TimedRun]) -> str:
    """The human summary of `bnsim crosscheck`: per scheme and fidelity, totals against line
    fidelity's, then DRAM traffic and time per phase and per layer kind."""
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
    if fidelity == REFERENCE:
        return "—"
    return "n/a" if relative is None else f"{relative:+.2%}"
