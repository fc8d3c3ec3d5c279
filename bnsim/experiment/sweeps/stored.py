"""A stored sweep read back for plotting: points per group of the other grid values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bnsim import units
from bnsim.errors import ConfigError
from bnsim.experiment.sweeps.store import RESULTS_FILE, records_of
from bnsim.result import RunResult


@dataclass(frozen=True)
class StoredSweep:
    """What a plot of a stored sweep draws against one of its grid keys."""

    groups: dict[str, list[tuple[float, list[RunResult]]]]  # other grid values → (x, runs)
    unit: str  # of the x values
    context: str  # what every point shares: "densenet121, batch 32, on cmp16" (parts that vary


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
