"""How ONNX operators map to bnsim layers (bnsim.graph.onnximport), after the ONNX operator
specification (onnx.ai, "Operators": attributes and their defaults).

Each builder takes the Graph (inferred shapes, constants, which tensors carry activations), the
node, the layer's name and a label for messages, and returns the layer, or None where the node
passes its input on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bnsim.errors import WorkloadError
from bnsim.graph.layer import (
    Add,
    AvgPool2d,
    BatchNorm2d,
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
)

FLOAT_TYPES = frozenset((1, 10, 11, 16))  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


@dataclass(frozen=True)
class Value:
    """A tensor of the graph: its inferred shape (-1 where not fixed) and element type."""

    name: str
    shape: tuple[int, ...]
    element_type: int


@dataclass
class Graph:
    """What the builders need of an ONNX graph."""

    onnx: Any
    model: Any
    label: str
    values: dict[str, Value]
    constants: dict[str, Any]  # initializers and Constant outputs: name → numpy array
    silu: dict[str, str] = field(default_factory=dict)  # Mul output → its x of x · Sigmoid(x)
    fused_sigmoids: set[str] = field(default_factory=set)  # Sigmoid outputs fused into a SiLU
    names: dict[str, str] = field(default_factory=dict)  # activation tensor → bnsim layer

    @classmethod
    def of(cls, onnx: Any, model: Any, label: str) -> Graph:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
        except Exception as error:  # the checker raises its own kinds
            raise WorkloadError(f"{label}: ONNX shape inference failed: {_first(error)}") from error
        values = {}
        info = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
        for value in info:
            tensor = value.type.tensor_type
            shape = tuple(dim.dim_value if dim.dim_value > 0 else -1 for dim in tensor.shape.dim)
            values[value.name] = Value(value.name, shape, tensor.elem_type)
        numpy_helper = onnx.numpy_helper
        constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        graph = cls(onnx, model, label, values, constants)
        graph._find_silu()
        return graph

    def _find_silu(self) -> None:
        """Mul(x, Sigmoid(x)) whose sigmoid nothing else reads: PyTorch's export of SiLU."""
        readers: dict[str, int] = {}
        for node in self.model.graph.node:
            for name in node.input:
                readers[name] = readers.get(name, 0) + 1
        sigmoid_of = {
            n.output[0]: n.input[0] for n in self.model.graph.node if n.op_type == "Sigmoid"
        }
        for node in self.model.graph.node:
            if node.op_type != "Mul" or len(node.input) != 2:
                continue
            for gate, x in (node.input, node.input[::-1]):
                if sigmoid_of.get(gate) == x and readers.get(gate) == 1:
                    self.silu[node.output[0]] = x
                    self.fused_sigmoids.add(gate)
                    break

    def value(self, name: str) -> Value | None:
        return self.values.get(name)

    def shape(self, name: str) -> tuple[int, ...]:
        value = self.values.get(name)
        return value.shape if value is not None else ()

    def activations(self, node: Any) -> list[str]:
        """The node's inputs that carry the images' data, in order."""
        return [name for name in node.input if name in self.names]

    def inputs(self, node: Any, count: int | None = None) -> tuple[str, ...]:
        """The bnsim layers holding the node's activation inputs (the first `count` of them)."""
        return tuple(self.names[name] for name in self.activations(node)[:count])

    def computes_shapes(self, node: Any) -> bool:
        """Whether the node is off the data path: a constant, or a computation on shapes and
        constants (integer outputs, or no activation among its inputs), or a sigmoid that a SiLU
        takes in."""
        if node.op_type == "Constant":
            self.constants[node.output[0]] = self.onnx.numpy_helper.to_array(
                self.onnx.helper.get_attribute_value(node.attribute[0])
            )
            return True
        if node.output[0] in self.fused_sigmoids:
            return True
        if not self.activations(node):
            return True
        types = [self.values[name].element_type for name in node.output if name in self.values]
        return bool(types) and all(kind not in FLOAT_TYPES for kind in types)

    def attribute(self, node: Any, key: str, default: Any = None) -> Any:
        for attribute in node.attribute:
            if attribute.name == key:
                value = self.onnx.helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    def constant(self, node: Any, position: int, label: str) -> Any:
        """The constant value of input `position` (None if the input is left out)."""
        if position >= len(node.input) or not node.input[position]:
            return None
        name = node.input[position]
        if name not in self.constants:
            raise WorkloadError(f"{label}: input '{name}' must be a constant")
        return self.constants[name]


