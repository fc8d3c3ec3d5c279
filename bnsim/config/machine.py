"""The simulated machine: cores, private caches, shared LLC, DRAM, kernel-library rates.

A Machine is a frozen, validated value. YAML files (hwconfigs/*.yaml) spell every dimensioned
quantity with its unit ("22MiB", "2.6GHz", "21.33GB/s", "90ns", "14cycles"); in Python the fields
carry the unit in their name (`size_bytes`, `clock_hz`, `latency_s`). Key paths (`llc.size`,
`cores.count`, ...) are the YAML spellings and serve the file, `--set key=value` overrides and sweep
grids alike; docs/hardware.md lists them all. The DRAM section is bnsim.config.dram's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, Field, ValidationError, model_validator

from bnsim import units
from bnsim.config.datafile import describe_errors, read_yaml_with_base
from bnsim.config.dram import DRAMConfig
from bnsim.config.parts import (
    Bytes,
    ConfigModel,
    Count,
    Cycles,
    CyclesPerElement,
    Fraction,
    Hertz,
    is_power_of_two,
)
from bnsim.errors import ConfigError

SCHEMA_VERSION = 1
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


class PrefetchConfig(ConfigModel):
    """A stream prefetcher that runs ahead of a core's demand misses (as Skylake's L2 streamer)."""

    distance: int = Field(
        ge=0, strict=True, description="lines it runs ahead of the demand stream (0: switched off)"
    )
    queue: Count = Field(
        description="line requests the prefetching level keeps in flight, demand and prefetch "
        "together (Skylake: the L2 superqueue)"
    )


class CoreConfig(ConfigModel):
    """Identical cores; peak FP throughput = count × clock × simd_lanes × fma_units × 2."""

    count: Count = Field(description="number of cores (SMs on a GPU)")
    clock_hz: Hertz = Field(
        alias="clock", description="core clock (the all-core vector clock if lower)"
    )
    simd_lanes: Count = Field(description="elements of `dtype` per vector FMA instruction")
    fma_units: Count = Field(description="vector FMA instructions issued per cycle per core")
    max_outstanding_misses: Count = Field(
        description="cache misses a core can have in flight (L1 fill buffers / MSHRs); bounds "
        "how much memory time overlaps"
    )

    prefetch: PrefetchConfig | None = Field(
        default=None, description="the core's stream prefetcher (omit: none)"
    )

    def flops_per_cycle(self) -> int:
        """Peak FLOPs per cycle per core (an FMA counts as two)."""
        return self.simd_lanes * self.fma_units * 2


class CacheConfig(ConfigModel):
    """A set-associative, LRU, write-back, write-allocate cache."""

    size_bytes: Bytes = Field(alias="size", description="capacity (per core for private caches)")
    ways: Count = Field(description="associativity")
    block_bytes: Bytes = Field(alias="block", description="line size")
    latency_cycles: Cycles = Field(alias="latency", description="load-to-use latency on a hit")

    @model_validator(mode="after")
    def _check_geometry(self) -> CacheConfig:
        if not is_power_of_two(self.block_bytes):
            raise ValueError(f"block {units.bytes_text(self.block_bytes)} is not a power of two")
        set_bytes = self.ways * self.block_bytes
        if self.size_bytes % set_bytes:
            raise ValueError(
                f"size {units.bytes_text(self.size_bytes)} is not a multiple of ways × block "
                f"({self.ways} × {units.bytes_text(self.block_bytes)} = "
                f"{units.bytes_text(set_bytes)})"
            )
        return self

    def num_sets(self) -> int:
        """Number of sets: size / (ways × block)."""
        return self.size_bytes // (self.ways * self.block_bytes)


class SharedCacheConfig(CacheConfig):
    """The last-level cache, shared by all cores."""

    inclusive: bool = Field(
        default=False,
        strict=True,
        description="whether the LLC holds every line of the private caches (false: non-inclusive)",
    )


class ElementwiseCosts(ConfigModel):
    """Core cycles per element for the element-wise and reduction ops of the kernel library."""

    bn_stats: CyclesPerElement = Field(
        description="BN forward statistics (Σx, Σx²), per input element"
    )
    bn_apply: CyclesPerElement = Field(
        description="BN forward normalize + scale/shift, per element"
    )
    bn_grad_reduce: CyclesPerElement = Field(description="BN backward Σdy, Σdy·x̂, per element")
    bn_grad_apply: CyclesPerElement = Field(description="BN backward dx, per element")
    relu_fwd: CyclesPerElement = Field(description="ReLU/ReLU6 forward, per element")
    relu_bwd: CyclesPerElement = Field(description="ReLU/ReLU6 backward (mask), per element")
    pool_fwd: CyclesPerElement = Field(description="pooling forward, per input element read")
    pool_bwd: CyclesPerElement = Field(description="pooling backward, per input-gradient element")
    concat: CyclesPerElement = Field(
        description="concat forward / split backward copy, per element"
    )
    add: CyclesPerElement = Field(
        description="residual add, gradient accumulation, per output element"
    )
    dropout: CyclesPerElement = Field(description="dropout forward or backward, per element")
    loss: CyclesPerElement = Field(
        description="softmax cross-entropy forward + backward, per logit"
    )
    sgd_update: CyclesPerElement = Field(description="SGD-with-momentum update, per parameter")
    reorder: CyclesPerElement | None = Field(
        default=None,
        description="layout reorder around a convolution (nchw to nChw16c and back, weights to "
        "the library's blocked layout), per element; required where the library reorders",
    )
    activation_fwd: CyclesPerElement | None = Field(
        default=None,
        description="SiLU, sigmoid, hard-swish or hard-sigmoid forward, per element; required by "
        "networks that have them",
    )
    activation_bwd: CyclesPerElement | None = Field(
        default=None,
        description="their backward, per element; required by networks that have them",
    )
    scale_fwd: CyclesPerElement | None = Field(
        default=None,
        description="a feature map times a per-channel scale (squeeze-and-excitation's multiply) "
        "or a per-sample one (stochastic depth), per element; required by networks that have them",
    )
    scale_bwd: CyclesPerElement | None = Field(
        default=None,
        description="their data gradient (dy times the scale), per element; required likewise",
    )
    scale_grad: CyclesPerElement | None = Field(
        default=None,
        description="its scale's gradient (dy·x summed per channel), per map element; required "
        "likewise",
    )


def _store_setting(value: object) -> object:
    """true and false, the spellings of earlier configs, mean always and never."""
    if isinstance(value, bool):
        return "always" if value else "never"
    return value


class ConvEfficiency(ConfigModel):
    """Each convolution pass's fraction of peak FMA throughput (libraries differ by pass)."""

    forward: Fraction = Field(description="forward convolutions")
    backward_data: Fraction = Field(description="data-gradient convolutions")
    backward_weight: Fraction = Field(description="weight-gradient convolutions")


