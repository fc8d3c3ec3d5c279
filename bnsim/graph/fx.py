"""Import a PyTorch `nn.Module` as a bnsim Network, by tracing it with torch.fx.

`from_torch(module, input_shape=(3, 224, 224), batch=32)` traces the module symbolically, runs the
traced graph once on one image of zeros (in evaluation mode, on the CPU) for every tensor's shape,
and maps each node to a bnsim layer: modules by their class (`nn.Conv2d`, `nn.BatchNorm2d`, …),
functions and tensor methods by what they compute (`torch.cat`, `+`, `torch.flatten`, …). The
module's output must be one tensor of logits, N × classes; bnsim appends the softmax cross-entropy
loss, as training does. Layers keep the module's names (`layer1.0.conv1`). BatchNorm stays a
training BN: batch statistics and their backward. Anything else is refused with the node named and
what is supported; nothing partial is returned. Needs torch (`pip install 'bnsim[torch]'`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bnsim.errors import WorkloadError
from bnsim.graph.layer import Input, Layer, SoftmaxCrossEntropy
from bnsim.graph.network import INPUT_NAME, Network, build_network
from bnsim.graph.torchmap import (
    FUNCTION_TARGETS,
    FUNCTIONS,
    MODULES,
    QUALIFIED_FUNCTIONS,
    supported,
)
from bnsim.graph.torchviews import tensor_inputs


def from_torch(
    module: Any,
    input_shape: Sequence[int] = (3, 224, 224),
    *,
    batch: int = 32,
    name: str | None = None,
) -> Network:
    """The network `module` computes on `batch` images of `input_shape` (channels, height, width).

    Raises:
        WorkloadError: torch is missing, the module does not trace, or a node is not supported.
    """
    title = name or type(module).__name__.lower()
    if len(input_shape) != 3:
        raise WorkloadError(
            f"{title}: input_shape must be (channels, height, width), got {tuple(input_shape)}"
        )
    traced, torch = _traced(module, tuple(input_shape), title)
    modules = dict(traced.named_modules())
    layers: list[Layer] = [Input(name=INPUT_NAME, channels=int(input_shape[0]))]
    names: dict[Any, str] = {}  # fx node → the bnsim layer that holds its value
    logits = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if names:
                raise WorkloadError(
                    f"{title}: the module takes more than one input ('{node.name}')"
                )
            names[node] = INPUT_NAME
        elif node.op == "output":
            logits = _single_output(title, node, names)
        elif "tensor_meta" not in node.meta:  # a size or a shape: an argument of a view
            continue
        elif node.op == "get_attr":
            raise WorkloadError(
                f"{title}: node '{node.name}' reads the attribute '{node.target}' as a tensor; "
                "bnsim takes parameters only inside supported layers"
            )
        else:
            layer = _layer_of(title, node, modules, names, torch)
            if layer is None:  # a view or a no-op: the node's value is its input's
                names[node] = names[tensor_inputs(node)[0]]
                continue
            layer = _unique(layer, {existing.name for existing in layers})
            names[node] = layer.name
            layers.append(layer)
    assert logits is not None, "every fx graph has an output node"
    layers.append(SoftmaxCrossEntropy(name="loss", inputs=(logits,)))
    size = (int(input_shape[1]), int(input_shape[2]))
    return build_network(title, layers, batch=batch, image=size)


def _traced(module: Any, input_shape: tuple[int, ...], title: str) -> tuple[Any, Any]:
    """The module traced by torch.fx with every node's shape for one image, and torch."""
    try:
        import torch  # noqa: PLC0415 (an optional dependency)
        from torch import fx  # noqa: PLC0415
        from torch.fx.passes.shape_prop import ShapeProp  # noqa: PLC0415
    except ImportError as error:
        raise WorkloadError(
            f"{title}: importing a PyTorch module needs torch: pip install 'bnsim[torch]'"
        ) from error
    try:
        traced = fx.symbolic_trace(module)
    except Exception as error:  # torch.fx raises many kinds
        raise WorkloadError(
            f"{title}: torch.fx cannot trace the module: {_first(error)}"
        ) from error
    was_training = module.training
    module.eval()  # one image: batch statistics of one value per channel would fail
    try:
        with torch.no_grad():
            dtype = next(module.parameters(), torch.zeros(())).dtype  # the module's own
            ShapeProp(traced).propagate(torch.zeros(1, *input_shape, dtype=dtype))
    except Exception as error:
        raise WorkloadError(
            f"{title}: the module does not run on a {input_shape} input: {_first(error)}"
        ) from error
    finally:
        module.train(was_training)
    return traced, torch


