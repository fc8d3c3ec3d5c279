"""VGG with batch normalization (Simonyan & Zisserman, ICLR 2015) as torchvision's vgg*_bn."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bnsim.graph.layer import Layer
from bnsim.graph.zoo.builder import NetBuilder

# torchvision's cfgs["D"]: channels of each 3×3 conv, "M" for a 2×2 max pool.
VGG16_CONFIG: tuple[int | Literal["M"], ...] = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
)


def _to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


class VGGParams(BaseModel):
    """Hyper-parameters of torchvision's VGG class with batch norm."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    config: Annotated[
        tuple[Annotated[int, Field(gt=0)] | Literal["M"], ...], BeforeValidator(_to_tuple)
    ] = Field(
        default=VGG16_CONFIG, min_length=1, description="conv channels in order, M for a max pool"
    )
    num_classes: int = Field(default=1000, gt=0, description="classifier outputs")


def vgg_bn(params: VGGParams, in_channels: int) -> list[Layer]:
    """Layers of a VGG with a BN after every conv."""
    net = NetBuilder(in_channels)
    x = "input"
    index = 0
    for item in params.config:
        if item == "M":
            x = net.maxpool(f"features.{index}", x, 2, 2)
            index += 1
        else:
            x = net.conv(f"features.{index}", x, item, 3, 1, 1, bias=True)
            x = net.bn(f"features.{index + 1}", x)
            x = net.relu(f"features.{index + 2}", x)
            index += 3
    x = net.adaptive_avgpool("avgpool", x, 7)
    x = net.flatten("flatten", x)
    x = net.linear("classifier.0", x, 4096)
    x = net.relu("classifier.1", x)
    x = net.dropout("classifier.2", x, 0.5)
    x = net.linear("classifier.3", x, 4096)
    x = net.relu("classifier.4", x)
    x = net.dropout("classifier.5", x, 0.5)
    x = net.linear("classifier.6", x, params.num_classes)
    net.loss("loss", x)
    return net.layers
