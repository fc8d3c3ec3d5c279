"""Value types of the hardware config: dimensioned fields, with units in YAML, numbers in Python.

`Bytes`, `Hertz`, `BytesPerSecond`, `Seconds` and `Cycles` accept "64KiB", "2.6GHz", "21.33GB/s",
"90ns", "14cycles" in a file and hold the canonical number (bnsim.units parses); `Unit` marks them
for docs/hardware.md. `ConfigModel` is the base of every section (bnsim.config.machine,
bnsim.config.dram).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationInfo

from bnsim import units


@dataclass(frozen=True, slots=True)
class Unit:
    """Marks a dimensioned field: YAML spells it with a unit, Python holds the canonical number."""

    name: str  # what docs/hardware.md prints in its unit column
    example: str


def _dimensioned(parse: Any, spell: Any, unit: Unit) -> tuple[Any, ...]:
    def validate(value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            return parse(value)
        units_required = bool(info.context and info.context.get("units_required"))
        if units_required or isinstance(value, bool):
            parse(value)  # raises with the "has no unit" message
        return value

    return (BeforeValidator(validate), PlainSerializer(spell, when_used="json"), unit)


STRICT = {"strict": True}
Bytes = Annotated[
    int,
    *_dimensioned(units.parse_bytes, units.bytes_text, Unit("bytes", "64KiB")),
    Field(gt=0, **STRICT),
]
Hertz = Annotated[
    float,
    *_dimensioned(units.parse_frequency, units.frequency_text, Unit("Hz", "2.6GHz")),
    Field(gt=0),
]
BytesPerSecond = Annotated[
    float,
    *_dimensioned(units.parse_bandwidth, units.bandwidth_text, Unit("bytes/s", "21.33GB/s")),
    Field(gt=0),
]
Seconds = Annotated[
    float, *_dimensioned(units.parse_duration, units.duration_text, Unit("s", "90ns")), Field(ge=0)
]
Cycles = Annotated[
    int,
    *_dimensioned(units.parse_cycles, units.cycles_text, Unit("cycles", "14cycles")),
    Field(ge=0, **STRICT),
]
Count = Annotated[int, Field(gt=0, **STRICT)]
Fraction = Annotated[float, Unit("fraction (0, 1]", "0.85"), Field(gt=0, le=1, **STRICT)]
CyclesPerElement = Annotated[float, Unit("cycles/element", "0.0625"), Field(gt=0, **STRICT)]


class ConfigModel(BaseModel):
    """A section of the hardware config: frozen, no unknown keys, YAML spellings as aliases."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0
