"""How PyTorch modules, functions and tensor methods map to bnsim layers (bnsim.graph.fx).

Each builder takes the network's title, a label for messages, the layer's name, its inputs (bnsim
layer names), the module (None for a function) and the fx node (its shape in `meta`), and returns
the layer, or None where the node passes its input on unchanged (a view, `nn.Identity`). Imports
bnsim.graph.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from bnsim.errors import WorkloadError
from bnsim.graph.layer import (
    AdaptiveAvgPool2d,
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
    Conv2d,
    Dropout,
    GlobalAvgPool2d,
    Hardsigmoid,
    Hardswish,
    Layer,
    Linear,
    MaxPool2d,
    Mul,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    StochasticDepth,
)
from bnsim.graph.torchviews import (
    Builder,
    channel_shuffle,
    chunk,
    chunk_item,
    flatten,
    shape_of,
    tensor_inputs,
    view,
)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _conv(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    if isinstance(module.padding, str) or module.padding_mode != "zeros":
        raise WorkloadError(f"{title}: {label}: only numeric zero padding is supported")
    return Conv2d(
        name=name,
        inputs=inputs,
        out_channels=module.out_channels,
        kernel=_pair(module.kernel_size),
        stride=_pair(module.stride),
        padding=_pair(module.padding),
        dilation=_pair(module.dilation),
        groups=module.groups,
        bias=module.bias is not None,
    )


def _batchnorm(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    if not module.affine or not module.track_running_stats or module.momentum is None:
        raise WorkloadError(
            f"{title}: {label}: bnsim trains BN with learnable scale and shift and running "
            "statistics updated with a momentum (affine=True, track_running_stats=True, momentum "
            "set)"
        )
    return BatchNorm2d(
        name=name, inputs=inputs, eps=float(module.eps), momentum=float(module.momentum)
    )


def _pool(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    maximum = type(module).__name__ == "MaxPool2d"
    return _pool_layer(title, label, name, inputs, module, maximum=maximum)


def _pool_layer(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, *, maximum: bool
) -> Layer:
    """A pooling layer from a module's attributes (or a functional call's, by the same names)."""
    kernel = _pair(module.kernel_size)
    stride = _pair(module.stride if module.stride is not None else module.kernel_size)
    padding = _pair(module.padding)
    if maximum:
        if _pair(module.dilation) != (1, 1) or module.return_indices:
            raise WorkloadError(
                f"{title}: {label}: dilated pooling and returned indices are not supported"
            )
        return MaxPool2d(
            name=name,
            inputs=inputs,
            kernel=kernel,
            stride=stride,
            padding=padding,
            ceil_mode=bool(module.ceil_mode),
        )
    if module.divisor_override is not None:
        raise WorkloadError(f"{title}: {label}: divisor_override is not supported")
    return AvgPool2d(
        name=name,
        inputs=inputs,
        kernel=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=bool(module.ceil_mode),
        count_include_pad=bool(module.count_include_pad),
    )


# the positional parameters of torch.nn.functional's pooling functions, in order
_MAX_POOL_ARGS = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG_POOL_ARGS = (
    "kernel_size",
    "stride",
    "padding",
    "ceil_mode",
    "count_include_pad",
    "divisor_override",
)


def _functional_pool(parameters: tuple[str, ...], *, maximum: bool) -> Builder:
    """F.max_pool2d / F.avg_pool2d: their arguments as the module's attributes, then `_pool`."""
    defaults = {
        "stride": None,
        "padding": 0,
        "dilation": 1,
        "ceil_mode": False,
        "return_indices": False,
        "count_include_pad": True,
        "divisor_override": None,
    }

    def build(
        title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
    ) -> Layer:
        given = {**defaults, **dict(zip(parameters, node.args[1:], strict=False)), **node.kwargs}
        return _pool_layer(title, label, name, inputs, SimpleNamespace(**given), maximum=maximum)

    return build


