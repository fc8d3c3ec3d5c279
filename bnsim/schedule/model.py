"""The Schedule IR's values: tensors, ops, iteration spaces, kernels, the schedule, and tiles.

Frozen values (a Schedule is immutable and compares by identity); bnsim.schedule re-exports them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from bnsim.graph import Network


class Phase(StrEnum):
    """Phase of the training iteration a kernel belongs to."""

    FWD = "fwd"
    BWD_DATA = "bwd_data"
    BWD_WEIGHT = "bwd_weight"
    UPDATE = "update"


class TensorRole(StrEnum):
    """What a tensor is for; results break traffic down by role."""

    INPUT = "input"  # the image batch and the labels
    ACTIVATION = "activation"  # a forward output that no backward op reads
    STASHED_ACTIVATION = "stashed_activation"  # a forward output kept for the backward pass
    WEIGHT = "weight"
    WEIGHT_GRADIENT = "weight_gradient"
    ACTIVATION_GRADIENT = "activation_gradient"
    BN_STATISTICS = "bn_statistics"  # batch mean/var and running mean/var
    MASK = "mask"  # dropout masks, stochastic depth's per-sample keep values
    OPTIMIZER_STATE = "optimizer_state"  # SGD momentum
    WORKSPACE = "workspace"  # max-pool argmax indices, the loss's log-probabilities


class ElementType(StrEnum):
    """Element type of a tensor: the machine's data type, or a fixed-size integer."""

    DATA = "data"  # fp32/fp16/bf16 as the machine says
    UINT8 = "uint8"
    INT64 = "int64"


FIXED_ELEMENT_BYTES = {ElementType.UINT8: 1, ElementType.INT64: 8}


