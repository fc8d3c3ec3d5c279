"""Every key path of the hardware config, with its type, unit and meaning.

What `bnsim hw keys` prints and docs/hardware.md lists (a test keeps the two equal), read from the
field declarations of bnsim.config.machine.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel

from bnsim.config.machine import Machine
from bnsim.config.parts import Unit


@dataclass(frozen=True, slots=True)
class KeyDoc:
    """One documented config key."""

    path: str
    type_name: str
    unit: str
    required: bool
    default: str
    description: str
    section: str = ""  # the optional section that requires it, if any ("dram.device")


def describe_keys(
    model: type[BaseModel] = Machine,
    prefix: str = "",
    *,
    section_required: bool = True,
    section: str = "",
) -> Iterator[KeyDoc]:
    """Every key path of the hardware config, in file order, with its type, unit and meaning."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = _nested_model(field.annotation)
        arguments = getattr(field.annotation, "__args__", ())
        scalar = next((a for a in arguments if a is not type(None) and a is not nested), None)
        if nested is not None and scalar is None:
            required = section_required and field.is_required()
            optional_section = section or ("" if field.is_required() else key)
            yield from describe_keys(
                nested, f"{key}.", section_required=required, section=optional_section
            )
            continue
        unit = next((item for item in field.metadata if isinstance(item, Unit)), None)
        annotation = field.annotation
        if type(None) in arguments or nested is not None:  # optional, or a value or a mapping:
            annotation = scalar  # its type is the value's
            if get_origin(annotation) is Annotated:
                unit = next((item for item in get_args(annotation) if isinstance(item, Unit)), unit)
                annotation = get_args(annotation)[0]
        type_name = getattr(annotation, "__name__", str(annotation))
        if getattr(annotation, "__origin__", None) is Literal:
            type_name = " | ".join(str(arg) for arg in getattr(annotation, "__args__", ()))
        default = "" if field.is_required() else repr(field.default)
        if field.default is None and not field.is_required():
            default = "none"
        yield KeyDoc(
            path=key,
            type_name=type_name,
            unit=unit.name if unit else "",
            required=section_required and field.is_required(),
            default=default,
            description=field.description or "",
            section=section if field.is_required() else "",
        )
        if nested is not None:  # the mapping's keys, each required when the mapping is given
            yield from describe_keys(nested, f"{key}.", section_required=False, section=key)


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = (annotation, *getattr(annotation, "__args__", ()))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


# a quantity's column in tables: the key with its unit, as bnsim's own columns are named
UNIT_SUFFIXES = {
    "bytes": "bytes",
    "Hz": "hz",
    "s": "s",
    "cycles": "cycles",
    "cycles/element": "cycles_per_element",
    "bytes/s": "bytes_per_s",
}


def key_value(machine: Machine, path: str) -> tuple[Any, str]:
    """The value `path` (`llc.size`) resolves to in `machine`, as Python holds it (bytes, Hz,
    seconds), and its unit's column suffix ("" for counts, fractions and names).

    >>> from bnsim.config.machine import load_machine
    >>> key_value(load_machine("hwconfigs/cmp16.yaml"), "llc.size")
    (23068672, 'bytes')
    >>> key_value(load_machine("hwconfigs/cmp16.yaml"), "cores.count")
    (16, '')
    """
    value: Any = machine
    for part in path.split("."):
        if isinstance(value, dict):
            value = value[part]
            continue
        fields = type(value).model_fields
        name = next(name for name, field in fields.items() if part in (field.alias, name))
        value = getattr(value, name)
    return value, UNIT_SUFFIXES.get(_units()[path], "")


@functools.cache
def _units() -> dict[str, str]:
    return {doc.path: doc.unit for doc in describe_keys()}