def _first(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


Builder = Callable[[Graph, Any, str, str], Layer | None]


def _window(graph: Graph, node: Any, label: str) -> dict[str, tuple[int, int]]:
    """kernel, stride and padding of a Conv or pooling node (symmetric pads only)."""
    if graph.attribute(node, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise WorkloadError(f"{label}: auto_pad SAME_* is not supported; export explicit pads")
    kernel = graph.attribute(node, "kernel_shape")
    if kernel is None:
        kernel = graph.constant(node, 1, label).shape[2:]
    pads = list(graph.attribute(node, "pads", [0, 0, 0, 0]))
    if len(kernel) != 2 or pads[:2] != pads[2:]:
        raise WorkloadError(
            f"{label}: only 2-D windows with equal pads on both sides are supported"
        )
    stride = graph.attribute(node, "strides", [1, 1])
    return {
        "kernel": (int(kernel[0]), int(kernel[1])),
        "stride": (int(stride[0]), int(stride[1])),
        "padding": (int(pads[0]), int(pads[1])),
    }


def _conv(graph: Graph, node: Any, name: str, label: str) -> Layer:
    weight = graph.constant(node, 1, label)
    dilation = graph.attribute(node, "dilations", [1, 1])
    return Conv2d(
        name=name,
        inputs=graph.inputs(node, 1),
        out_channels=int(weight.shape[0]),
        dilation=(int(dilation[0]), int(dilation[1])),
        groups=int(graph.attribute(node, "group", 1)),
        bias=len(node.input) > 2 and bool(node.input[2]),
        **_window(graph, node, label),
    )


def _batchnorm(graph: Graph, node: Any, name: str, label: str) -> Layer:
    # ONNX's attributes are float32: read back at float32's precision (1e-05, not 9.9999997e-06);
    # its momentum is the share of the running statistics kept, PyTorch's the share replaced
    momentum = 1 - float(f"{graph.attribute(node, 'momentum', 0.9):.7g}")
    return BatchNorm2d(
        name=name,
        inputs=graph.inputs(node, 1),
        eps=float(f"{graph.attribute(node, 'epsilon', 1e-5):.7g}"),
        momentum=float(f"{momentum:.7g}"),
    )


def _clip(graph: Graph, node: Any, name: str, label: str) -> Layer:
    low = graph.constant(node, 1, label)
    high = graph.constant(node, 2, label)
    low = float(graph.attribute(node, "min", -math.inf) if low is None else low)
    high = float(graph.attribute(node, "max", math.inf) if high is None else high)
    inputs = graph.inputs(node, 1)
    if (low, high) == (0.0, 6.0):
        return ReLU6(name=name, inputs=inputs)
    if low == 0.0 and high == math.inf:
        return ReLU(name=name, inputs=inputs)
    raise WorkloadError(f"{label}: only Clip to [0, 6] (ReLU6) or [0, ∞) (ReLU) is supported")


def _hardsigmoid(graph: Graph, node: Any, name: str, label: str) -> Layer:
    alpha = float(graph.attribute(node, "alpha", 0.2))
    beta = float(graph.attribute(node, "beta", 0.5))
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-6) and math.isclose(beta, 0.5)):
        raise WorkloadError(
            f"{label}: only PyTorch's hard-sigmoid (alpha 1/6, beta 0.5) is supported, got "
            f"alpha {alpha}, beta {beta}"
        )
    return Hardsigmoid(name=name, inputs=graph.inputs(node, 1))


def _mul(graph: Graph, node: Any, name: str, label: str) -> Layer:
    if node.output[0] in graph.silu:
        return SiLU(name=name, inputs=(graph.names[graph.silu[node.output[0]]],))
    sources = graph.activations(node)
    shapes = [graph.shape(source) for source in sources]
    if len(sources) == 2 and shapes[1][2:] == (1, 1) and len(shapes[0]) == 4:
        return Mul(name=name, inputs=(graph.names[sources[0]], graph.names[sources[1]]))
    if len(sources) == 2 and shapes[0][2:] == (1, 1) and len(shapes[1]) == 4:
        return Mul(name=name, inputs=(graph.names[sources[1]], graph.names[sources[0]]))
    raise WorkloadError(
        f"{label}: only x · Sigmoid(x) (SiLU) and a map times its N×C×1×1 gate are supported"
    )


def _add(graph: Graph, node: Any, name: str, label: str) -> Layer:
    sources = graph.activations(node)
    if len(sources) != 2:
        raise WorkloadError(f"{label}: only the sum of two activations is supported")
    return Add(name=name, inputs=graph.inputs(node))


def _concat(graph: Graph, node: Any, name: str, label: str) -> Layer:
    if graph.attribute(node, "axis") not in (1, -3):
        raise WorkloadError(f"{label}: only concatenation along channels (axis 1) is supported")
    return Concat(name=name, inputs=graph.inputs(node))


