"""Import an ONNX model file as a bnsim Network.

`from_onnx(path, batch=None)` reads the graph with the `onnx` package (`pip install 'bnsim[onnx]'`),
infers every tensor's shape (onnx.shape_inference), and maps each node to a bnsim layer. The graph
must have one image input (N × C × H × W, C, H and W fixed) and one output of logits; bnsim appends
the softmax cross-entropy loss. BatchNormalization stays a training BN (batch statistics and their
backward); a graph with none, as exported for inference with BN folded into the convolutions, is
refused rather than simulated without BN. Nodes that only compute shapes (Shape, Gather, Unsqueeze,
Constant, … on integer tensors) become no layers; SiLU exported as x · Sigmoid(x) becomes one
`silu` layer. Anything else is refused with the node named and what is supported; nothing partial
is returned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bnsim.errors import WorkloadError
from bnsim.graph.layer import Input, Layer, SoftmaxCrossEntropy
from bnsim.graph.network import INPUT_NAME, Network, build_network
from bnsim.graph.onnxmap import OPS, Graph, supported
from bnsim.graph.zoo import DEFAULT_BATCH

CONTROL_FLOW = ("If", "Loop", "Scan")
FOLDED_BN = (
    "this graph has no BatchNormalization nodes: was it exported with BN folded? export with "
    "training=TrainingMode.TRAINING (torch.onnx.export) to keep BN"
)


def from_onnx(path: str | Path, *, batch: int | None = None, name: str | None = None) -> Network:
    """The network of the ONNX file at `path`, at `batch` images (default: the file's batch if it
    is fixed, else DEFAULT_BATCH, 32).

    Raises:
        WorkloadError: onnx is missing, the file is no ONNX model, or a node is not supported.
    """
    path = Path(path)
    title = name or path.stem
    model, onnx = _load(path)
    graph = Graph.of(onnx, model, f"{path}")
    if not any(node.op_type == "BatchNormalization" for node in model.graph.node):
        raise WorkloadError(f"{path}: {FOLDED_BN}")
    image = _image_input(graph, path)
    channels, height, width = image.shape[1:]
    layers: list[Layer] = [Input(name=INPUT_NAME, channels=channels)]
    graph.names[image.name] = INPUT_NAME
    for index, node in enumerate(model.graph.node):
        label = f"node '{node.name or index}' ({node.op_type})"
        if node.op_type in CONTROL_FLOW:
            raise WorkloadError(f"{path}: {label}: control flow is not supported")
        if graph.computes_shapes(node):
            continue
        builder = OPS.get(node.op_type)
        if builder is None:
            raise WorkloadError(f"{path}: {label}: not supported; bnsim maps {supported()}")
        layer = builder(graph, node, _layer_name(node, index, layers), f"{path}: {label}")
        if layer is None:  # the node passes its input on (Identity, Dropout(0), a flattening)
            graph.names[node.output[0]] = graph.names[graph.activations(node)[0]]
            continue
        graph.names[node.output[0]] = layer.name
        layers.append(layer)
    outputs = [value.name for value in model.graph.output]
    if len(outputs) != 1 or outputs[0] not in graph.names:
        raise WorkloadError(f"{path}: the graph must have one output of logits, got {outputs}")
    layers.append(SoftmaxCrossEntropy(name="loss", inputs=(graph.names[outputs[0]],)))
    fixed = image.shape[0]
    count = batch if batch is not None else (fixed if fixed > 0 else DEFAULT_BATCH)
    return build_network(title, layers, batch=count, image=(height, width))


def _load(path: Path) -> tuple[Any, Any]:
    try:
        import onnx  # noqa: PLC0415 (an optional dependency)
    except ImportError as error:
        raise WorkloadError(
            f"{path}: importing ONNX needs onnx: pip install 'bnsim[onnx]'"
        ) from error
    if not path.is_file():
        raise WorkloadError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # the protobuf parser raises its own kinds
        raise WorkloadError(f"{path}: not an ONNX model: {type(error).__name__}") from error
    return model, onnx


def _image_input(graph: Graph, path: Path) -> Any:
    inputs = [value for value in graph.model.graph.input if value.name not in graph.constants]
    if len(inputs) != 1:
        raise WorkloadError(
            f"{path}: the graph must have one input (the images), got {[v.name for v in inputs]}"
        )
    image = graph.value(inputs[0].name)
    if image is None or len(image.shape) != 4 or min(image.shape[1:]) < 1:
        shape = None if image is None else image.shape
        raise WorkloadError(
            f"{path}: input '{inputs[0].name}' must be N × C × H × W with C, H and W fixed, got "
            f"{shape} (a dynamic dimension is -1)"
        )
    return image


def _layer_name(node: Any, index: int, layers: list[Layer]) -> str:
    """The node's name (or its first output's), made unique among the layers so far."""
    base = (node.name or node.output[0] or f"{node.op_type.lower()}_{index}").replace(" ", "_")
    taken = {layer.name for layer in layers}
    if base not in taken:
        return base
    suffix = 1
    while f"{base}_{suffix}" in taken:
        suffix += 1
    return f"{base}_{suffix}"
