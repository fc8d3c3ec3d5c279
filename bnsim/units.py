"""Parse and format quantities with units ("64KiB", "2.6GHz", "21.3GB/s", "90ns", "14cycles").

Sizes: KiB, MiB, GiB, TiB are binary (powers of 1024); KB, MB, GB, TB are decimal (powers of 1000),
as in IEC 80000-13. Bandwidths take the same prefixes per second. A bare number is never accepted
for a dimensioned quantity: "65536" could be bytes, lines or KiB, so it is rejected with the
expected spelling. Leaf module: imports only bnsim.errors.
"""

from __future__ import annotations

import math
import re

from bnsim.errors import ConfigError

# a number and its unit, if any: the one spelling of quantities everywhere (configs, --set, grids)
_NUMBER_AND_UNIT = re.compile(
    r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z/]*)\s*$"
)

BYTE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
FREQUENCY_UNITS: dict[str, float] = {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9}
BANDWIDTH_UNITS: dict[str, float] = {
    f"{unit}/s": float(scale) for unit, scale in BYTE_UNITS.items()
}
DURATION_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
CYCLE_UNITS: dict[str, int] = {"cycle": 1, "cycles": 1}


def number_and_unit(text: str) -> tuple[float, str] | None:
    """A number and the unit written after it ("" if none), or None if `text` is not one.

    >>> number_and_unit("2.5MiB"), number_and_unit("16"), number_and_unit("MiB")
    ((2.5, 'MiB'), (16.0, ''), None)
    """
    match = _NUMBER_AND_UNIT.match(text)
    return (float(match[1]), match[2]) if match else None


def _scale(value: float, scale: float) -> float:
    """value × scale; divides by the exact reciprocal for sub-units, so 90ns == 9e-08 exactly."""
    return value * scale if scale >= 1 else value / round(1 / scale)


def _unscale(value: float, scale: float) -> float:
    return value / scale if scale >= 1 else value * round(1 / scale)


def _split(
    text: object, what: str, units: dict[str, int] | dict[str, float], example: str
) -> tuple[float, str]:
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ConfigError(f"expected a {what} such as '{example}', got {text!r}")
    if not isinstance(text, str):
        raise ConfigError(
            f"{text!r} has no unit: write a {what} with its unit, such as '{example}'"
        )
    match = _NUMBER_AND_UNIT.match(text)
    if match is None or not match[2]:
        if re.fullmatch(r"\s*[+-]?[\d.eE+-]+\s*", text):
            raise ConfigError(
                f"'{text}' has no unit: write a {what} with its unit, such as '{example}'"
            )
        raise ConfigError(f"cannot parse '{text}' as a {what} (expected e.g. '{example}')")
    number, unit = match.groups()
    if unit not in units:
        raise ConfigError(
            f"'{text}': unknown unit '{unit}' for a {what} (allowed: {', '.join(units)})"
        )
    value = float(number)
    if not math.isfinite(value):
        raise ConfigError(f"'{text}' is not a finite {what}")
    return value, unit


def parse_bytes(text: object) -> int:
    """Parse a size into bytes.

    Raises:
        ConfigError: no unit, an unknown unit, or a fractional number of bytes.

    >>> parse_bytes("64KiB"), parse_bytes("22MiB"), parse_bytes("1.5KB"), parse_bytes("64 B")
    (65536, 23068672, 1500, 64)
    """
    value, unit = _split(text, "size", BYTE_UNITS, "64KiB")
    exact = value * BYTE_UNITS[unit]
    if exact != int(exact):
        raise ConfigError(f"'{text}' is not a whole number of bytes")
    return int(exact)


def parse_frequency(text: object) -> float:
    """Parse a frequency into Hz.

    >>> parse_frequency("2.6GHz")
    2600000000.0
    """
    value, unit = _split(text, "frequency", FREQUENCY_UNITS, "2.6GHz")
    return value * FREQUENCY_UNITS[unit]


def parse_bandwidth(text: object) -> float:
    """Parse a bandwidth into bytes per second (GB/s decimal, GiB/s binary).

    >>> parse_bandwidth("21.3GB/s"), parse_bandwidth("1KiB/s")
    (21300000000.0, 1024.0)
    """
    value, unit = _split(text, "bandwidth", BANDWIDTH_UNITS, "21.3GB/s")
    return value * BANDWIDTH_UNITS[unit]


def parse_duration(text: object) -> float:
    """Parse a duration into seconds.

    >>> parse_duration("90ns")
    9e-08
    """
    value, unit = _split(text, "duration", DURATION_UNITS, "90ns")
    return _scale(value, DURATION_UNITS[unit])


def parse_cycles(text: object) -> int:
    """Parse a whole number of clock cycles.

    >>> parse_cycles("14cycles"), parse_cycles("1 cycle")
    (14, 1)
    """
    value, _ = _split(text, "cycle count", CYCLE_UNITS, "14cycles")
    if value != int(value):
        raise ConfigError(f"'{text}' is not a whole number of cycles")
    return int(value)


def _exact_text(
    value: float, units: dict[str, int] | dict[str, float], *, integral: bool = False
) -> str:
    """The spelling with the largest unit that parses back to exactly `value`."""
    for unit, scale in sorted(units.items(), key=lambda item: -item[1]):
        scaled = _unscale(value, scale)
        if (abs(scaled) < 1 and value != 0) or (integral and scaled != int(scaled)):
            continue
        number = int(scaled) if scaled == int(scaled) else scaled
        if _scale(float(number), scale) == value:
            return f"{number}{unit}"
    smallest = min(units, key=lambda unit: units[unit])
    return f"{_unscale(value, units[smallest])!r}{smallest}"


