"""MobileNetV2 (Sandler et al., CVPR 2018) as torchvision builds it, module names included."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph.layer import Layer
from bnsim.graph.zoo.builder import NetBuilder

# torchvision's inverted_residual_setting: expansion t, channels c, repeats n, first stride s.
_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2Params(BaseModel):
    """Hyper-parameters of torchvision's MobileNetV2 class."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    width_mult: float = Field(default=1.0, gt=0, description="channel multiplier")
    num_classes: int = Field(default=1000, gt=0, description="classifier outputs")


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of divisor, never below 90% of value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(
    net: NetBuilder, prefix: str, x: str, out: int, kernel: int, stride: int = 1, groups: int = 1
) -> str:
    """torchvision's Conv2dNormActivation: `{prefix}.0` conv, `.1` BN, `.2` ReLU6."""
    x = net.conv(f"{prefix}.0", x, out, kernel, stride, (kernel - 1) // 2, groups=groups)
    x = net.bn(f"{prefix}.1", x)
    return net.relu6(f"{prefix}.2", x)


def mobilenet_v2(params: MobileNetV2Params, in_channels: int) -> list[Layer]:
    """Layers of MobileNetV2."""
    net = NetBuilder(in_channels)
    channels = make_divisible(32 * params.width_mult)
    x = _conv_bn_relu6(net, "features.0", "input", channels, 3, 2)
    index = 1
    for expansion, c, repeats, first_stride in _SETTING:
        out = make_divisible(c * params.width_mult)
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix = f"features.{index}.conv"
            hidden = round(channels * expansion)
            y, part = x, 0
            if expansion != 1:
                y = _conv_bn_relu6(net, f"{prefix}.0", y, hidden, 1)
                part = 1
            y = _conv_bn_relu6(net, f"{prefix}.{part}", y, hidden, 3, stride, groups=hidden)
            y = net.conv(f"{prefix}.{part + 1}", y, out, 1)
            y = net.bn(f"{prefix}.{part + 2}", y)
            x = net.add(f"features.{index}.add", [x, y]) if stride == 1 and channels == out else y
            channels = out
            index += 1
    last = make_divisible(1280 * max(1.0, params.width_mult))
    x = _conv_bn_relu6(net, f"features.{index}", x, last, 1)
    x = net.global_avgpool("avgpool", x)
    x = net.flatten("flatten", x)
    x = net.dropout("classifier.0", x, 0.2)
    x = net.linear("classifier.1", x, params.num_classes)
    net.loss("loss", x)
    return net.layers
