"""A sweep read from a YAML file: the file's schema, paths relative to the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bnsim import units
from bnsim.config.datafile import describe_errors, read_yaml
from bnsim.errors import ConfigError
from bnsim.experiment.sweeps.grid import Sweep, grid_values
from bnsim.schemes import DEFAULT_SCHEMES


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