def bytes_text(num_bytes: int) -> str:
    """Exact, re-parseable spelling of a size: the inverse of parse_bytes.

    >>> bytes_text(23068672), bytes_text(1500), bytes_text(100)
    ('22MiB', '1500B', '100B')
    """
    binary = {unit: scale for unit, scale in BYTE_UNITS.items() if unit == "B" or "i" in unit}
    spelled = _exact_text(num_bytes, binary, integral=True)
    decimal = _exact_text(num_bytes, BYTE_UNITS, integral=True)
    return min((spelled, decimal), key=len)


def frequency_text(hz: float) -> str:
    """Exact, re-parseable spelling of a frequency.

    >>> frequency_text(2.6e9)
    '2.6GHz'
    """
    return _exact_text(hz, FREQUENCY_UNITS)


def bandwidth_text(bytes_per_second: float) -> str:
    """Exact, re-parseable spelling of a bandwidth (decimal prefixes).

    >>> bandwidth_text(21.3e9)
    '21.3GB/s'
    """
    decimal = {unit: scale for unit, scale in BANDWIDTH_UNITS.items() if "i" not in unit}
    return _exact_text(bytes_per_second, decimal)


def duration_text(seconds: float) -> str:
    """Exact, re-parseable spelling of a duration.

    >>> duration_text(9e-08)
    '90ns'
    """
    return _exact_text(seconds, DURATION_UNITS)


def cycles_text(cycles: int) -> str:
    """Spelling of a cycle count that parse_cycles accepts.

    >>> cycles_text(14), cycles_text(1)
    ('14cycles', '1cycle')
    """
    return f"{cycles}cycle" if cycles == 1 else f"{cycles}cycles"


def _human(value: float, units: list[tuple[str, float]], digits: int) -> str:
    for unit, scale in units:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {unit}"
    unit, scale = units[-1]
    return f"{value / scale:.{digits}g} {unit}"


def format_bytes(num_bytes: float, *, binary: bool = False, digits: int = 4) -> str:
    """Human-readable size: decimal (GB) for traffic, binary (MiB) for cache capacities.

    >>> format_bytes(38.2e9), format_bytes(23068672, binary=True)
    ('38.2 GB', '22 MiB')
    """
    prefixes = ["Ti", "Gi", "Mi", "Ki"] if binary else ["T", "G", "M", "K"]
    base = 1024 if binary else 1000
    units = [(f"{prefix}B", float(base ** (4 - index))) for index, prefix in enumerate(prefixes)]
    return _human(num_bytes, [*units, ("B", 1.0)], digits)


def format_frequency(hz: float) -> str:
    """Human-readable frequency.

    >>> format_frequency(2.6e9)
    '2.6 GHz'
    """
    return _human(hz, [("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3), ("Hz", 1.0)], 4)


def format_bandwidth(bytes_per_second: float) -> str:
    """Human-readable bandwidth (decimal prefixes, as DRAM vendors quote them).

    >>> format_bandwidth(127.968e9)
    '128 GB/s'
    """
    return _human(
        bytes_per_second,
        [("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3), ("B/s", 1.0)],
        4,
    )


def format_duration(seconds: float) -> str:
    """Human-readable duration.

    >>> format_duration(9e-08), format_duration(0.0123), format_duration(5400)
    ('90 ns', '12.3 ms', '1.5 h')
    """
    scales = [("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)]
    return _human(seconds, [*scales, ("ps", 1e-12)], 4)


def format_flop_rate(flops_per_second: float) -> str:
    """Human-readable FLOP rate.

    >>> format_flop_rate(2.6624e12)
    '2.662 TFLOP/s'
    """
    return _human(
        flops_per_second,
        [("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6), ("FLOP/s", 1.0)],
        4,
    )


def format_count(count: float, unit: str, digits: int = 4) -> str:
    """Human-readable count with an SI prefix and its unit.

    >>> format_count(2.865e9, "MAC"), format_count(512, "MAC")
    ('2.865 GMAC', '512 MAC')
    """
    return _human(
        count,
        [(f"T{unit}", 1e12), (f"G{unit}", 1e9), (f"M{unit}", 1e6), (f"K{unit}", 1e3), (unit, 1.0)],
        digits,
    )


_AXIS_UNITS = (  # (parse, divide by, axis unit), tried in order
    (parse_bytes, 2**20, "MiB"),
    (parse_bandwidth, 1e9, "GB/s"),
    (parse_frequency, 1e9, "GHz"),
    (parse_duration, 1e-9, "ns"),
    (parse_cycles, 1, "cycles"),
)


def axis_value(value: object) -> tuple[float, str]:
    """A config value as a number for a plot axis, and its unit: sizes in MiB, bandwidths in GB/s,
    frequencies in GHz, durations in ns; plain numbers as they are.

    Raises:
        ConfigError: not a number, with or without a unit.

    >>> axis_value("22MiB"), axis_value("21.333GB/s"), axis_value(16), axis_value("0.78")
    ((22.0, 'MiB'), (21.333, 'GB/s'), (16.0, ''), (0.78, ''))
    """
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value), ""
    try:
        return float(str(value)), ""
    except ValueError:
        pass
    for parse, scale, unit in _AXIS_UNITS:
        try:
            return parse(value) / scale, unit
        except ConfigError:
            continue
    raise ConfigError(f"{value!r} is not a number")
