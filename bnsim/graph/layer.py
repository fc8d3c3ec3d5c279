"""Layer kinds of a CNN's forward graph: attributes, output-shape inference, parameters, MACs.

Each kind is a frozen pydantic model named after its torch.nn counterpart, validated strictly
(unknown attributes and wrong types are errors). Layers know nothing of batch size: shapes are
inferred per Network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, model_validator

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


class Input(_Layer):
    """The network input (the image batch); its spatial size comes from the Network."""

    kind: Literal["input"] = "input"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)
    channels: PositiveInt


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


class Conv2d(_Layer):
    """2-D convolution (torch.nn.Conv2d)."""

    kind: Literal["conv2d"] = "conv2d"
    out_channels: PositiveInt
    kernel: PositivePair
    stride: PositivePair = (1, 1)
    padding: NonNegativePair = (0, 0)
    dilation: PositivePair = (1, 1)
    groups: PositiveInt = 1
    bias: bool = Field(default=False, strict=True)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        if x.c % self.groups or self.out_channels % self.groups:
            raise self._fail(
                f"groups={self.groups} must divide both input channels ({x.c}) "
                f"and out_channels ({self.out_channels})"
            )
        h, w = (
            _window_out(size, k, s, p, d, ceil=False)
            for size, k, s, p, d in zip(
                (x.h, x.w), self.kernel, self.stride, self.padding, self.dilation, strict=True
            )
        )
        if h < 1 or w < 1:
            raise self._fail(
                f"kernel {self.kernel[0]}×{self.kernel[1]} (dilation {self.dilation[0]}×"
                f"{self.dilation[1]}) is larger than its padded input {x.h + 2 * self.padding[0]}×"
                f"{x.w + 2 * self.padding[1]}"
            )
        return TensorShape(x.n, self.out_channels, h, w)

    def param_count(self, in_shapes: tuple[TensorShape, ...]) -> int:
        weights = self.out_channels * (in_shapes[0].c // self.groups) * math.prod(self.kernel)
        return weights + (self.out_channels if self.bias else 0)

    def macs(self, in_shapes: tuple[TensorShape, ...], out_shape: TensorShape) -> int:
        per_output = (in_shapes[0].c // self.groups) * math.prod(self.kernel)
        return out_shape.num_elements() * per_output


class BatchNorm2d(_Layer):
    """Batch normalization over N, H, W per channel, with learnable scale and shift."""

    kind: Literal["batchnorm2d"] = "batchnorm2d"
    eps: float = Field(default=1e-5, gt=0, strict=True)
    momentum: float = Field(default=0.1, gt=0, le=1, strict=True)

    def param_count(self, in_shapes: tuple[TensorShape, ...]) -> int:
        return 2 * in_shapes[0].c


class ReLU(_Layer):
    """max(x, 0)."""

    kind: Literal["relu"] = "relu"


class ReLU6(_Layer):
    """min(max(x, 0), 6) (MobileNetV2)."""

    kind: Literal["relu6"] = "relu6"


class SiLU(_Layer):
    """x·sigmoid(x), also called Swish (EfficientNet)."""

    kind: Literal["silu"] = "silu"


class Sigmoid(_Layer):
    """1 / (1 + exp(−x)) (squeeze-and-excitation gates)."""

    kind: Literal["sigmoid"] = "sigmoid"


class Hardswish(_Layer):
    """x·min(max(x + 3, 0), 6) / 6 (MobileNetV3)."""

    kind: Literal["hardswish"] = "hardswish"


class Hardsigmoid(_Layer):
    """min(max(x + 3, 0), 6) / 6 (MobileNetV3's squeeze-and-excitation gates)."""

    kind: Literal["hardsigmoid"] = "hardsigmoid"


class Mul(_Layer):
    """A feature map scaled channel by channel: x (N×C×H×W) times s (N×C×1×1), as
    squeeze-and-excitation multiplies its input by its gate."""

    kind: Literal["mul"] = "mul"
    arity: ClassVar[tuple[int, int | None]] = (2, 2)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x, scale = in_shapes
        if (scale.n, scale.c, scale.h, scale.w) != (x.n, x.c, 1, 1):
            raise self._fail(
                f"expects a scale of {x.c}×1×1 per sample for its {x.c}×{x.h}×{x.w} input "
                f"'{self.inputs[0]}', got {scale.c}×{scale.h}×{scale.w} from '{self.inputs[1]}'"
            )
        return x


class _Pool(_Layer):
    kernel: PositivePair
    stride: PositivePair  # equal to kernel when not given, as in torch
    padding: NonNegativePair = (0, 0)
    ceil_mode: bool = Field(default=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _default_stride(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("stride") is None and "kernel" in data:
            return {**data, "stride": data["kernel"]}
        return data

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        if any(2 * p > k for p, k in zip(self.padding, self.kernel, strict=True)):
            raise self._fail(
                f"padding {self.padding[0]}×{self.padding[1]} exceeds half the kernel "
                f"{self.kernel[0]}×{self.kernel[1]}"
            )
        h, w = (
            _window_out(size, k, s, p, 1, ceil=self.ceil_mode)
            for size, k, s, p in zip(
                (x.h, x.w), self.kernel, self.stride, self.padding, strict=True
            )
        )
        if h < 1 or w < 1:
            raise self._fail(
                f"kernel {self.kernel[0]}×{self.kernel[1]} is larger than its padded input "
                f"{x.h + 2 * self.padding[0]}×{x.w + 2 * self.padding[1]}"
            )
        return TensorShape(x.n, x.c, h, w)


class MaxPool2d(_Pool):
    """Max pooling (torch.nn.MaxPool2d)."""

    kind: Literal["maxpool"] = "maxpool"


class AvgPool2d(_Pool):
    """Average pooling (torch.nn.AvgPool2d)."""

    kind: Literal["avgpool"] = "avgpool"
    count_include_pad: bool = Field(default=True, strict=True)


class AdaptiveAvgPool2d(_Layer):
    """Average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)."""

    kind: Literal["adaptive_avgpool"] = "adaptive_avgpool"
    output_size: PositivePair

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        return TensorShape(x.n, x.c, *self.output_size)


class GlobalAvgPool2d(_Layer):
    """Average over the whole feature map (adaptive pooling to 1×1)."""

    kind: Literal["global_avgpool"] = "global_avgpool"

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        return TensorShape(in_shapes[0].n, in_shapes[0].c, 1, 1)


class Concat(_Layer):
    """Concatenation along channels. Of one input it is a copy, as torch.cat of a one-tensor list
    (torchvision's DenseNet concatenates each block's input alone for its first layer)."""

    kind: Literal["concat"] = "concat"
    arity: ClassVar[tuple[int, int | None]] = (1, None)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        first = in_shapes[0]
        for name, shape in zip(self.inputs, in_shapes, strict=True):
            if (shape.n, shape.h, shape.w) != (first.n, first.h, first.w):
                raise self._fail(
                    f"inputs differ in spatial size: '{self.inputs[0]}' is {first}, "
                    f"'{name}' is {shape}"
                )
        return TensorShape(first.n, sum(shape.c for shape in in_shapes), first.h, first.w)


class Add(_Layer):
    """Element-wise sum of equally shaped tensors (residual connections)."""

    kind: Literal["add"] = "add"
    arity: ClassVar[tuple[int, int | None]] = (2, None)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        for name, shape in zip(self.inputs, in_shapes, strict=True):
            if shape != in_shapes[0]:
                raise self._fail(
                    f"inputs differ in shape: '{self.inputs[0]}' is {in_shapes[0]}, "
                    f"'{name}' is {shape}"
                )
        return in_shapes[0]


def _require_flat(layer: _Layer, x: TensorShape) -> None:
    if (x.h, x.w) != (1, 1):
        raise layer._fail(
            f"expects a flat input (C×1×1), got {x.c}×{x.h}×{x.w}; add a flatten layer"
        )


class Linear(_Layer):
    """Fully connected layer on a flat input."""

    kind: Literal["linear"] = "linear"
    out_features: PositiveInt
    bias: bool = Field(default=True, strict=True)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        _require_flat(self, in_shapes[0])
        return TensorShape(in_shapes[0].n, self.out_features, 1, 1)

    def param_count(self, in_shapes: tuple[TensorShape, ...]) -> int:
        return in_shapes[0].c * self.out_features + (self.out_features if self.bias else 0)

    def macs(self, in_shapes: tuple[TensorShape, ...], out_shape: TensorShape) -> int:
        return in_shapes[0].n * in_shapes[0].c * self.out_features


class Flatten(_Layer):
    """C×H×W → (C·H·W)×1×1; a view, no data moves."""

    kind: Literal["flatten"] = "flatten"

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        return TensorShape(x.n, x.elements_per_sample(), 1, 1)


class Dropout(_Layer):
    """Dropout: zeroes elements with probability p in training (it keeps a mask for backward)."""

    kind: Literal["dropout"] = "dropout"
    p: float = Field(default=0.5, ge=0, lt=1, strict=True)


class Chunk(_Layer):
    """One of `chunks` equal channel ranges of its input, as `torch.chunk(x, chunks, 1)[index]`
    (ShuffleNet-v2's channel split): ranges of ⌈C/chunks⌉ channels, the last one shorter. PyTorch
    copies it where a convolution reads it; its backward concatenates the chunks' gradients."""

    kind: Literal["chunk"] = "chunk"
    chunks: Annotated[int, Field(strict=True, ge=2)]
    index: NonNegativeInt

    def channel_range(self, channels: int) -> tuple[int, int]:
        """The input channels [start, stop) this chunk holds."""
        size = -(-channels // self.chunks)
        return self.index * size, min(channels, (self.index + 1) * size)

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        start, stop = self.channel_range(x.c)
        if start >= stop:
            raise self._fail(
                f"chunk {self.index} of {self.chunks} of {x.c} channels is empty "
                f"(torch.chunk makes {-(-x.c // -(-x.c // self.chunks))})"
            )
        return TensorShape(x.n, stop - start, x.h, x.w)


class ChannelShuffle(_Layer):
    """ShuffleNet's channel shuffle (Zhang et al., CVPR 2018): channels in `groups` groups of C/g,
    output channel j taken from input channel (j mod g)·C/g + j div g; a copy, as torchvision's
    view → transpose → contiguous makes it."""

    kind: Literal["channel_shuffle"] = "channel_shuffle"
    groups: Annotated[int, Field(strict=True, ge=2)]

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        x = in_shapes[0]
        if x.c % self.groups:
            raise self._fail(f"groups={self.groups} must divide the input's {x.c} channels")
        return x


class StochasticDepth(_Layer):
    """Stochastic depth by sample (torchvision.ops.StochasticDepth, mode "row"): in training, each
    sample's residual branch is kept with probability 1 − p and scaled by 1/(1 − p), else zeroed
    (Huang et al., ECCV 2016). It keeps one value per sample for backward."""

    kind: Literal["stochastic_depth"] = "stochastic_depth"
    p: float = Field(ge=0, lt=1, strict=True)


class SoftmaxCrossEntropy(_Layer):
    """Mean softmax cross-entropy of the logits against the labels: the training loss (a scalar)."""

    kind: Literal["softmax_cross_entropy"] = "softmax_cross_entropy"

    def infer_shape(self, in_shapes: tuple[TensorShape, ...]) -> TensorShape:
        _require_flat(self, in_shapes[0])
        return TensorShape(1, 1, 1, 1)


Layer = Annotated[
    Input
    | Conv2d
    | BatchNorm2d
    | ReLU
    | ReLU6
    | SiLU
    | Sigmoid
    | Hardswish
    | Hardsigmoid
    | Mul
    | MaxPool2d
    | AvgPool2d
    | AdaptiveAvgPool2d
    | GlobalAvgPool2d
    | Concat
    | Add
    | Linear
    | Flatten
    | Dropout
    | StochasticDepth
    | Chunk
    | ChannelShuffle
    | SoftmaxCrossEntropy,
    Field(discriminator="kind"),
]
LAYER_ADAPTER: TypeAdapter[Layer] = TypeAdapter(Layer)
LAYER_LIST_ADAPTER: TypeAdapter[list[Layer]] = TypeAdapter(list[Layer])


def layer_to_dict(layer: _Layer) -> dict[str, Any]:
    """The workload-YAML form of a layer: name, kind, inputs, then non-default attributes.

    >>> layer_to_dict(Conv2d(name="c1", inputs=("x",), out_channels=64, kernel=7, stride=2))
    {'name': 'c1', 'kind': 'conv2d', 'inputs': ['x'], 'out_channels': 64, 'kernel': 7, 'stride': 2}
    """
    attrs = layer.model_dump(exclude_defaults=True, exclude={"name", "kind", "inputs"})
    if isinstance(layer, _Pool) and layer.stride == layer.kernel:
        attrs.pop("stride", None)
    for key, value in attrs.items():
        if isinstance(value, tuple):
            attrs[key] = value[0] if len(set(value)) == 1 else list(value)
    document: dict[str, Any] = {"name": layer.name, "kind": layer.layer_kind.value}
    if layer.inputs:
        document["inputs"] = list(layer.inputs)
    return {**document, **attrs}
