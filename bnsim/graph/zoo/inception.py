"""Inception-v3 (Szegedy et al., CVPR 2016) as torchvision builds it, module names included.

Every torchvision BasicConv2d becomes `{name}.conv` (no bias), `{name}.bn` (eps 0.001) and
`{name}.relu`. Functional pools and concatenations get names of their own (`Mixed_5b.avg_pool`,
`Mixed_5b.cat`). With `aux_logits`, the auxiliary classifier on Mixed_6e's output is trained with a
loss of its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bnsim.graph.layer import Layer
from bnsim.graph.zoo.builder import NetBuilder

_BN_EPS = 0.001


class InceptionV3Params(BaseModel):
    """Hyper-parameters of torchvision's Inception3 class."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    aux_logits: bool = Field(default=False, description="train the auxiliary classifier too")
    num_classes: int = Field(default=1000, gt=0, description="classifier outputs")


class _Inception:
    """The module types of torchvision's inception.py, appending to one NetBuilder."""

    def __init__(self, net: NetBuilder) -> None:
        self.net = net

    def basic(
        self,
        name: str,
        x: str,
        out: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> str:
        return self.net.conv_bn_relu(name, x, out, kernel, stride, padding, eps=_BN_EPS)

    def pool_branch(self, name: str, x: str, out: int) -> str:
        y = self.net.avgpool(f"{name}.avg_pool", x, 3, 1, 1)
        return self.basic(f"{name}.branch_pool", y, out, 1)

    def a(self, name: str, x: str, pool_features: int) -> str:
        b1 = self.basic(f"{name}.branch1x1", x, 64, 1)
        b5 = self.basic(f"{name}.branch5x5_1", x, 48, 1)
        b5 = self.basic(f"{name}.branch5x5_2", b5, 64, 5, padding=2)
        b3 = self.basic(f"{name}.branch3x3dbl_1", x, 64, 1)
        b3 = self.basic(f"{name}.branch3x3dbl_2", b3, 96, 3, padding=1)
        b3 = self.basic(f"{name}.branch3x3dbl_3", b3, 96, 3, padding=1)
        bp = self.pool_branch(name, x, pool_features)
        return self.net.concat(f"{name}.cat", [b1, b5, b3, bp])

    def b(self, name: str, x: str) -> str:
        b3 = self.basic(f"{name}.branch3x3", x, 384, 3, stride=2)
        bd = self.basic(f"{name}.branch3x3dbl_1", x, 64, 1)
        bd = self.basic(f"{name}.branch3x3dbl_2", bd, 96, 3, padding=1)
        bd = self.basic(f"{name}.branch3x3dbl_3", bd, 96, 3, stride=2)
        bp = self.net.maxpool(f"{name}.max_pool", x, 3, 2)
        return self.net.concat(f"{name}.cat", [b3, bd, bp])

    def c(self, name: str, x: str, c7: int) -> str:
        b1 = self.basic(f"{name}.branch1x1", x, 192, 1)
        b7 = self.basic(f"{name}.branch7x7_1", x, c7, 1)
        b7 = self.basic(f"{name}.branch7x7_2", b7, c7, (1, 7), padding=(0, 3))
        b7 = self.basic(f"{name}.branch7x7_3", b7, 192, (7, 1), padding=(3, 0))
        bd = self.basic(f"{name}.branch7x7dbl_1", x, c7, 1)
        bd = self.basic(f"{name}.branch7x7dbl_2", bd, c7, (7, 1), padding=(3, 0))
        bd = self.basic(f"{name}.branch7x7dbl_3", bd, c7, (1, 7), padding=(0, 3))
        bd = self.basic(f"{name}.branch7x7dbl_4", bd, c7, (7, 1), padding=(3, 0))
        bd = self.basic(f"{name}.branch7x7dbl_5", bd, 192, (1, 7), padding=(0, 3))
        bp = self.pool_branch(name, x, 192)
        return self.net.concat(f"{name}.cat", [b1, b7, bd, bp])

    def d(self, name: str, x: str) -> str:
        b3 = self.basic(f"{name}.branch3x3_1", x, 192, 1)
        b3 = self.basic(f"{name}.branch3x3_2", b3, 320, 3, stride=2)
        b7 = self.basic(f"{name}.branch7x7x3_1", x, 192, 1)
        b7 = self.basic(f"{name}.branch7x7x3_2", b7, 192, (1, 7), padding=(0, 3))
        b7 = self.basic(f"{name}.branch7x7x3_3", b7, 192, (7, 1), padding=(3, 0))
        b7 = self.basic(f"{name}.branch7x7x3_4", b7, 192, 3, stride=2)
        bp = self.net.maxpool(f"{name}.max_pool", x, 3, 2)
        return self.net.concat(f"{name}.cat", [b3, b7, bp])

    def e(self, name: str, x: str) -> str:
        b1 = self.basic(f"{name}.branch1x1", x, 320, 1)
        b3 = self.basic(f"{name}.branch3x3_1", x, 384, 1)
        b3a = self.basic(f"{name}.branch3x3_2a", b3, 384, (1, 3), padding=(0, 1))
        b3b = self.basic(f"{name}.branch3x3_2b", b3, 384, (3, 1), padding=(1, 0))
        b3 = self.net.concat(f"{name}.branch3x3_cat", [b3a, b3b])
        bd = self.basic(f"{name}.branch3x3dbl_1", x, 448, 1)
        bd = self.basic(f"{name}.branch3x3dbl_2", bd, 384, 3, padding=1)
        bda = self.basic(f"{name}.branch3x3dbl_3a", bd, 384, (1, 3), padding=(0, 1))
        bdb = self.basic(f"{name}.branch3x3dbl_3b", bd, 384, (3, 1), padding=(1, 0))
        bd = self.net.concat(f"{name}.branch3x3dbl_cat", [bda, bdb])
        bp = self.pool_branch(name, x, 192)
        return self.net.concat(f"{name}.cat", [b1, b3, bd, bp])

    def aux(self, name: str, x: str, num_classes: int) -> None:
        y = self.net.avgpool(f"{name}.avg_pool", x, 5, 3)
        y = self.basic(f"{name}.conv0", y, 128, 1)
        y = self.basic(f"{name}.conv1", y, 768, 5)
        y = self.net.global_avgpool(f"{name}.avgpool", y)
        y = self.net.flatten(f"{name}.flatten", y)
        y = self.net.linear(f"{name}.fc", y, num_classes)
        self.net.loss(f"{name}.loss", y)


def inception_v3(params: InceptionV3Params, in_channels: int) -> list[Layer]:
    """Layers of Inception-v3 (299×299 input)."""
    net = NetBuilder(in_channels)
    m = _Inception(net)
    x = m.basic("Conv2d_1a_3x3", "input", 32, 3, stride=2)
    x = m.basic("Conv2d_2a_3x3", x, 32, 3)
    x = m.basic("Conv2d_2b_3x3", x, 64, 3, padding=1)
    x = net.maxpool("maxpool1", x, 3, 2)
    x = m.basic("Conv2d_3b_1x1", x, 80, 1)
    x = m.basic("Conv2d_4a_3x3", x, 192, 3)
    x = net.maxpool("maxpool2", x, 3, 2)
    x = m.a("Mixed_5b", x, 32)
    x = m.a("Mixed_5c", x, 64)
    x = m.a("Mixed_5d", x, 64)
    x = m.b("Mixed_6a", x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = m.c(name, x, c7)
    if params.aux_logits:
        m.aux("AuxLogits", x, params.num_classes)
    x = m.d("Mixed_7a", x)
    x = m.e("Mixed_7b", x)
    x = m.e("Mixed_7c", x)
    x = net.global_avgpool("avgpool", x)
    x = net.dropout("dropout", x, 0.5)
    x = net.flatten("flatten", x)
    x = net.linear("fc", x, params.num_classes)
    net.loss("loss", x)
    return net.layers
