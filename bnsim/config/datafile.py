"""Read YAML data files strictly and turn validation failures into one-line, located error messages.

Shared by the hardware loader (bnsim.config.machine) and the workload loader (bnsim.graph.load), so
that both reject the same things the same way: missing files, directories, non-UTF-8 bytes, YAML
syntax errors, duplicate keys, non-mapping documents and Python tags.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bnsim.errors import BnsimError

MAX_DEPTH = 64  # nesting of mappings and lists; bnsim's files need fewer than 10


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (instead of silently keeping the last one),
    aliases (a few of them expand into billions of nodes: the "billion laughs") and documents
    nested deeper than MAX_DEPTH (the parser would exhaust Python's stack)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases (*{event.anchor}) are not allowed in bnsim files; write the value out",
                event.start_mark,
            )
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (line {line})", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml_text(text: str, source: str, error_class: type[BnsimError]) -> dict[str, Any]:
    """Parse a YAML document that must be a mapping.

    Raises:
        error_class: on syntax errors, duplicate keys, aliases, deep nesting, unsafe tags or a
            non-mapping document.
    """
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except RecursionError:  # deep flow collections recurse in the scanner before composing
        raise error_class(
            f"{source}: invalid YAML: nested deeper than {MAX_DEPTH} levels"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error_class(f"{source}: invalid YAML{where}: {problem}") from err
    if document is None:
        raise error_class(f"{source}: the file is empty (expected a YAML mapping)")
    if not isinstance(document, dict):
        raise error_class(
            f"{source}: expected a YAML mapping at the top level, got {type(document).__name__}"
        )
    return document


def read_yaml(path: str | Path, error_class: type[BnsimError]) -> dict[str, Any]:
    """Read a YAML file whose top level must be a mapping.

    Raises:
        error_class: the file is missing, a directory, unreadable, not UTF-8, or not valid YAML.
    """
    path = Path(path)
    if not path.exists():
        raise error_class(f"{path}: no such file")
    if path.is_dir():
        raise error_class(f"{path}: is a directory, expected a YAML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error_class(f"{path}: not a UTF-8 text file (byte {err.start})") from err
    except OSError as err:
        raise error_class(f"{path}: cannot read: {err.strerror}") from err
    return parse_yaml_text(text, str(path), error_class)


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """Keys accepted at `loc` (a pydantic error location) inside `model`, or None if unknown."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {field.alias or name: field for name, field in current.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            return None
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(field.alias or name for name, field in current.model_fields.items())
    return None


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside `X`, `X | None` or `Optional[X]`, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def describe_errors(
    err: ValidationError,
    model: type[BaseModel] | None = None,
    location_names: Mapping[tuple[int | str, ...], str] | None = None,
) -> list[str]:
    """One 'key.path: message' line per pydantic error, in a form a user can act on.

    Args:
        err: the pydantic error.
        model: the top-level model, used to list the allowed keys when a key is unknown.
        location_names: optional names for location prefixes (e.g. list index → layer name).
    """
    lines = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        path = _path_text(loc, location_names or {})
        kind = error["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc) if model is not None else None
            message = "unknown key"
            if allowed:
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                message += f" ({hint}allowed: {', '.join(allowed)})"
        elif kind == "missing":
            message = "missing required key"
        elif kind == "union_tag_invalid":  # an unknown value of a discriminator such as `kind`
            context = error.get("ctx", {})
            expected = re.findall(r"'([^']+)'", str(context.get("expected_tags", "")))
            close = difflib.get_close_matches(str(context.get("tag", "")), expected, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            message = (
                f"unknown {context.get('discriminator', 'kind').strip(chr(39))} "
                f"'{context.get('tag')}' ({hint}known: {', '.join(expected)})"
            )
        elif kind in ("value_error", "assertion_error"):
            message = (
                str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            )
        else:
            message = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {error['input']!r}"
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _path_text(loc: tuple[int | str, ...], names: Mapping[tuple[int | str, ...], str]) -> str:
    parts: list[str] = []
    for index in range(len(loc)):
        prefix = loc[: index + 1]
        if prefix in names:
            parts = [names[prefix]]
        elif isinstance(loc[index], int):
            parts.append(f"[{loc[index]}]")
        else:
            parts.append(("." if parts else "") + str(loc[index]))
    return "".join(parts)


def read_yaml_with_base(
    path: Path, error_class: type[BnsimError], seen: tuple[Path, ...] = ()
) -> dict[str, Any]:
    """A YAML mapping (a hardware config) over the one its `base` key names (a path relative to
    it): sections merge key by key, any other value replaces the base's.

    Raises:
        error_class: as read_yaml, or a base that is not a path or leads back to the file.
    """
    raw = read_yaml(path, error_class)
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str) or not base.strip():
        raise error_class(f"{path}: base: expected the path of another file of the same kind")
    base_path = path.parent / base
    if base_path.resolve() in seen or base_path.resolve() == path.resolve():
        raise error_class(f"{path}: base: {base} leads back to this file")
    merged = read_yaml_with_base(base_path, error_class, (*seen, path.resolve()))
    _merge(merged, raw)
    return merged


def _merge(into: dict[str, Any], keys: dict[str, Any]) -> None:
    for key, value in keys.items():
        known = into.get(key)
        if isinstance(known, dict) and isinstance(value, dict):
            _merge(known, value)
        else:
            into[key] = value
