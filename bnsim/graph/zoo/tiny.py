"""tiny_cnn: a small network with every structure the BN schemes treat differently.

It holds the canonical group CONV → BN → ReLU → CONV, a BN whose input is a pool (no producer conv),
a BN whose input is a concatenation (DenseNet's BN-x1), and a BN followed by a residual add then
ReLU (ResNet's last BN).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph.layer import Layer
from bnsim.graph.zoo.builder import NetBuilder


class TinyCNNParams(BaseModel):
    """Widths of tiny_cnn."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    width: int = Field(default=8, gt=0, description="channels of the stem and the residual branch")
    growth: int = Field(default=4, gt=0, description="channels the dense unit adds")
    num_classes: int = Field(default=10, gt=0, description="classifier outputs")


def tiny_cnn(params: TinyCNNParams, in_channels: int) -> list[Layer]:
    """Layers of tiny_cnn."""
    net = NetBuilder(in_channels)
    width = params.width
    x = net.conv("stem.conv", "input", width, 3, 1, 1)
    x = net.bn("stem.bn", x)
    x = net.relu("stem.relu", x)
    pooled = net.maxpool("stem.pool", x, 2, 2)
    y = net.bn("dense.norm1", pooled)
    y = net.relu("dense.relu1", y)
    y = net.conv("dense.conv1", y, width, 1)
    y = net.bn("dense.norm2", y)
    y = net.relu("dense.relu2", y)
    y = net.conv("dense.conv2", y, params.growth, 3, 1, 1)
    x = net.concat("dense.cat", [pooled, y])
    channels = width + params.growth
    y = net.bn("res.norm0", x)
    y = net.relu("res.relu0", y)
    y = net.conv("res.conv1", y, width, 1)
    y = net.bn("res.bn1", y)
    y = net.relu("res.relu1", y)
    y = net.conv("res.conv2", y, channels, 3, 1, 1)
    y = net.bn("res.bn2", y)
    x = net.add("res.add", [y, x])
    x = net.relu("res.relu2", x)
    x = net.global_avgpool("avgpool", x)
    x = net.flatten("flatten", x)
    x = net.linear("fc", x, params.num_classes)
    net.loss("loss", x)
    return net.layers
