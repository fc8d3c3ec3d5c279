"""DenseNet-BC (Huang et al., CVPR 2017) as torchvision.models.densenet builds it, names included.

Each dense layer concatenates all earlier feature maps of its block (torchvision's
`torch.cat(inputs, 1)`), so a block of L layers has L-1 concat layers feeding dense layers plus one
for the block output. The first dense layer of a block reads the block input directly (torchvision
copies it with a one-tensor cat; no framework kernel needs that copy, so bnsim leaves it out).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph.layer import Layer, PositiveInts
from bnsim.graph.zoo.builder import NetBuilder


class DenseNetParams(BaseModel):
    """Hyper-parameters of torchvision's DenseNet class."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    growth_rate: int = Field(default=32, gt=0, description="channels each dense layer adds (k)")
    block_config: PositiveInts = Field(
        default=(6, 12, 24, 16), description="dense layers per block"
    )
    num_init_features: int = Field(default=64, gt=0, description="channels of the stem conv")
    bn_size: int = Field(
        default=4, gt=0, description="bottleneck width multiplier (1×1 conv: bn_size·k)"
    )
    num_classes: int = Field(default=1000, gt=0, description="classifier outputs")


def densenet(params: DenseNetParams, in_channels: int) -> list[Layer]:
    """Layers of a DenseNet-BC with compression 0.5."""
    net = NetBuilder(in_channels)
    x = net.conv("features.conv0", "input", params.num_init_features, 7, 2, 3)
    x = net.bn("features.norm0", x)
    x = net.relu("features.relu0", x)
    x = net.maxpool("features.pool0", x, 3, 2, 1)
    channels = params.num_init_features
    for block_index, num_layers in enumerate(params.block_config, start=1):
        block = f"features.denseblock{block_index}"
        features = [x]
        for layer_index in range(1, num_layers + 1):
            prefix = f"{block}.denselayer{layer_index}"
            y = net.concat(f"{prefix}.cat", features)
            y = net.bn(f"{prefix}.norm1", y)
            y = net.relu(f"{prefix}.relu1", y)
            y = net.conv(f"{prefix}.conv1", y, params.bn_size * params.growth_rate, 1)
            y = net.bn(f"{prefix}.norm2", y)
            y = net.relu(f"{prefix}.relu2", y)
            y = net.conv(f"{prefix}.conv2", y, params.growth_rate, 3, 1, 1)
            features.append(y)
        x = net.concat(f"{block}.cat", features)
        channels += num_layers * params.growth_rate
        if block_index != len(params.block_config):
            transition = f"features.transition{block_index}"
            x = net.bn(f"{transition}.norm", x)
            x = net.relu(f"{transition}.relu", x)
            channels //= 2
            x = net.conv(f"{transition}.conv", x, channels, 1)
            x = net.avgpool(f"{transition}.pool", x, 2, 2)
    x = net.bn("features.norm5", x)
    x = net.relu("features.relu5", x)
    x = net.global_avgpool("avgpool", x)
    x = net.flatten("flatten", x)
    x = net.linear("classifier", x, params.num_classes)
    net.loss("loss", x)
    return net.layers
