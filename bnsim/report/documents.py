"""Saved result documents as plot input: read them, and find the value of a swept parameter.

A parameter is a hardware key path (`llc.size`, `cores.count`, `dram.channel_bandwidth`, ...) read
from the document's resolved machine, or `batch` or `image` from its workload. Values with units
come back in a unit fit for an axis (sizes in MiB, bandwidths in GB/s, frequencies in GHz,
durations in ns).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bnsim import units
from bnsim.errors import ConfigError
from bnsim.result import RunResult, runs_from_document


def read_document(path: str | Path) -> tuple[dict[str, Any], list[RunResult]]:
    """A result document (`bnsim run --json`) and its runs.

    Raises:
        ConfigError: the file is missing, not JSON, or not a bnsim result document.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a result JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a JSON result document ({err})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a bnsim result document (top level is not an object)")
    try:
        return document, runs_from_document(document)
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a bnsim result document ({err})") from None


def parameter_value(document: dict[str, Any], key: str, *, source: str = "") -> tuple[float, str]:
    """The value of parameter `key` in a result document, and its axis unit ("" if none).

    Raises:
        ConfigError: no such key in the document, or a value that is not a number.

    >>> parameter_value({"hardware": {"llc": {"size": "22MiB"}}}, "llc.size")
    (22.0, 'MiB')
    >>> parameter_value({"workload": {"batch": 32}}, "batch")
    (32.0, '')
    """
    where = f"{source}: " if source else ""
    workload = document.get("workload", {})
    if key == "batch":
        return float(workload["batch"]), ""
    if key == "image":
        return float(workload["input"][1]), "px"
    value: Any = document.get("hardware", {})
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(
                f"{where}no parameter {key!r} in the result document; use a hardware key such "
                "as llc.size or cores.count (bnsim hw keys), or batch or image"
            )
        value = value[part]
    try:
        return units.axis_value(value)
    except ConfigError:
        raise ConfigError(
            f"{where}parameter {key!r} is {value!r}, not a number to plot against"
        ) from None
