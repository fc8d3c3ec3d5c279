"""ResNet (He et al., CVPR 2016) as torchvision.models.resnet builds it, module names included.

`stride_in: conv2` is torchvision's "ResNet v1.5" (the bottleneck's stride on its 3×3 conv);
`stride_in: conv1` is the original Caffe ResNet-50 (stride on the first 1×1 conv). torchvision
applies one ReLU module several times per block; bnsim needs one layer per application and numbers
them (`relu1`, `relu2`, `relu3`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph.layer import Layer, PositiveInts
from bnsim.graph.zoo.builder import NetBuilder


class ResNetParams(BaseModel):
    """Hyper-parameters of torchvision's ResNet class."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    block: Literal["basic", "bottleneck"] = Field(
        default="bottleneck", description="residual block type"
    )
    layers: PositiveInts = Field(default=(3, 4, 6, 3), description="blocks per stage")
    stride_in: Literal["conv1", "conv2"] = Field(
        default="conv2",
        description="bottleneck conv carrying the stride (conv2: v1.5, conv1: Caffe)",
    )
    num_classes: int = Field(default=1000, gt=0, description="classifier outputs")


def resnet(params: ResNetParams, in_channels: int) -> list[Layer]:
    """Layers of a ResNet with basic or bottleneck blocks."""
    net = NetBuilder(in_channels)
    x = net.conv("conv1", "input", 64, 7, 2, 3)
    x = net.bn("bn1", x)
    x = net.relu("relu", x)
    x = net.maxpool("maxpool", x, 3, 2, 1)
    expansion = 4 if params.block == "bottleneck" else 1
    channels = 64
    for stage_index, num_blocks in enumerate(params.layers, start=1):
        planes = 64 * 2 ** (stage_index - 1)
        for block_index in range(num_blocks):
            stride = 2 if stage_index > 1 and block_index == 0 else 1
            prefix = f"layer{stage_index}.{block_index}"
            shortcut = x
            if stride != 1 or channels != planes * expansion:
                shortcut = net.conv(f"{prefix}.downsample.0", x, planes * expansion, 1, stride)
                shortcut = net.bn(f"{prefix}.downsample.1", shortcut)
            if params.block == "basic":
                y = _basic_branch(net, prefix, x, planes, stride)
            else:
                y = _bottleneck_branch(net, prefix, x, planes, stride, params.stride_in)
            x = net.add(f"{prefix}.add", [y, shortcut])
            x = net.relu(f"{prefix}.relu{3 if params.block == 'bottleneck' else 2}", x)
            channels = planes * expansion
    x = net.global_avgpool("avgpool", x)
    x = net.flatten("flatten", x)
    x = net.linear("fc", x, params.num_classes)
    net.loss("loss", x)
    return net.layers


def _basic_branch(net: NetBuilder, prefix: str, x: str, planes: int, stride: int) -> str:
    y = net.conv(f"{prefix}.conv1", x, planes, 3, stride, 1)
    y = net.bn(f"{prefix}.bn1", y)
    y = net.relu(f"{prefix}.relu1", y)
    y = net.conv(f"{prefix}.conv2", y, planes, 3, 1, 1)
    return net.bn(f"{prefix}.bn2", y)


def _bottleneck_branch(
    net: NetBuilder, prefix: str, x: str, planes: int, stride: int, stride_in: str
) -> str:
    y = net.conv(f"{prefix}.conv1", x, planes, 1, stride if stride_in == "conv1" else 1)
    y = net.bn(f"{prefix}.bn1", y)
    y = net.relu(f"{prefix}.relu1", y)
    y = net.conv(f"{prefix}.conv2", y, planes, 3, stride if stride_in == "conv2" else 1, 1)
    y = net.bn(f"{prefix}.bn2", y)
    y = net.relu(f"{prefix}.relu2", y)
    y = net.conv(f"{prefix}.conv3", y, planes * 4, 1)
    return net.bn(f"{prefix}.bn3", y)