def _pool(graph: Graph, node: Any, name: str, label: str) -> Layer:
    window = _window(graph, node, label)
    ceil_mode = bool(graph.attribute(node, "ceil_mode", 0))
    inputs = graph.inputs(node, 1)
    if node.op_type == "MaxPool":
        if list(graph.attribute(node, "dilations", [1, 1])) != [1, 1] or (
            len(node.output) > 1 and node.output[1]
        ):
            raise WorkloadError(
                f"{label}: dilated pooling and its indices output are not supported"
            )
        return MaxPool2d(name=name, inputs=inputs, ceil_mode=ceil_mode, **window)
    count_include_pad = bool(graph.attribute(node, "count_include_pad", 0))
    return AvgPool2d(
        name=name, inputs=inputs, ceil_mode=ceil_mode, count_include_pad=count_include_pad, **window
    )


def _mean(graph: Graph, node: Any, name: str, label: str) -> Layer:
    axes = graph.attribute(node, "axes")
    if axes is None:
        axes = graph.constant(node, 1, label)
    axes = sorted(int(axis) % 4 for axis in (axes if axes is not None else []))
    if axes != [2, 3] or not graph.attribute(node, "keepdims", 1):
        raise WorkloadError(
            f"{label}: only a mean over the pixels (axes 2 and 3) with keepdims is supported"
        )
    return GlobalAvgPool2d(name=name, inputs=graph.inputs(node, 1))


def _reshape(graph: Graph, node: Any, name: str, label: str) -> Layer | None:
    source = graph.activations(node)[0]
    before, after = graph.shape(source), graph.shape(node.output[0])
    if len(after) == len(before) and after[1:] == before[1:]:
        return None
    # a (batch, -1) target computed from the input's size leaves the features uninferred
    if len(after) == 2 and after[1] in (-1, math.prod(before[1:])):
        return Flatten(name=name, inputs=(graph.names[source],))
    raise WorkloadError(f"{label}: only a reshape to (batch, features) is supported, got {after}")


def _gemm(graph: Graph, node: Any, name: str, label: str) -> Layer:
    weights = graph.constant(node, 1, label)
    if graph.attribute(node, "transA", 0) or weights is None:
        raise WorkloadError(f"{label}: only activations times a constant weight matrix")
    if (
        float(graph.attribute(node, "alpha", 1.0)) != 1
        or float(graph.attribute(node, "beta", 1.0)) != 1
    ):
        raise WorkloadError(f"{label}: only alpha = beta = 1 is supported")
    transposed = graph.attribute(node, "transB", 0)
    features, inputs = weights.shape if transposed else weights.shape[::-1]
    source = graph.activations(node)[0]
    flat = graph.shape(source)
    known = math.prod(flat[1:]) if all(size > 0 for size in flat[1:]) else inputs
    if (len(flat) == 4 and flat[2:] != (1, 1)) or inputs != known:
        raise WorkloadError(f"{label}: weights of {inputs} inputs for an input of shape {flat}")
    return Linear(
        name=name,
        inputs=(graph.names[graph.activations(node)[0]],),
        out_features=int(features),
        bias=len(node.input) > 2 and bool(node.input[2]),
    )


def _dropout(graph: Graph, node: Any, name: str, label: str) -> Layer | None:
    ratio = graph.constant(node, 1, label)
    p = float(graph.attribute(node, "ratio", 0.5) if ratio is None else ratio)
    source = graph.names[graph.activations(node)[0]]
    return Dropout(name=name, inputs=(source,), p=p) if p > 0 else None


def _identity(graph: Graph, node: Any, name: str, label: str) -> None:
    return None


def _plain(kind: Callable[..., Layer]) -> Builder:
    def build(graph: Graph, node: Any, name: str, label: str) -> Layer:
        return kind(name=name, inputs=graph.inputs(node, 1))

    return build


def _flatten(graph: Graph, node: Any, name: str, label: str) -> Layer:
    if graph.attribute(node, "axis", 1) != 1:
        raise WorkloadError(f"{label}: only Flatten at axis 1 is supported")
    return Flatten(name=name, inputs=(graph.names[graph.activations(node)[0]],))


OPS: dict[str, Builder] = {
    "Conv": _conv,
    "BatchNormalization": _batchnorm,
    "Relu": _plain(ReLU),
    "Clip": _clip,
    "Sigmoid": _plain(Sigmoid),
    "HardSigmoid": _hardsigmoid,
    "HardSwish": _plain(Hardswish),
    "Mul": _mul,
    "Add": _add,
    "Concat": _concat,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _plain(GlobalAvgPool2d),
    "ReduceMean": _mean,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Gemm": _gemm,
    "Dropout": _dropout,
    "Identity": _identity,
}


def supported() -> str:
    return "the operators " + ", ".join(OPS)