class ComputeConfig(ConfigModel):
    """Compute throughput and kernel library of this machine (docs/hardware.md)."""

    source: str = Field(min_length=1, description="where the rates come from (free text, required)")
    conv_efficiency: Fraction | ConvEfficiency = Field(
        description="fraction of peak FMA throughput reached by convolution kernels: one for "
        "every pass, or {forward, backward_data, backward_weight}"
    )
    fc_efficiency: Fraction = Field(
        description="fraction of peak FMA throughput reached by fully connected (GEMM) kernels"
    )
    fused_conv_factor: Fraction = Field(
        description="multiplier on conv_efficiency for conv kernels carrying fused BN/ReLU work "
        "(registers given to BN operands; docs/schemes.md, bnff)"
    )
    cycles_per_element: ElementwiseCosts = Field(description="per-core costs of element-wise ops")
    layout: Literal["nChw16c", "nchw", "nhwc"] = Field(
        description="activation layout between kernels: nChw16c (16-channel blocks, channels "
        "padded to 16, as MKL-DNN/oneDNN), nchw (plain, as cuDNN and PyTorch by default) or nhwc "
        "(channels last, as PyTorch's channels_last memory format; docs/frameworks.md)"
    )
    library: Literal["onednn", "cudnn"] = Field(
        description="kernel library whose work split and loop order the kernels follow: onednn "
        "(MKL-DNN's AVX-512 drivers, as the BNFF kernels ran them) or cudnn (implicit-GEMM tiles "
        "and launch order, after NVIDIA's CUTLASS); docs/model.md, Kernel dataflow"
    )
    framework: Literal["caffe", "pytorch"] = Field(
        default="caffe",
        description="how the framework hands tensors to the library: caffe (in the layout the "
        "library computes in, as Caffe's MKL-DNN and cuDNN engines keep them: no copies) or "
        "pytorch (PyTorch eager: OIHW weights and `layout` activations, which oneDNN's "
        "convolutions reorder into blocked copies and back on every call; docs/frameworks.md)",
    )
    kernel_overhead_cycles: Cycles = Field(
        alias="kernel_overhead",
        description="fixed cost of every kernel: thread fork/join and barrier on a CPU, the gap "
        "between back-to-back kernels on a GPU",
    )

    @model_validator(mode="after")
    def _check_reorders(self) -> ComputeConfig:
        reorders = self.library == "onednn" and self.framework == "pytorch"
        if reorders and self.cycles_per_element.reorder is None:
            raise ValueError(
                "cycles_per_element.reorder: required: with framework pytorch, oneDNN reorders "
                "the operands of every convolution into its blocked layouts and back "
                "(docs/frameworks.md)"
            )
        return self

    def conv_efficiencies(self) -> ConvEfficiency:
        """Each convolution pass's efficiency (one value given: the same for all three)."""
        if isinstance(self.conv_efficiency, ConvEfficiency):
            return self.conv_efficiency
        value = self.conv_efficiency
        return ConvEfficiency(forward=value, backward_data=value, backward_weight=value)

    nontemporal_stores: Annotated[
        Literal["library", "always", "never"], BeforeValidator(_store_setting)
    ] = Field(
        default="library",
        description="which stores bypass the caches (no read-for-ownership fill, no reuse): those "
        "the library makes non-temporal (library: MKL-DNN's 1×1 convolution and batch-norm "
        "outputs; a GPU's L2 allocates stored lines without reading them), every store "
        "(always), or none (never)",
    )