def _adaptive(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    height, width = shape_of(node)[2:]
    if (height, width) == (1, 1):
        return GlobalAvgPool2d(name=name, inputs=inputs)
    return AdaptiveAvgPool2d(name=name, inputs=inputs, output_size=(height, width))


def _linear(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    return Linear(
        name=name, inputs=inputs, out_features=module.out_features, bias=module.bias is not None
    )


def _dropout(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    p = float(
        module.p
        if module is not None
        else node.kwargs.get("p", node.args[1] if len(node.args) > 1 else 0.5)
    )
    return Dropout(name=name, inputs=inputs, p=p) if p > 0 else None


def _stochastic_depth(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    given = dict(zip(("p", "mode", "training"), node.args[1:], strict=False)) | node.kwargs
    p, mode = float(given["p"]), given["mode"]
    if mode != "row":
        raise WorkloadError(
            f"{title}: {label}: only stochastic depth by sample (mode 'row') is supported, "
            f"got mode {mode!r}"
        )
    return StochasticDepth(name=name, inputs=inputs, p=p) if p > 0 else None


def _plain(kind: Callable[..., Layer]) -> Builder:
    def build(
        title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
    ) -> Layer:
        return kind(name=name, inputs=inputs)

    return build


def _identity(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> None:
    return None


def _concat(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    dim = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0)
    if dim != 1:
        raise WorkloadError(
            f"{title}: {label}: only concatenation along channels (dim=1) is supported"
        )
    return Concat(name=name, inputs=inputs)


def _add(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    if len(inputs) != 2 or len(node.args) != 2 or node.kwargs:
        raise WorkloadError(f"{title}: {label}: only the sum of two tensors is supported")
    return Add(name=name, inputs=inputs)


def _mul(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    sources = tensor_inputs(node)
    if len(sources) != 2:
        raise WorkloadError(f"{title}: {label}: only the product of two tensors is supported")
    shapes = [shape_of(source) for source in sources]
    ordered = inputs if shapes[1][2:] == (1, 1) else inputs[::-1]
    return Mul(name=name, inputs=ordered)


def _mean(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    dims = node.kwargs.get("dim", node.args[1] if len(node.args) > 1 else None)
    rank = len(shape_of(tensor_inputs(node)[0]))
    pixels = (
        rank == 4
        and isinstance(dims, list | tuple)
        and sorted(int(dim) % rank for dim in dims) == [2, 3]
    )
    if pixels:  # N×C×1×1 with keepdim, N×C without: both are bnsim's flat N×C×1×1
        return GlobalAvgPool2d(name=name, inputs=inputs)
    raise WorkloadError(
        f"{title}: {label}: only a mean over the pixels (dims 2 and 3) is supported"
    )


MODULES: dict[str, Builder] = {
    "Conv2d": _conv,
    "BatchNorm2d": _batchnorm,
    "ReLU": _plain(ReLU),
    "ReLU6": _plain(ReLU6),
    "SiLU": _plain(SiLU),
    "Sigmoid": _plain(Sigmoid),
    "Hardswish": _plain(Hardswish),
    "Hardsigmoid": _plain(Hardsigmoid),
    "MaxPool2d": _pool,
    "AvgPool2d": _pool,
    "AdaptiveAvgPool2d": _adaptive,
    "Linear": _linear,
    "Flatten": flatten,
    "Dropout": _dropout,
    "Identity": _identity,
}

# functions by key: the callables that compute it (looked up in torch when an import is made)
FUNCTION_TARGETS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "add": lambda torch: (operator.add, operator.iadd, torch.add),
    "mul": lambda torch: (operator.mul, operator.imul, torch.mul),
    "cat": lambda torch: (torch.cat, torch.concat),
    "flatten": lambda torch: (torch.flatten,),
    "chunk": lambda torch: (torch.chunk,),
    "transpose": lambda torch: (torch.transpose,),
    "getitem": lambda torch: (operator.getitem,),
    "relu": lambda torch: (torch.relu, torch.nn.functional.relu, torch.relu_),
    "relu6": lambda torch: (torch.nn.functional.relu6,),
    "silu": lambda torch: (torch.nn.functional.silu,),
    "sigmoid": lambda torch: (torch.sigmoid, torch.nn.functional.sigmoid),
    "hardswish": lambda torch: (torch.nn.functional.hardswish,),
    "hardsigmoid": lambda torch: (torch.nn.functional.hardsigmoid,),
    "adaptive_avg_pool2d": lambda torch: (torch.nn.functional.adaptive_avg_pool2d,),
    "max_pool2d": lambda torch: (torch.nn.functional.max_pool2d, torch.max_pool2d),
    "avg_pool2d": lambda torch: (torch.nn.functional.avg_pool2d,),
    "dropout": lambda torch: (torch.nn.functional.dropout,),
}
# functions of other packages by their qualified name (torchvision need not be imported to map)
QUALIFIED_FUNCTIONS = {"torchvision.ops.stochastic_depth.stochastic_depth": "stochastic_depth"}
FUNCTIONS: dict[str, Builder] = {
    "add": _add,
    "mul": _mul,
    "cat": _concat,
    "flatten": flatten,
    "relu": _plain(ReLU),
    "relu6": _plain(ReLU6),
    "silu": _plain(SiLU),
    "sigmoid": _plain(Sigmoid),
    "hardswish": _plain(Hardswish),
    "hardsigmoid": _plain(Hardsigmoid),
    "adaptive_avg_pool2d": _adaptive,
    "max_pool2d": _functional_pool(_MAX_POOL_ARGS, maximum=True),
    "avg_pool2d": _functional_pool(_AVG_POOL_ARGS, maximum=False),
    "dropout": _dropout,
    "stochastic_depth": _stochastic_depth,
    "method:flatten": flatten,
    "method:view": view,
    "method:reshape": view,
    "method:chunk": chunk,
    "method:transpose": channel_shuffle,
    "chunk": chunk,
    "transpose": channel_shuffle,
    "getitem": chunk_item,
    "method:mean": _mean,
    "method:relu": _plain(ReLU),
    "method:relu_": _plain(ReLU),
    "method:sigmoid": _plain(Sigmoid),
    "method:add": _add,
    "method:add_": _add,
    "method:mul": _mul,
    "method:contiguous": _identity,
}


def supported() -> str:
    modules = ", ".join(f"nn.{name}" for name in MODULES)
    functions = ", ".join(
        sorted(f"Tensor.{key[7:]}" if key.startswith("method:") else key for key in FUNCTIONS)
    )
    return f"modules {modules}; functions and methods {functions}"
