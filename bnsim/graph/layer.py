"""Layer kinds of a CNN's forward graph: attributes, output-shape inference, parameters, MACs.

Each kind is a frozen pydantic model named after its torch.nn counterpart, validated strictly
(unknown attributes and wrong types are errors). Layers know nothing of batch size: shapes are
inferred per Network.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal

from pydantic import Field, TypeAdapter

from bnsim.graph.kinds import (
    CATEGORIES,
    INPUT_GRADIENT_ACTIVATIONS,
    LayerKind,
    LayerName,
    NonNegativeInt,
    NonNegativePair,
    PositiveInt,
    PositiveInts,
    PositivePair,
    TensorShape,
    _Layer,
    _window_out,
)
from bnsim.graph.pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d

# the layer kinds, and what they are made of (bnsim.graph.kinds): `bnsim.layers`
__all__ = [
    "CATEGORIES",
    "INPUT_GRADIENT_ACTIVATIONS",
    "LAYER_ADAPTER",
    "LAYER_LIST_ADAPTER",
    "AdaptiveAvgPool2d",
    "Add",
    "AvgPool2d",
    "BatchNorm2d",
    "ChannelShuffle",
    "Chunk",
    "Concat",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "Hardsigmoid",
    "Hardswish",
    "Input",
    "Layer",
    "LayerKind",
    "LayerName",
    "Linear",
    "MaxPool2d",
    "Mul",
    "NonNegativeInt",
    "NonNegativePair",
    "PositiveInt",
    "PositiveInts",
    "PositivePair",
    "ReLU",
    "ReLU6",
    "SiLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "StochasticDepth",
    "TensorShape",
]


class Input(_Layer):
    """The network input (the image batch); its spatial size comes from the Network."""

    kind: Literal["input"] = "input"
    arity: ClassVar[tuple[int, int | None]] = (0, 0)
    channels: PositiveInt


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
