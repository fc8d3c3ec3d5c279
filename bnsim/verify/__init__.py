"""Prove a scheme's schedule computes what the layer-by-layer reference does, on a small network.

`verify` shrinks the network (small batch and image, channels divided; every layer, branch,
concatenation and residual kept), runs the reference step and the scheme's schedule tile by tile
(tiles shuffled) from the same seeded data, and compares the loss, the network outputs, every
parameter gradient, the input gradient, the BN batch and running statistics and the updated
parameters and momenta. Sampled schemes are compared with a direct implementation of sampled BN, and
the report says how far their statistics are from the exact ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bnsim.config.machine import Machine
from bnsim.graph import LayerKind, Network
from bnsim.graph.layer import BatchNorm2d
from bnsim.schedule import Box, Kernel, Schedule, TensorRole
from bnsim.schedule.selection import Sampling
from bnsim.schemes import SchemeSpec, build_schedule, parse_scheme
from bnsim.schemes.sampling import SamplingOptions
from bnsim.trace.dataflow import split_work
from bnsim.verify import reference as ref
from bnsim.verify.downscale import IMAGE_SIZES, MIN_SAMPLED_ELEMENTS, downscale, scaled_spec
from bnsim.verify.execute import BoxRule, execute_schedule, halving_boxes
from bnsim.verify.network import reference_step

__all__ = [
    "IMAGE_SIZES",
    "MIN_SAMPLED_ELEMENTS",
    "TOLERANCE",
    "TensorComparison",
    "VerificationReport",
    "check_schedule_against_reference",
    "compared_tensors",
    "downscale",
    "initial_values",
    "scaled_spec",
    "schedule_structure",
    "verify",
]
Array = NDArray[Any]
# float64 only: its rounding (about 1e-13 here) is far below any schedule error, while in float32
# the rounding of deep networks at batch 8 reaches 1e-1 and hides real errors
TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class TensorComparison:
    """How one tensor of the schedule compares with the reference."""

    name: str
    max_abs_err: float
    max_rel_err: float  # max |a - b| / max |b|: relative to the tensor's scale


@dataclass(frozen=True, slots=True, kw_only=True)
class VerificationReport:
    """The outcome of verifying one scheme on one (down-scaled) workload."""

    workload: str
    scheme: str
    passed: bool
    tolerance: float
    tensors_compared: int
    max_abs_err: float
    max_rel_err: float
    worst: tuple[TensorComparison, ...]  # the five largest relative errors
    batch: int
    image: tuple[int, int]
    width_divisor: int
    num_kernels: int
    num_tiles: int
    seconds: float  # wall-clock time of the check
    sampled_mean_error: float | None = (
        None  # max |μ_sampled − μ| / σ over BN layers (sampling only)
    )
    sampled_var_error: float | None = None  # max |σ²_sampled / σ² − 1| over BN layers

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def initial_values(schedule: Schedule, seed: int) -> dict[str, Array]:
    """Seeded values of everything a training iteration starts from.

    Weights have variance 1/fan-in (activations keep their scale through deep nets); BN γ near 1, β
    near 0; momenta and running statistics are small random values so that the update is checked
    too.
    """
    rng = np.random.default_rng(seed)
    values: dict[str, Array] = {}
    for name, tensor in sorted(schedule.tensors.items()):
        shape = tensor.shape
        if tensor.transient or tensor.library_layout:  # a layout copy is made by a kernel
            continue
        if name == "labels":
            num_classes = next(
                t.shape[1] for n, t in schedule.tensors.items() if n.startswith("logp:")
            )
            values[name] = rng.integers(0, num_classes, shape)
        elif tensor.role is TensorRole.INPUT:
            values[name] = rng.standard_normal(shape)
        elif tensor.role is TensorRole.WEIGHT:
            if name.startswith("gamma:"):
                values[name] = 1 + 0.1 * rng.standard_normal(shape)
            elif name.startswith(("beta:", "b:")):
                values[name] = 0.1 * rng.standard_normal(shape)
            else:
                fan_in = math.prod(shape[1:])
                values[name] = rng.standard_normal(shape) / math.sqrt(fan_in)
        elif tensor.role is TensorRole.OPTIMIZER_STATE:
            values[name] = 0.01 * rng.standard_normal(shape)
        elif name.startswith("running_mean:"):
            values[name] = 0.1 * rng.standard_normal(shape)
        elif name.startswith("running_var:"):
            values[name] = 1 + 0.1 * rng.random(shape)
    return values


def compared_tensors(schedule: Schedule) -> list[str]:
    """Tensors verification compares: outputs, losses, gradients, statistics, new state."""
    network = schedule.network
    outputs = {
        f"act:{layer.inputs[0]}"
        for layer in network.layers_of_kind(LayerKind.SOFTMAX_CROSS_ENTROPY)
    }
    prefixes = (
        "loss:",
        "dw:",
        "db:",
        "dgamma:",
        "dbeta:",
        "mean:",
        "var:",
        "running_mean:",
        "running_var:",
        "w:",
        "b:",
        "gamma:",
        "beta:",
        "v:",
    )
    names = [
        name
        for name, tensor in schedule.tensors.items()
        if not tensor.transient
        and not tensor.library_layout
        and (name.startswith(prefixes) or name in outputs)
    ]
    if "grad:input" in schedule.tensors:
        names.append("grad:input")
    return sorted(names)


def verify(
    network: Network,
    scheme: str | SchemeSpec,
    *,
    seed: int = 0,
    width_divisor: int = 8,
    batch: int | None = None,
    machine: Machine | None = None,
) -> VerificationReport:
    """Run `scheme` on a down-scaled `network` tile by tile and compare it with the reference.

    The down-scaled schedule is the one `bnsim run` times, structurally: built with the same
    options, its fusion decisions taken at the full width (a width limit divides by
    `width_divisor`), and, given a `machine`, its tiles are the boxes that machine's library splits
    each kernel into (bnsim.trace.dataflow); without one, every axis is halved.

    The batch is 8, and for sampled statistics large enough that each BN samples at least eight
    samples (`8 / fraction`): a BN over a 1×1 feature map of one or two samples normalizes by the
    spread of two numbers, which makes the network so ill-conditioned that rounding differences, not
    schedule errors, decide the comparison (measured: ResNet-50 at batch 2 differs by 7e-7 between
    two correct summation orders; DenseNet-121 sampling 2 of 16 samples by 8e-5). For the same
    reason the image grows until every sampled BN reads MIN_SAMPLED_ELEMENTS per channel.

    Raises:
        ConfigError: a bad scheme spec.
        WorkloadError: the network cannot be down-scaled.
        SimulationError: the scheme produced an illegal schedule.
    """
    started = time.perf_counter()
    spec = parse_scheme(scheme) if isinstance(scheme, str) else scheme
    sampling = _sampling_rule(spec)
    if batch is None:
        batch = 8 if sampling is None else max(8, math.ceil(8 / sampling.fraction))
    small = downscale(network, batch=batch, width_divisor=width_divisor, sampling=sampling)
    schedule = build_schedule(small, scaled_spec(spec, width_divisor))
    boxes: BoxRule = halving_boxes
    if machine is not None:
        timed = machine

        def boxes(kernel: Kernel) -> tuple[Box, ...]:
            return split_work(schedule, kernel, timed).boxes()

    report = check_schedule_against_reference(schedule, sampling=sampling, seed=seed, boxes=boxes)
    return replace(
        report,
        workload=network.name,
        scheme=spec.label(),
        width_divisor=width_divisor,
        seconds=time.perf_counter() - started,
    )


def check_schedule_against_reference(
    schedule: Schedule,
    *,
    sampling: Sampling | None = None,
    seed: int = 0,
    boxes: BoxRule = halving_boxes,
) -> VerificationReport:
    """Run `schedule` tile by tile (tiles shuffled by `seed`) and compare it with the reference.

    The input gradient is compared if the schedule computes it (built with `input_grad=True`).
    """
    started = time.perf_counter()
    network = schedule.network
    initial = initial_values(schedule, seed)
    roles = {name: schedule.tensors[name].role for name in initial}
    params = {
        k: v.astype(np.float64) for k, v in initial.items() if roles[k] is not TensorRole.INPUT
    }
    inputs = {
        k: v if k == "labels" else v.astype(np.float64)
        for k, v in initial.items()
        if roles[k] is TensorRole.INPUT
    }
    expected = reference_step(network, params, inputs, sampling=sampling)
    got = execute_schedule(schedule, initial, boxes=boxes, shuffle_seed=seed)
    names = compared_tensors(schedule)
    comparisons = [
        _compare(name, got[name], expected[name], _family_scale(name, names, expected))
        for name in names
    ]
    tolerance = TOLERANCE
    worst = sorted(
        comparisons,
        key=lambda c: c.max_rel_err if math.isfinite(c.max_rel_err) else math.inf,
        reverse=True,
    )
    mean_error, var_error = _sampling_errors(network, expected, sampling)
    return VerificationReport(
        workload=network.name,
        scheme=schedule.scheme,
        passed=all(c.max_rel_err <= tolerance for c in comparisons),
        tolerance=tolerance,
        tensors_compared=len(comparisons),
        max_abs_err=max(c.max_abs_err for c in comparisons),
        max_rel_err=max(c.max_rel_err for c in comparisons),
        worst=tuple(worst[:5]),
        batch=network.batch,
        image=network.image,
        width_divisor=1,
        num_kernels=len(schedule.kernels),
        num_tiles=sum(len(boxes(kernel)) for kernel in schedule.kernels),
        seconds=time.perf_counter() - started,
        sampled_mean_error=mean_error,
        sampled_var_error=var_error,
    )


def schedule_structure(schedule: Schedule) -> tuple[Any, ...]:
    """The structure of a schedule, without sizes: per kernel its name, phase, axes and every
    op's kind, placement, layer, operands and attributes (the verified schedule has the timed
    one's)."""
    return tuple(
        (
            kernel.name,
            kernel.phase,
            tuple(axis.name for axis in kernel.space),
            tuple(
                (op.kind, op.placement, op.layer, op.reads, op.writes, op.reduces, op.attrs)
                for op in kernel.ops
            ),
        )
        for kernel in schedule.kernels
    )


