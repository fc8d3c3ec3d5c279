"""The sweep's store: DIR/results.jsonl, appended and fsynced as tasks finish."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bnsim.errors import ConfigError
from bnsim.experiment.sweeps.plan import _canonical

RESULTS_FILE = "results.jsonl"


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


def records_of(folder: str | Path) -> list[dict[str, Any]]:
    """Every stored record of a sweep folder (finished, failed), in grid order.

    Raises:
        ConfigError: no store in `folder`.
    """
    store = Store(folder)
    if not store.path.exists():
        raise ConfigError(f"{folder}: no {RESULTS_FILE}; is it a bnsim sweep folder?")
    return sorted(store.load().values(), key=lambda record: record["index"])
