"""A sweep's definition and its grid syntax: keys with lists or ranges of values (2MiB..64MiB*2)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bnsim import units
from bnsim.errors import ConfigError
from bnsim.schemes import DEFAULT_SCHEMES

Executor = Literal["local", "dask"]


POINT_KEYS = ("workload", "batch", "image", "scheme")  # grid keys that are not hardware keys


_RANGE = re.compile(
    r"^\s*(?P<start>[^,]+?)\s*\.\.\s*(?P<stop>[^,]+?)\s*(?P<op>[*+])\s*(?P<step>[^*+,]+?)\s*$"
)


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
    start, stop, step = (units.number_and_unit(match[part]) for part in ("start", "stop", "step"))
    if (
        start is None
        or stop is None
        or step is None
        or min(start[0], stop[0], step[0]) < 0
        or (match["op"] == "*" and step[1])
    ):
        raise ConfigError(
            f"--grid {key}={text}: a range is START..STOP*FACTOR or START..STOP+STEP, "
            "e.g. 2MiB..64MiB*2 or 4..16+4"
        )
    (first, unit), (last, stop_unit), (amount, step_unit) = start, stop, step
    last *= _unit_ratio(stop_unit, unit, key, text)
    if match["op"] == "+":  # a step with a unit: 2MiB..32MiB+2MiB
        amount *= _unit_ratio(step_unit or unit, unit, key, text)
    if match["op"] == "*" and (amount <= 1 or first <= 0):
        raise ConfigError(f"--grid {key}={text}: a geometric range needs START > 0 and FACTOR > 1")
    if match["op"] == "+" and amount <= 0:
        raise ConfigError(f"--grid {key}={text}: an arithmetic range needs STEP > 0")
    found: list[str] = []
    value = first
    while value <= last * (1 + 1e-12):
        number = str(int(value)) if value == int(value) else f"{value:.9f}".rstrip("0")
        found.append(number + unit)
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
