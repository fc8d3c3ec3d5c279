"""The restructuring schemes: a registry, `--scheme` spec parsing, and `build_schedule`.

A scheme spec is a name with optional options, `bnff` or
`baseline:bn_stats_passes=1,fuse_bn_relu=true`; `X+sampling` applies the sampling modifier on top of
scheme X (`sampling` alone is `baseline+sampling`), and takes the options of both. Imports
bnsim.graph, bnsim.schedule, bnsim.schemes.*; yaml, pydantic.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bnsim.config.datafile import describe_errors
from bnsim.errors import ConfigError
from bnsim.graph import Network
from bnsim.heap import frozen_heap
from bnsim.schedule import NO_REORDERS, Reorders, Schedule
from bnsim.schedule.draft import Draft
from bnsim.schedule.training import lower_training
from bnsim.schemes import baseline, bnff, fission, recompute, sampling
from bnsim.schemes.reorders import add_reorders


@dataclass(frozen=True, slots=True)
class Scheme:
    """A registered restructuring: its options and the rewrite it applies to the baseline draft."""

    name: str
    options_model: type[BaseModel]
    rewrite: Callable[[Draft, Any], None]
    summary: str


SCHEMES: Mapping[str, Scheme] = MappingProxyType(
    {
        scheme.name: scheme
        for scheme in (
            Scheme(
                "baseline",
                baseline.BaselineOptions,
                baseline.rewrite,
                "every layer its own kernel, as a framework runs it",
            ),
            Scheme(
                "fission",
                fission.FissionOptions,
                fission.rewrite,
                "BN split into statistics and apply kernels, nothing fused (a control)",
            ),
            Scheme(
                "bnff",
                bnff.BNFFOptions,
                bnff.rewrite,
                "BN fission and fusion into the neighbouring convs (Jung et al. 2019)",
            ),
            Scheme(
                "recompute",
                recompute.RecomputeOptions,
                recompute.rewrite,
                "fused CONV+BN+ReLU recomputing BN/ReLU outputs (Wang et al. 2020)",
            ),
        )
    }
)
MODIFIERS: Mapping[str, Scheme] = MappingProxyType(
    {
        "sampling": Scheme(
            "sampling",
            sampling.SamplingOptions,
            sampling.rewrite,
            "BN statistics from sampled data (Chen et al. 2020)",
        ),
    }
)
DEFAULT_SCHEMES = ("baseline", "bnff")
# Schedules are immutable and depend only on (network, scheme): the most recent ones are kept, so
# that a sweep or a notebook simulating one network on many machines builds each schedule once
# (DenseNet-121's take about 2 MiB each)
RECENT_SCHEDULES = 16
_PARTS: Mapping[str, Scheme] = MappingProxyType({**SCHEMES, **MODIFIERS})


@dataclass(frozen=True, slots=True)
class SchemeSpec:
    """A parsed `--scheme` value: base scheme, modifiers, and validated options of each."""

    name: str  # canonical: "bnff+sampling"
    base: str
    modifiers: tuple[str, ...]
    options: tuple[tuple[str, BaseModel], ...]  # (scheme or modifier name, its options)

    def label(self) -> str:
        """The spec as the user could type it, non-default options included."""
        settings = [
            f"{key}={_option_text(value)}"
            for _, options in self.options
            for key, value in options.model_dump(exclude_defaults=True).items()
        ]
        return self.name + (":" + ",".join(settings) if settings else "")

    def flat_options(self) -> tuple[tuple[str, Any], ...]:
        """Every option of every part, defaults included, as sorted (key, value) pairs."""
        merged: dict[str, Any] = {}
        for _, options in self.options:
            merged.update(options.model_dump())
        return tuple(sorted(merged.items()))


def scheme_names() -> list[str]:
    """Every spelling `--scheme` accepts without options."""
    names = list(SCHEMES)
    names += [f"{name}+{modifier}" for name in SCHEMES for modifier in MODIFIERS]
    return [*names, *MODIFIERS]


def parse_scheme(text: str) -> SchemeSpec:
    """Parse `name[+modifier][:key=value,...]`.

    Raises:
        ConfigError: unknown scheme or modifier, malformed or unknown option, or a bad option value.

    >>> parse_scheme("baseline:bn_stats_passes=1").label()
    'baseline:bn_stats_passes=1'
    >>> parse_scheme("sampling:method=feature").name
    'baseline+sampling'
    """
    name, _, option_text = text.strip().partition(":")
    parts = [part.strip() for part in name.split("+")]
    if parts == ["sampling"]:
        parts = ["baseline", "sampling"]
    base, modifiers = parts[0], tuple(parts[1:])
    if base not in SCHEMES:
        raise ConfigError(f"--scheme {text!r}: {_unknown('scheme', base, scheme_names())}")
    for modifier in modifiers:
        if modifier not in MODIFIERS or modifiers.count(modifier) > 1:
            raise ConfigError(
                f"--scheme {text!r}: {_unknown('modifier', modifier, list(MODIFIERS))}"
            )
    raw = _parse_options(text, option_text)
    models = [(part, _PARTS[part].options_model) for part in (base, *modifiers)]
    allowed = {key for _, model in models for key in model.model_fields}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        allowed_text = ", ".join(sorted(allowed)) or "none"
        raise ConfigError(
            f"--scheme {text!r}: unknown option '{unknown[0]}' (allowed: {allowed_text})"
        )
    options = []
    for part, model in models:
        mine = {key: value for key, value in raw.items() if key in model.model_fields}
        try:
            options.append((part, model.model_validate(mine)))
        except ValidationError as err:
            raise ConfigError(
                f"--scheme {text!r}: {'; '.join(describe_errors(err, model))}"
            ) from None
    return SchemeSpec(
        name="+".join((base, *modifiers)), base=base, modifiers=modifiers, options=tuple(options)
    )


def _parse_options(text: str, option_text: str) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if not option_text.strip():
        return raw
    for item in option_text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"--scheme {text!r}: expected key=value options, got {item!r}")
        raw[key.strip()] = _scalar(value.strip())
    return raw


def _scalar(text: str) -> Any:
    if text in ("null", "none", "None"):
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _option_text(value: Any) -> str:
    return (
        "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    )


def _unknown(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown {kind} '{name}' ({hint}known: {', '.join(known)})"


def build_schedule(
    network: Network,
    scheme: str | SchemeSpec,
    *,
    input_grad: bool = False,
    reorders: Reorders = NO_REORDERS,
) -> Schedule:
    """The schedule of one training iteration of `network` under `scheme`, with the layout
    `reorders` the machine's library makes around its convolutions (`Reorders.of`).

    Schedules are immutable: the RECENT_SCHEDULES most recently built are remembered, and asking
    again for one of them (an equal network, the same scheme) returns the same object.

    Raises:
        ConfigError: a bad scheme spec.
        SimulationError: the scheme produced an illegal schedule (a bnsim bug).
    """
    spec = parse_scheme(scheme) if isinstance(scheme, str) else scheme
    return _schedule(network, spec, input_grad, reorders)


@functools.lru_cache(maxsize=RECENT_SCHEDULES)
def _schedule(network: Network, spec: SchemeSpec, input_grad: bool, reorders: Reorders) -> Schedule:
    with frozen_heap():
        draft = lower_training(network, input_grad=input_grad)
        for part, options in spec.options:
            _PARTS[part].rewrite(draft, options)
        add_reorders(draft, reorders)
        return draft.freeze(spec.label(), spec.flat_options(), reorders)
