"""What layers are made of: their kinds and breakdown categories, tensor shapes, attribute types.

bnsim.graph.layer re-exports every name here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bnsim.errors import WorkloadError


class LayerKind(StrEnum):
    """Layer kinds; values are the spellings used in workload YAML."""

    INPUT = "input"
    CONV2D = "conv2d"
    BATCHNORM2D = "batchnorm2d"
    RELU = "relu"
    RELU6 = "relu6"
    SILU = "silu"
    SIGMOID = "sigmoid"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    MUL = "mul"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    CONCAT = "concat"
    ADD = "add"
    LINEAR = "linear"
    FLATTEN = "flatten"
    DROPOUT = "dropout"
    STOCHASTIC_DEPTH = "stochastic_depth"
    CHUNK = "chunk"
    CHANNEL_SHUFFLE = "channel_shuffle"
    SOFTMAX_CROSS_ENTROPY = "softmax_cross_entropy"

    @property
    def category(self) -> str:
        """Breakdown bucket: conv, bn, relu, pool, concat, add, fc, loss or other."""
        return _CATEGORIES.get(self, "other")


_CATEGORIES = {
    LayerKind.CONV2D: "conv",
    LayerKind.BATCHNORM2D: "bn",
    LayerKind.RELU: "relu",
    LayerKind.RELU6: "relu",
    LayerKind.SILU: "activation",
    LayerKind.SIGMOID: "activation",
    LayerKind.HARDSWISH: "activation",
    LayerKind.HARDSIGMOID: "activation",
    LayerKind.MUL: "mul",
    LayerKind.MAXPOOL: "pool",
    LayerKind.AVGPOOL: "pool",
    LayerKind.ADAPTIVE_AVGPOOL: "pool",
    LayerKind.GLOBAL_AVGPOOL: "pool",
    LayerKind.CONCAT: "concat",
    LayerKind.ADD: "add",
    LayerKind.LINEAR: "fc",
    LayerKind.SOFTMAX_CROSS_ENTROPY: "loss",
}


CATEGORIES = (
    "conv",
    "bn",
    "relu",
    "activation",
    "pool",
    "concat",
    "add",
    "mul",
    "fc",
    "loss",
    "other",
)


# the activations whose backward reads their input (x), not their output (ReLU, ReLU6, sigmoid)
INPUT_GRADIENT_ACTIVATIONS = frozenset(("silu", "hardswish", "hardsigmoid"))


@dataclass(frozen=True, slots=True)
class TensorShape:
    """An NCHW activation shape, batch included. Flat tensors (fc outputs) are N×C×1×1."""

    n: int
    c: int
    h: int
    w: int

    def num_elements(self) -> int:
        """Elements of the whole tensor."""
        return self.n * self.c * self.h * self.w

    def elements_per_sample(self) -> int:
        """Elements of one sample (C·H·W)."""
        return self.c * self.h * self.w

    def __str__(self) -> str:
        return f"{self.n}×{self.c}×{self.h}×{self.w}"


def _to_pair(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, list):
        return tuple(value)
    return value


PositiveInt = Annotated[int, Field(strict=True, gt=0)]


NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]


PositivePair = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_to_pair)]


NonNegativePair = Annotated[tuple[NonNegativeInt, NonNegativeInt], BeforeValidator(_to_pair)]


LayerName = Annotated[str, Field(min_length=1, pattern=r"^[^\s]+$")]


def _to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


PositiveInts = Annotated[tuple[PositiveInt, ...], BeforeValidator(_to_tuple), Field(min_length=1)]


def _window_out(
    size: int, kernel: int, stride: int, padding: int, dilation: int, ceil: bool
) -> int:
    """Output length of a sliding window, as torch computes it (nn.Conv2d / nn.MaxPool2d docs)."""
    span = dilation * (kernel - 1) + 1
    numerator = size + 2 * padding - span
    if numerator < 0:
        return 0
    out = (numerator + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


class _Layer(BaseModel):
    """Fields and behaviour shared by every layer kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    arity: ClassVar[tuple[int, int | None]] = (1, 1)  # (min, max) number of inputs; None: unbounded

    name: LayerName
    inputs: Annotated[tuple[LayerName, ...], BeforeValidator(_to_tuple)] = ()

    @property
    def layer_kind(self) -> LayerKind:
        """This layer's kind."""
        return LayerKind(getattr(self, "kind"))  # noqa: B009 (each subclass declares `kind`)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        """Output shape from input shapes. Element-wise kinds keep their input's shape.

        Raises:
            WorkloadError: the inputs do not fit this layer.
        """
        return in_shapes[0]

    def param_count(self, in_shapes: tuple[TensorShape, ...]) -> int:
        """Number of trainable parameters (torch's `parameters()`, buffers excluded)."""
        return 0

    def macs(self, in_shapes: tuple[TensorShape, ...], out_shape: TensorShape) -> int:
        """Multiply-accumulates of the forward pass for the whole batch (conv and linear only)."""
        return 0

    def _fail(self, message: str) -> WorkloadError:
        return WorkloadError(f"layer '{self.name}' ({self.layer_kind}): {message}")