class Machine(ConfigModel):
    """A chip multiprocessor: identical cores with private caches, one shared LLC, DRAM channels."""

    schema_version: Literal[1] = Field(description="format version of this file (1)")
    name: str = Field(min_length=1, description="short machine name used in results")
    description: str = Field(default="", description="what the machine is, and its sources")
    dtype: Literal["fp32", "fp16", "bf16"] = Field(description="element type of every tensor")
    cores: CoreConfig
    private: CacheConfig = Field(
        description="each core's private cache: the chip's last private level (the one "
        "simulated; reuse in the levels nearer the core is part of the kernels' efficiencies)"
    )
    llc: SharedCacheConfig = Field(description="shared last-level cache")
    dram: DRAMConfig
    compute: ComputeConfig

    @model_validator(mode="before")
    @classmethod
    def _refuse_per_level_private_caches(cls, raw: Any) -> Any:
        for key in ("l1", "l2") if isinstance(raw, dict) else ():
            if key in raw:
                raise ValueError(
                    f"{key}: bnsim simulates one private cache per core, the chip's last private "
                    "level: give it as 'private' (e.g. a Skylake-SP core's L2, a V100 SM's L1); "
                    "docs/hardware.md"
                )
        return raw

    @model_validator(mode="after")
    def _check_one_line_size(self) -> Machine:
        # the memory system moves whole lines between levels: one line size for all of them
        sizes = {"private": self.private.block_bytes, "llc": self.llc.block_bytes}
        if len(set(sizes.values())) > 1:
            spelled = ", ".join(f"{name}.block {units.bytes_text(b)}" for name, b in sizes.items())
            raise ValueError(f"every cache level must have the same block size, got {spelled}")
        return self

    def dtype_bytes(self) -> int:
        """Bytes per tensor element."""
        return DTYPE_BYTES[self.dtype]

    def peak_flops_per_second(self) -> float:
        """Peak FP throughput of all cores."""
        return self.cores.count * self.cores.clock_hz * self.cores.flops_per_cycle()

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: key paths and unit spellings, loadable again by `machine_from_dict`."""
        return self.model_dump(mode="json", exclude_none=True)

    def with_overrides(self, overrides: Sequence[str]) -> Machine:
        """This machine with `key.path=value` overrides, validated like a file (the sweep path).

        Raises:
            ConfigError: an override is malformed or makes the machine invalid.
        """
        return machine_from_dict(self.to_dict(), source=self.name, overrides=overrides)


def machine_from_dict(
    raw: Mapping[str, Any], *, source: str = "<dict>", overrides: Sequence[str] = ()
) -> Machine:
    """Validate a raw (YAML-shaped) mapping, after applying `key.path=value` overrides.

    Raises:
        ConfigError: listing every problem, each with its key path.

    >>> import yaml
    >>> raw = yaml.safe_load(open("hwconfigs/tiny.yaml"))
    >>> machine_from_dict(raw, overrides=["llc.size=1MiB"]).llc.size_bytes
    1048576
    """
    merged, overridden = apply_overrides(raw, overrides)
    try:
        return Machine.model_validate(merged, context={"units_required": True})
    except ValidationError as err:
        names: dict[tuple[int | str, ...], str] = {
            path: f"--set {'.'.join(path)}" for path in overridden
        }
        lines = describe_errors(err, Machine, names)
        count = f"{len(lines)} errors: " if len(lines) > 1 else ""
        raise ConfigError(f"{source}: {count}{'; '.join(lines)}") from None


def load_machine(path: str | Path, overrides: Sequence[str] = ()) -> Machine:
    """Load a hardware config file, applying `--set`-style overrides before validation.

    Raises:
        ConfigError: naming the file and every bad key path.

    >>> load_machine("hwconfigs/cmp16.yaml", ["cores.count=8"]).cores.count
    8
    """
    raw = read_yaml_with_base(Path(path), ConfigError)
    return machine_from_dict(raw, source=str(path), overrides=overrides)


def parse_override(text: str) -> tuple[tuple[str, ...], object]:
    """Split 'llc.size=32MiB' into (('llc', 'size'), '32MiB'); the value is read as a YAML scalar.

    Raises:
        ConfigError: no '=', an empty key or an empty value.

    >>> parse_override("cores.count=8"), parse_override("llc.inclusive=true")
    ((('cores', 'count'), 8), (('llc', 'inclusive'), True))
    """
    key, sep, value_text = text.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not key.strip() or any(not part for part in path):
        raise ConfigError(f"--set {text!r}: expected key.path=value, e.g. llc.size=32MiB")
    if not value_text.strip():
        raise ConfigError(f"--set {text!r}: empty value for {key.strip()}")
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError:
        value = value_text.strip()
    return path, value


def apply_overrides(
    raw: Mapping[str, Any], overrides: Iterable[str]
) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
    """A deep copy of `raw` with each override set; also returns the overridden paths.

    Raises:
        ConfigError: an override descends into a value that is not a mapping.
    """
    merged = copy.deepcopy(dict(raw))
    paths = []
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(path[: depth + 1])
                raise ConfigError(f"--set {text}: {prefix} is a value, not a section")
            node = child
        node[path[-1]] = value
        paths.append(path)
    return merged, paths