@dataclass(frozen=True, slots=True, kw_only=True)
class Tensor:
    """A named array of one training iteration."""

    name: str
    shape: tuple[int, ...]
    role: TensorRole
    layer: str  # the forward layer it belongs to
    element: ElementType = ElementType.DATA
    transient: bool = False  # True: lives in registers/tile buffers of one kernel, never in memory
    # the tensor whose memory this one takes over (an in-place op's input, which it overwrites)
    storage: str = ""
    # stored in the kernel library's own layout (a reorder's copy), whatever the framework keeps
    library_layout: bool = False

    def num_elements(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    def num_bytes(self, data_bytes: int) -> int:
        """Bytes in memory, given the machine's bytes per data element."""
        element_bytes = FIXED_ELEMENT_BYTES.get(self.element, data_bytes)
        return self.num_elements() * element_bytes


class OpKind(StrEnum):
    """Operations; each reads and writes tensors in a fixed operand order (docs/schemes.md)."""

    CONV_FWD = "conv_fwd"
    CONV_BWD_DATA = "conv_bwd_data"
    CONV_BWD_WEIGHT = "conv_bwd_weight"
    FC_FWD = "fc_fwd"
    FC_BWD_DATA = "fc_bwd_data"
    FC_BWD_WEIGHT = "fc_bwd_weight"
    BN_STATS = "bn_stats"
    BN_APPLY = "bn_apply"
    BN_GRAD_REDUCE = "bn_grad_reduce"
    BN_GRAD_APPLY = "bn_grad_apply"
    RELU_FWD = "relu_fwd"
    RELU_BWD = "relu_bwd"
    ACTIVATION_FWD = "activation_fwd"  # SiLU, sigmoid, hard-swish, hard-sigmoid
    ACTIVATION_BWD = "activation_bwd"
    SCALE_FWD = "scale_fwd"  # a map times a per-sample, per-channel scale (squeeze-excitation)
    SCALE_BWD = "scale_bwd"  # its data gradient: dy times the scale
    SCALE_GRAD = "scale_grad"  # its scale's gradient: dy·x summed over each channel's pixels
    POOL_FWD = "pool_fwd"
    POOL_BWD = "pool_bwd"
    CONCAT_FWD = "concat_fwd"
    CONCAT_BWD = "concat_bwd"
    ADD_FWD = "add_fwd"
    GRAD_ACCUMULATE = "grad_accumulate"
    DROPOUT_FWD = "dropout_fwd"
    DROPOUT_BWD = "dropout_bwd"
    STOCHASTIC_DEPTH_FWD = "stochastic_depth_fwd"  # a map times its sample's keep value
    STOCHASTIC_DEPTH_BWD = "stochastic_depth_bwd"  # dy times the same value
    CHUNK_FWD = "chunk_fwd"  # a copy of a channel range (torch.chunk, read by a convolution)
    CHUNK_BWD = "chunk_bwd"  # the chunks' gradients concatenated into their input's
    SHUFFLE_FWD = "shuffle_fwd"  # a copy that permutes channels (ShuffleNet)
    SHUFFLE_BWD = "shuffle_bwd"  # the inverse permutation of the gradient
    LOSS_FWD = "loss_fwd"
    LOSS_BWD = "loss_bwd"
    SGD_UPDATE = "sgd_update"
    REORDER = "reorder"  # a copy into another layout (bnsim.schemes.reorders)

    def is_matrix(self) -> bool:
        """Convolution and fully connected ops (FMA-bound); the rest are element-wise/reductions."""
        return self in _MATRIX_OPS


_MATRIX_OPS = {
    OpKind.CONV_FWD,
    OpKind.CONV_BWD_DATA,
    OpKind.CONV_BWD_WEIGHT,
    OpKind.FC_FWD,
    OpKind.FC_BWD_DATA,
    OpKind.FC_BWD_WEIGHT,
}


class Placement(StrEnum):
    """Where an op sits in its kernel relative to the main op."""

    PROLOGUE = "prologue"  # on the main op's input footprint, before it
    MAIN = "main"  # defines the iteration space
    EPILOGUE = "epilogue"  # on the main op's output tile, after it


_MAIN = Placement.MAIN  # looked up once: a member lookup on an Enum class is slow


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """One operation of a kernel.

    `reads` and `writes` are tensor names in the operand order of `kind`. `reduces` lists the
    written tensors that are sums over tiles, complete only at the kernel's end barrier. `attrs`
    holds op parameters that the layer does not (e.g. which statistic a BN pass computes, sampling,
    recomputation).
    """

    kind: OpKind
    layer: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    reduces: tuple[str, ...] = ()
    placement: Placement = Placement.MAIN
    flops: int = 0
    attrs: tuple[tuple[str, Any], ...] = ()

    def attr(self, key: str, default: Any = None) -> Any:
        """The value of attribute `key`, or `default`."""
        return dict(self.attrs).get(key, default)


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis of a kernel's iteration space."""

    name: str  # n, c, h (rows) or e (flat elements)
    extent: int


Box = tuple[tuple[int, int], ...]  # one (start, stop) per axis of the kernel's space


@dataclass(frozen=True, slots=True, kw_only=True)
class Kernel:
    """A fused group of ops over one iteration space, ended by a barrier."""

    name: str
    phase: Phase
    ops: tuple[Op, ...]
    space: tuple[Axis, ...]

    def main_op(self) -> Op:
        """The op whose iteration space the kernel has."""
        return next(op for op in self.ops if op.placement is _MAIN)

    def layers(self) -> tuple[str, ...]:
        """Forward layers whose work this kernel does, in op order, without repeats."""
        return tuple(dict.fromkeys(op.layer for op in self.ops))

    def flops(self) -> int:
        """Sum of the ops' FLOPs (each element counted once)."""
        return sum(op.flops for op in self.ops)

    def reductions(self) -> tuple[str, ...]:
        """Tensors summed across tiles (and threads), complete only at this kernel's barrier."""
        return tuple(dict.fromkeys(name for op in self.ops for name in op.reduces))

    def memory_reads(self) -> tuple[str, ...]:
        """Tensors this kernel reads that it did not produce itself (its input streams)."""
        return memory_reads(self.ops)

    def memory_writes(self) -> tuple[str, ...]:
        """Tensors this kernel writes (transient ones too; callers filter by Tensor.transient)."""
        return tuple(dict.fromkeys(name for op in self.ops for name in op.writes))


def memory_reads(ops: Sequence[Op]) -> tuple[str, ...]:
    """Tensors a kernel of `ops` reads that none of its earlier ops produced, in order."""
    produced: set[str] = set()
    reads: dict[str, None] = {}
    for op in ops:
        reads.update((name, None) for name in op.reads if name not in produced)
        produced.update(op.writes)
    return tuple(reads)


@dataclass(frozen=True, slots=True)
class Reorders:
    """Which convolution operands the library copies into its own layout on every call."""

    activations: bool = False  # 4-D activations and their gradients (the framework keeps nchw)
    weights: bool = False  # 4-D weights and weight gradients (the framework keeps OIHW)

    @classmethod
    def of(cls, library: str, framework: str, layout: str) -> Reorders:
        """The copies `library` makes for `framework` keeping activations in `layout` (a machine's
        compute.library, .framework and .layout).

        PyTorch asks oneDNN for the layouts its kernels prefer (blocked, for FP32 training on
        AVX-512) and keeps OIHW (or OHWI) weights and NCHW activations itself; channels-last
        (NHWC) activations it pins, and oneDNN's brgemm convolutions take them as they are.
        Caffe's MKL-DNN engine keeps every tensor in the library's layout. cuDNN's convolutions
        take activations and KCRS weights as frameworks keep them."""
        pytorch_on_onednn = library == "onednn" and framework == "pytorch"
        return cls(activations=pytorch_on_onednn and layout == "nchw", weights=pytorch_on_onednn)

    def __bool__(self) -> bool:
        return self.activations or self.weights


NO_REORDERS = Reorders()


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class Schedule:
    """The kernels of one training iteration of `network` under a scheme, in execution order.

    Immutable through and through (its tensors are a read-only copy), so that a legality check
    holds for good: `check_schedule` proves each schedule once.
    """

    network: Network
    scheme: str
    options: tuple[tuple[str, Any], ...]
    kernels: tuple[Kernel, ...]
    tensors: Mapping[str, Tensor] = field(repr=False)
    reorders: Reorders = NO_REORDERS  # the library's layout copies among the kernels

    def __post_init__(self) -> None:
        object.__setattr__(self, "tensors", MappingProxyType(dict(self.tensors)))

    def __reduce__(self) -> tuple[Any, ...]:
        # a mapping proxy does not pickle: send the tensors as a dict
        return (
            _unpickled_schedule,
            (
                self.network,
                self.scheme,
                self.options,
                self.kernels,
                dict(self.tensors),
                self.reorders,
            ),
        )

    def tensor(self, name: str) -> Tensor:
        """The tensor called `name`."""
        return self.tensors[name]

    def flops(self) -> int:
        """FLOPs of the whole iteration (each op's elements counted once)."""
        return sum(kernel.flops() for kernel in self.kernels)

    def producer(self, name: str) -> int | None:
        """Index of the first kernel writing `name` without reading it (None: an input)."""
        for index, kernel in enumerate(self.kernels):
            if any(name in op.writes and name not in op.reads for op in kernel.ops):
                return index
        return None

    def consumers(self, name: str) -> tuple[int, ...]:
        """Indices of the kernels that read tensor `name` from memory (not from their own ops)."""
        return tuple(i for i, kernel in enumerate(self.kernels) if name in kernel.memory_reads())

    def lifetime(self, name: str) -> tuple[int, int] | None:
        """First and last kernel index touching tensor `name` (None if no kernel does)."""
        touching = [
            i
            for i, kernel in enumerate(self.kernels)
            if any(name in op.reads or name in op.writes for op in kernel.ops)
        ]
        return (touching[0], touching[-1]) if touching else None


def decompose(space: Sequence[Axis], blocks: Mapping[str, int]) -> tuple[Box, ...]:
    """Split an iteration space into tiles: boxes of at most `blocks[axis]` along each named axis.

    Axes missing from `blocks` are not split. Tiles come in row-major order, the first axis
    outermost: this is the order a static OpenMP schedule hands them out and the order the executor
    runs them.

    Raises:
        ValueError: a block size below 1.

    >>> decompose((Axis("n", 2), Axis("c", 3)), {"n": 1, "c": 2})
    (((0, 1), (0, 2)), ((0, 1), (2, 3)), ((1, 2), (0, 2)), ((1, 2), (2, 3)))
    """
    ranges = []
    for axis in space:
        block = blocks.get(axis.name, axis.extent)
        if block < 1:
            raise ValueError(f"block size for axis {axis.name} must be ≥ 1, got {block}")
        starts = range(0, axis.extent, block)
        ranges.append([(start, min(start + block, axis.extent)) for start in starts])
    return tuple(itertools.product(*ranges))


def _unpickled_schedule(
    network: Network,
    scheme: str,
    options: tuple[tuple[str, Any], ...],
    kernels: tuple[Kernel, ...],
    tensors: dict[str, Tensor],
    reorders: Reorders,
) -> Schedule:
    return Schedule(
        network=network,
        scheme=scheme,
        options=options,
        kernels=kernels,
        tensors=tensors,
        reorders=reorders,
    )