def _first(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _single_output(title: str, node: Any, names: dict[Any, str]) -> str:
    value = node.args[0]
    if not hasattr(value, "op"):
        raise WorkloadError(
            f"{title}: the module returns {type(value).__name__}, not one tensor of logits "
            "(a network with auxiliary outputs: build it without them, e.g. aux_logits=False)"
        )
    return names[value]


def _layer_of(
    title: str, node: Any, modules: dict[str, Any], names: dict[Any, str], torch: Any
) -> Layer | None:
    """The bnsim layer of one fx node, or None if the node passes its input on unchanged."""
    inputs = tuple(names[item] for item in tensor_inputs(node))
    if node.op == "call_module":
        module = modules[node.target]
        label = f"module '{node.target}' ({type(module).__name__})"
        builder = next(
            (
                MODULES[kind.__name__]
                for kind in type(module).__mro__
                if kind.__name__ in MODULES and getattr(torch.nn, kind.__name__, None) is kind
            ),
            None,
        )
        if builder is None:
            raise WorkloadError(f"{title}: {label}: not supported; bnsim maps {supported()}")
        return builder(title, label, str(node.target), inputs, module, node)
    label = f"node '{node.name}' ({_callable_name(node)})"
    key = _function_key(node, torch)
    builder = FUNCTIONS.get(key) if key else None
    if builder is None:
        raise WorkloadError(f"{title}: {label}: not supported; bnsim maps {supported()}")
    return builder(title, label, node.name, inputs, None, node)


def _callable_name(node: Any) -> str:
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return getattr(node.target, "__name__", str(node.target))


def _function_key(node: Any, torch: Any) -> str | None:
    """The name a function or tensor method is known by here ('add', 'cat', …), or None."""
    if node.op == "call_method":
        return f"method:{node.target}"
    target = node.target
    for key, candidates in FUNCTION_TARGETS.items():
        if any(target is candidate for candidate in candidates(torch)):
            return key
    qualified = f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}"
    return QUALIFIED_FUNCTIONS.get(qualified)


def _unique(layer: Layer, taken: set[str]) -> Layer:
    if layer.name not in taken:
        return layer
    index = 1
    while f"{layer.name}_{index}" in taken:
        index += 1
    return layer.model_copy(update={"name": f"{layer.name}_{index}"})


# torchvision models built without their auxiliary classifiers: one output of logits
WITHOUT_AUX = {"inception_v3": {"aux_logits": False}, "googlenet": {"aux_logits": False}}


def from_torchvision(
    name: str, *, batch: int = 32, image: int | tuple[int, int] | None = None
) -> Network:
    """torchvision's classification model `name` (built without weights, without auxiliary
    classifiers), imported with `from_torch` at the image size its weights are evaluated at
    (224 × 224 pixels for most; Inception-v3 299, EfficientNet-B7 600) or `image`.

    Raises:
        WorkloadError: torchvision is missing or does not import, or has no such model.
    """
    spec = f"torchvision:{name}"
    try:
        import torchvision  # noqa: PLC0415 (an optional dependency)
    except ImportError as error:
        raise WorkloadError(
            f"{spec}: needs torchvision: pip install 'bnsim[torchvision]' (docs/workloads.md)"
        ) from error
    except Exception as error:  # a torchvision built for another torch fails as it loads
        raise WorkloadError(f"{spec}: torchvision does not import: {_first(error)}") from error
    try:
        module = torchvision.models.get_model(name, weights=None, **WITHOUT_AUX.get(name, {}))
    except ValueError as error:
        raise WorkloadError(
            f"{spec}: torchvision has no model {name!r} (torchvision.models.list_models())"
        ) from error
    side = _native_side(torchvision, name)
    height, width = (image, image) if isinstance(image, int) else image or (side, side)
    return from_torch(module, (3, height, width), batch=batch, name=name)


def _native_side(torchvision: Any, name: str) -> int:
    """The image side torchvision evaluates the model's default weights at (its crop size, read
    from the weights' metadata without downloading them): 224 for most, 299 for Inception-v3,
    600 for EfficientNet-B7; 224 where a torchvision has no such metadata."""
    try:
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms.keywords["crop_size"]
    except (AttributeError, KeyError, ValueError):
        return 299 if name == "inception_v3" else 224
    return int(crop[0] if isinstance(crop, list | tuple) else crop)
