"""NetBuilder: appends layers in forward order so that model definitions read like torchvision's.

Each method adds one layer and returns its name, the handle the next layer takes as input.
"""

from __future__ import annotations

from collections.abc import Sequence

from bnsim.graph.layer import (
    AdaptiveAvgPool2d,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    Input,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    ReLU6,
    SoftmaxCrossEntropy,
)
from bnsim.graph.network import INPUT_NAME

Pair = int | tuple[int, int]


class NetBuilder:
    """Collects the layers of one network, starting with its input."""

    def __init__(self, in_channels: int) -> None:
        self.layers: list[Layer] = [Input(name=INPUT_NAME, channels=in_channels)]

    def _add(self, layer: Layer) -> str:
        self.layers.append(layer)
        return layer.name

    def conv(
        self,
        name: str,
        source: str,
        out_channels: int,
        kernel: Pair,
        stride: Pair = 1,
        padding: Pair = 0,
        *,
        groups: int = 1,
        bias: bool = False,
    ) -> str:
        """Conv2d (no bias unless asked: every conv followed by BN in these models has none)."""
        return self._add(
            Conv2d(
                name=name,
                inputs=(source,),
                out_channels=out_channels,
                kernel=kernel,
                stride=stride,
                padding=padding,
                groups=groups,
                bias=bias,
            )
        )

    def bn(self, name: str, source: str, *, eps: float = 1e-5) -> str:
        """BatchNorm2d."""
        return self._add(BatchNorm2d(name=name, inputs=(source,), eps=eps))

    def relu(self, name: str, source: str) -> str:
        """ReLU."""
        return self._add(ReLU(name=name, inputs=(source,)))

    def relu6(self, name: str, source: str) -> str:
        """ReLU6."""
        return self._add(ReLU6(name=name, inputs=(source,)))

    def maxpool(
        self, name: str, source: str, kernel: Pair, stride: Pair | None = None, padding: Pair = 0
    ) -> str:
        """MaxPool2d (stride defaults to kernel)."""
        return self._add(
            MaxPool2d(
                name=name,
                inputs=(source,),
                kernel=kernel,
                stride=stride if stride is not None else kernel,
                padding=padding,
            )
        )

    def avgpool(
        self, name: str, source: str, kernel: Pair, stride: Pair | None = None, padding: Pair = 0
    ) -> str:
        """AvgPool2d (stride defaults to kernel; padding counted in the average, as in torch)."""
        return self._add(
            AvgPool2d(
                name=name,
                inputs=(source,),
                kernel=kernel,
                stride=stride if stride is not None else kernel,
                padding=padding,
            )
        )

    def adaptive_avgpool(self, name: str, source: str, output_size: Pair) -> str:
        """AdaptiveAvgPool2d."""
        return self._add(AdaptiveAvgPool2d(name=name, inputs=(source,), output_size=output_size))

    def global_avgpool(self, name: str, source: str) -> str:
        """Average pooling to 1×1."""
        return self._add(GlobalAvgPool2d(name=name, inputs=(source,)))

    def concat(self, name: str, sources: Sequence[str]) -> str:
        """Channel concatenation; a single source is passed through without a copy."""
        if len(sources) == 1:
            return sources[0]
        return self._add(Concat(name=name, inputs=tuple(sources)))

    def add(self, name: str, sources: Sequence[str]) -> str:
        """Element-wise sum."""
        return self._add(Add(name=name, inputs=tuple(sources)))

    def linear(self, name: str, source: str, out_features: int, *, bias: bool = True) -> str:
        """Linear."""
        return self._add(Linear(name=name, inputs=(source,), out_features=out_features, bias=bias))

    def flatten(self, name: str, source: str) -> str:
        """Flatten to C·H·W×1×1."""
        return self._add(Flatten(name=name, inputs=(source,)))

    def dropout(self, name: str, source: str, p: float) -> str:
        """Dropout with drop probability p."""
        return self._add(Dropout(name=name, inputs=(source,), p=p))

    def loss(self, name: str, source: str) -> str:
        """Softmax cross-entropy loss."""
        return self._add(SoftmaxCrossEntropy(name=name, inputs=(source,)))

    def conv_bn_relu(
        self,
        prefix: str,
        source: str,
        out_channels: int,
        kernel: Pair,
        stride: Pair = 1,
        padding: Pair = 0,
        *,
        eps: float = 1e-5,
    ) -> str:
        """conv → bn → relu named `{prefix}.conv`, `.bn`, `.relu` (Inception's BasicConv2d)."""
        x = self.conv(f"{prefix}.conv", source, out_channels, kernel, stride, padding)
        x = self.bn(f"{prefix}.bn", x, eps=eps)
        return self.relu(f"{prefix}.relu", x)