def _family_scale(name: str, names: list[str], expected: Mapping[str, Array]) -> float:
    """Largest magnitude among the tensors of the same kind (the prefix before ':')."""
    family = name.split(":", 1)[0] + ":"
    return max(
        float(np.max(np.abs(expected[other]))) for other in names if other.startswith(family)
    )


def _compare(name: str, got: Array, expected: Array, family_scale: float) -> TensorComparison:
    """Max error relative to the tensor's largest value, floored at 1e-3 of its kind's largest.

    The floor matters for tensors that are zero in exact arithmetic (the dβ of a BN whose output
    only a 1×1 convolution followed by BN reads sums gradients that cancel): their values are
    rounding noise, and comparing noise with noise says nothing. A real error is as large as the
    values themselves.
    """
    got = np.asarray(got, dtype=np.float64).reshape(-1)
    expected = np.asarray(expected, dtype=np.float64).reshape(-1)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return TensorComparison(name=name, max_abs_err=math.inf, max_rel_err=math.inf)
    error = float(np.max(np.abs(got - expected))) if got.size else 0.0
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-3 * family_scale)
    return TensorComparison(
        name=name, max_abs_err=error, max_rel_err=error / scale if scale > 0 else error
    )


def _sampling_rule(spec: SchemeSpec) -> Sampling | None:
    for _, options in spec.options:
        if isinstance(options, SamplingOptions):
            return options.rule()
    return None


def _sampling_errors(
    network: Network, results: Mapping[str, Array], sampling: Sampling | None
) -> tuple[float | None, float | None]:
    """How far the statistics used are from the exact batch statistics, worst over BN layers."""
    if sampling is None:
        return None, None
    mean_errors, var_errors = [], []
    for layer in network.layers_of_kind(LayerKind.BATCHNORM2D):
        assert isinstance(layer, BatchNorm2d)
        x = results[f"act:{layer.inputs[0]}"]
        exact_mean, exact_var = ref.batchnorm_stats(x)
        mean, var = results[f"mean:{layer.name}"], results[f"var:{layer.name}"]
        scale = np.sqrt(exact_var + layer.eps)
        mean_errors.append(float(np.max(np.abs(mean - exact_mean) / scale)))
        var_errors.append(float(np.max(np.abs((var + layer.eps) / (exact_var + layer.eps) - 1))))
    return max(mean_errors), max(var_errors)
