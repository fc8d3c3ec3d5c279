"""The model zoo: builder families (densenet, resnet, ...) and the named models built from them.

A *builder* turns validated hyper-parameters into layers; a *model* is a builder with torchvision's
hyper-parameters and default input size. Parameter counts equal torchvision's exactly (tests pin
them).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from bnsim.errors import WorkloadError
from bnsim.graph.layer import Layer
from bnsim.graph.network import Network, build_network
from bnsim.graph.zoo.densenet import DenseNetParams, densenet
from bnsim.graph.zoo.inception import InceptionV3Params, inception_v3
from bnsim.graph.zoo.mobilenet import MobileNetV2Params, mobilenet_v2
from bnsim.graph.zoo.resnet import ResNetParams, resnet
from bnsim.graph.zoo.tiny import TinyCNNParams, tiny_cnn
from bnsim.graph.zoo.vgg import VGGParams, vgg_bn

DEFAULT_BATCH = 32


@dataclass(frozen=True, slots=True)
class Builder:
    """A family of networks: a function from hyper-parameters and input channels to layers."""

    name: str
    params_model: type[BaseModel]
    build: Callable[[Any, int], list[Layer]]


BUILDERS: Mapping[str, Builder] = MappingProxyType(
    {
        builder.name: builder
        for builder in (
            Builder("densenet", DenseNetParams, densenet),
            Builder("resnet", ResNetParams, resnet),
            Builder("inception_v3", InceptionV3Params, inception_v3),
            Builder("vgg_bn", VGGParams, vgg_bn),
            Builder("mobilenet_v2", MobileNetV2Params, mobilenet_v2),
            Builder("tiny_cnn", TinyCNNParams, tiny_cnn),
        )
    }
)


@dataclass(frozen=True, slots=True)
class Model:
    """A named network of the zoo."""

    name: str
    builder: str
    params: Mapping[str, Any] = field(default_factory=dict)
    image: int = 224
    description: str = ""


MODELS: Mapping[str, Model] = MappingProxyType(
    {
        model.name: model
        for model in (
            Model(
                "densenet121",
                "densenet",
                {"growth_rate": 32, "block_config": (6, 12, 24, 16), "num_init_features": 64},
                description="DenseNet-121",
            ),
            Model(
                "densenet169",
                "densenet",
                {"growth_rate": 32, "block_config": (6, 12, 32, 32), "num_init_features": 64},
                description="DenseNet-169",
            ),
            Model(
                "densenet201",
                "densenet",
                {"growth_rate": 32, "block_config": (6, 12, 48, 32), "num_init_features": 64},
                description="DenseNet-201",
            ),
            Model(
                "densenet161",
                "densenet",
                {"growth_rate": 48, "block_config": (6, 12, 36, 24), "num_init_features": 96},
                description="DenseNet-161",
            ),
            Model(
                "resnet18",
                "resnet",
                {"block": "basic", "layers": (2, 2, 2, 2)},
                description="ResNet-18",
            ),
            Model(
                "resnet34",
                "resnet",
                {"block": "basic", "layers": (3, 4, 6, 3)},
                description="ResNet-34",
            ),
            Model(
                "resnet50",
                "resnet",
                {"block": "bottleneck", "layers": (3, 4, 6, 3)},
                description="ResNet-50 v1.5 (stride in the 3×3 conv, torchvision)",
            ),
            Model(
                "resnet101",
                "resnet",
                {"block": "bottleneck", "layers": (3, 4, 23, 3)},
                description="ResNet-101 v1.5",
            ),
            Model(
                "resnet152",
                "resnet",
                {"block": "bottleneck", "layers": (3, 8, 36, 3)},
                description="ResNet-152 v1.5",
            ),
            Model(
                "resnet50_v1",
                "resnet",
                {"block": "bottleneck", "layers": (3, 4, 6, 3), "stride_in": "conv1"},
                description="ResNet-50 v1 (stride in the first 1×1 conv, Caffe)",
            ),
            Model(
                "inception_v3",
                "inception_v3",
                {"aux_logits": False},
                image=299,
                description="Inception-v3, 299×299, auxiliary classifier off",
            ),
            Model("vgg16_bn", "vgg_bn", {}, description="VGG-16 with batch normalization"),
            Model("mobilenet_v2", "mobilenet_v2", {}, description="MobileNetV2"),
            Model(
                "tiny_cnn",
                "tiny_cnn",
                {},
                image=16,
                description="small test network with every BN structure the schemes treat "
                "differently",
            ),
        )
    }
)


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """'unknown model 'x' (known: ...; did you mean 'y'?)'."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {kind} '{name}' (known: {', '.join(known)}){hint}"


def get_model(name: str) -> Model:
    """The zoo model called `name`.

    Raises:
        WorkloadError: no such model, listing the known ones.
    """
    if name not in MODELS:
        raise WorkloadError(unknown_name_message("model", name, list(MODELS)))
    return MODELS[name]


def build_layers(builder_name: str, params: Mapping[str, Any], in_channels: int) -> list[Layer]:
    """Run a builder on validated hyper-parameters.

    Raises:
        WorkloadError: unknown builder; pydantic.ValidationError for bad hyper-parameters.
    """
    if builder_name not in BUILDERS:
        raise WorkloadError(unknown_name_message("zoo builder", builder_name, list(BUILDERS)))
    builder = BUILDERS[builder_name]
    return builder.build(builder.params_model.model_validate(dict(params)), in_channels)


def build_model(
    name: str, *, batch: int = DEFAULT_BATCH, image: int | tuple[int, int] | None = None
) -> Network:
    """A zoo model at a batch size and image size (default: the model's own).

    Raises:
        WorkloadError: unknown model, or an image too small for the network.

    >>> build_model("resnet50", batch=2).out_shape("layer4.2.relu3")
    TensorShape(n=2, c=2048, h=7, w=7)
    """
    model = get_model(name)
    layers = build_layers(model.builder, model.params, 3)
    return build_network(name, layers, batch=batch, image=model.image if image is None else image)
