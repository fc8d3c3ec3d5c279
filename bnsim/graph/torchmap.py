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
    ChannelShuffle,
    Chunk,
    Concat,
    Conv2d,
    Dropout,
    Flatten,
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


def tensor_inputs(node: Any) -> list[Any]:
    """The fx nodes among a node's arguments, in order (a list argument's too: torch.cat's)."""
    found = []
    for argument in node.args:
        items = argument if isinstance(argument, list | tuple) else [argument]
        found += [item for item in items if hasattr(item, "op") and "tensor_meta" in item.meta]
    return found


def shape_of(node: Any) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


Builder = Callable[[str, str, str, tuple[str, ...], Any, Any], Layer | None]


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


def _flatten(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    shape = shape_of(node)
    if len(shape) != 2:
        raise WorkloadError(
            f"{title}: {label}: only a flatten to (batch, features) is supported, got {shape}"
        )
    return Flatten(name=name, inputs=inputs)


def _view(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer | None:
    """A view or reshape: to (batch, features) a flatten; the two views around ShuffleNet's
    transpose pass their input on (the transpose is the shuffle); anything else is refused."""
    shape = shape_of(node)
    if len(shape) == 2:
        return _flatten(title, label, name, inputs, module, node)
    if _shuffle_views(node):
        return None
    raise WorkloadError(
        f"{title}: {label}: a view to {shape} is not supported; bnsim maps views that flatten to "
        "(batch, features) and ShuffleNet's channel shuffle (a view to N × g × C/g × H × W, "
        "transpose(1, 2), contiguous, a view back to N × C × H × W)"
    )


def _shuffle_views(node: Any) -> bool:
    """Whether `node` is the view into groups before a channel shuffle's transpose, or the view
    back after it."""
    source = tensor_inputs(node)[0]
    before, after = shape_of(source), shape_of(node)
    if len(before) == 4 and len(after) == 5:  # into groups: every user transposes them
        n, c, h, w = before
        grouped = after[0] == n and after[1] * after[2] == c and after[3:] == (h, w)
        return grouped and all(_is_group_transpose(user) for user in node.users)
    while source.op == "call_method" and source.target == "contiguous":
        source = tensor_inputs(source)[0]
    if len(before) == 5 and len(after) == 4 and _is_group_transpose(source):
        return after == shape_of(tensor_inputs(tensor_inputs(source)[0])[0])
    return False


def _is_group_transpose(node: Any) -> bool:
    """A transpose of dimensions 1 and 2 of a five-dimensional tensor."""
    if getattr(node.target, "__name__", node.target) != "transpose":
        return False
    dims = sorted(int(dim) % 5 for dim in node.args[1:3])
    return dims == [1, 2] and len(shape_of(node)) == 5


def _channel_shuffle(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    grouped = tensor_inputs(node)[0]
    if not (_is_group_transpose(node) and _shuffle_views(grouped)):
        raise WorkloadError(
            f"{title}: {label}: only ShuffleNet's channel shuffle transposes (a view to N × g × "
            "C/g × H × W, transpose(1, 2), contiguous, a view back to N × C × H × W)"
        )
    return ChannelShuffle(name=name, inputs=inputs, groups=shape_of(grouped)[1])


def _chunk(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> None:
    dim = node.kwargs.get("dim", node.args[2] if len(node.args) > 2 else 0)
    if dim != 1:
        raise WorkloadError(f"{title}: {label}: only chunks along channels (dim=1) are supported")


def _chunk_item(
    title: str, label: str, name: str, inputs: tuple[str, ...], module: Any, node: Any
) -> Layer:
    whole, index = node.args[0], node.args[1]
    if not (hasattr(whole, "op") and _function_name(whole) == "chunk"):
        raise WorkloadError(
            f"{title}: {label}: indexing is supported only into torch.chunk's result"
        )
    chunks = whole.kwargs.get("chunks", whole.args[1] if len(whole.args) > 1 else None)
    return Chunk(name=name, inputs=inputs, chunks=int(chunks), index=int(index))


def _function_name(node: Any) -> str:
    return str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")


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
    "Flatten": _flatten,
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
    "flatten": _flatten,
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
    "method:flatten": _flatten,
    "method:view": _view,
    "method:reshape": _view,
    "method:chunk": _chunk,
    "method:transpose": _channel_shuffle,
    "chunk": _chunk,
    "transpose": _channel_shuffle,
    "getitem": _chunk_item,
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
