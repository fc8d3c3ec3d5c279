"""Network: a validated, shape-inferred forward graph (a networkx DAG of Layers) at one size.

`build_network` checks the graph (unique names, known inputs, arity, no cycles, every output used, a
loss) and infers every layer's output shape, raising WorkloadError that names the layer. Imports
bnsim.graph.layer and bnsim.errors; networkx.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import networkx as nx

from bnsim.errors import WorkloadError
from bnsim.graph.layer import Input, Layer, LayerKind, TensorShape

INPUT_NAME = "input"
# The largest zoo networks have under 1,000 layers; past this, loading alone takes minutes and GBs
MAX_LAYERS = 20_000
_OTHER = str(LayerKind.INPUT.category)  # the category of names outside the graph
MAX_TENSOR_ELEMENTS = 1 << 40  # 4 TiB of fp32 per tensor: far beyond any real network's activations


@dataclass(frozen=True, slots=True, eq=False)
class Network:
    """A forward graph at a given batch and image size. Build it with `build_network`.

    Networks are equal when name, batch, image and layers are (the graph and shapes follow).
    """

    name: str
    batch: int
    image: tuple[int, int]  # input height, width
    layers: tuple[Layer, ...]  # topological order; declaration order where the graph allows
    graph: nx.DiGraph[str] = field(repr=False)  # frozen; node attribute "layer"
    shapes: Mapping[str, TensorShape] = field(repr=False)
    # the graph's "layer" attributes by name: a dict lookup, where the graph's node view costs 10×
    by_name: Mapping[str, Layer] = field(repr=False)
    categories: Mapping[str, str] = field(repr=False)  # breakdown category by layer name
    # the layers reading each layer's output, in network order: schemes ask for them per layer
    readers: Mapping[str, tuple[str, ...]] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return (self.name, self.batch, self.image, self.layers) == (
            other.name,
            other.batch,
            other.image,
            other.layers,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.batch, self.image, self.layers))

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its definition: the frozen graph and the shape mapping do not pickle
        return (_rebuilt, (self.name, self.layers, self.batch, self.image))

    def layer(self, name: str) -> Layer:
        """The layer called `name`.

        Raises:
            KeyError: no such layer.
        """
        return self.by_name[name]

    def out_shape(self, name: str) -> TensorShape:
        """Output shape of layer `name` at this batch size."""
        return self.shapes[name]

    def in_shapes(self, name: str) -> tuple[TensorShape, ...]:
        """Shapes of layer `name`'s inputs, in operand order."""
        return tuple(self.shapes[source] for source in self.layer(name).inputs)

    def consumers(self, name: str) -> tuple[str, ...]:
        """Layers reading `name`'s output, in network order."""
        return self.readers[name]

    def category(self, name: str) -> str:
        """Breakdown category of layer `name` (conv, bn, ...); names outside the graph: "other"."""
        return self.categories.get(name, _OTHER)

    def input_channels(self) -> int:
        """Channels of the network input."""
        return self.shapes[INPUT_NAME].c

    def layers_of_kind(self, kind: LayerKind) -> Iterator[Layer]:
        """Layers of one kind, in network order."""
        return (layer for layer in self.layers if layer.layer_kind is kind)


def build_network(
    name: str, layers: Sequence[Layer], *, batch: int, image: tuple[int, int] | int
) -> Network:
    """Check a forward graph and infer its shapes at `batch` and `image` (height, width).

    The first layer must be the Input, named 'input'.

    Raises:
        WorkloadError: naming the offending layer: duplicate name, unknown input, wrong number of
            inputs, cycle, unused output, no loss, shape mismatch, non-positive batch or image,
            more than MAX_LAYERS layers.
    """
    size = (image, image) if isinstance(image, int) else tuple(image)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkloadError(f"{name}: batch must be a positive integer, got {batch!r}")
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise WorkloadError(f"{name}: image size must be positive integers, got {image!r}")
    height, width = size
    if len(layers) > MAX_LAYERS:
        raise WorkloadError(
            f"{name}: {len(layers):,} layers, more than bnsim takes ({MAX_LAYERS:,}); the largest "
            "zoo networks have under 1,000"
        )
    graph = _check_graph(name, layers)
    position = {layer.name: index for index, layer in enumerate(layers)}  # declaration order
    order = tuple(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
    ordered = tuple(graph.nodes[node]["layer"] for node in order)
    try:
        shapes = _infer_shapes(ordered, batch, (height, width))
    except WorkloadError as err:
        raise WorkloadError(f"{name} at {height}×{width} pixels: {err}") from None
    return Network(
        name=name,
        batch=batch,
        image=(height, width),
        layers=ordered,
        graph=nx.freeze(graph),
        shapes=MappingProxyType(shapes),
        by_name=MappingProxyType({layer.name: layer for layer in ordered}),
        categories=MappingProxyType(
            {layer.name: str(layer.layer_kind.category) for layer in ordered}
        ),
        readers=MappingProxyType(
            {
                layer.name: tuple(sorted(graph.successors(layer.name), key=position.__getitem__))
                for layer in ordered
            }
        ),
    )


def _check_graph(name: str, layers: Sequence[Layer]) -> nx.DiGraph[str]:
    if not layers or not isinstance(layers[0], Input) or layers[0].name != INPUT_NAME:
        raise WorkloadError(f"{name}: the first layer must be the input layer named '{INPUT_NAME}'")
    graph: nx.DiGraph[str] = nx.DiGraph()
    for position, layer in enumerate(layers):
        if layer.name in graph:
            raise WorkloadError(f"{name}: layer '{layer.name}' is defined twice")
        if position and isinstance(layer, Input):
            raise WorkloadError(f"{name}: layer '{layer.name}': only one input layer is allowed")
        graph.add_node(layer.name, layer=layer, position=position)
    for layer in layers:
        low, high = layer.arity
        if len(layer.inputs) < low or (high is not None and len(layer.inputs) > high):
            expected = (
                f"{low}" if low == high else f"at least {low}" if high is None else f"{low}..{high}"
            )
            raise WorkloadError(
                f"{name}: layer '{layer.name}' ({layer.layer_kind}) takes {expected} input(s), "
                f"got {len(layer.inputs)}"
            )
        if len(set(layer.inputs)) != len(layer.inputs):
            raise WorkloadError(
                f"{name}: layer '{layer.name}' lists an input twice: {list(layer.inputs)}"
            )
        for source in layer.inputs:
            if source not in graph:
                raise WorkloadError(
                    f"{name}: layer '{layer.name}': input '{source}' is not a layer of the network"
                )
            graph.add_edge(source, layer.name)
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " → ".join(edge[0] for edge in nx.find_cycle(graph))
        raise WorkloadError(f"{name}: the graph has a cycle: {cycle}")
    unused = [
        layer.name
        for layer in layers
        if graph.out_degree(layer.name) == 0
        and layer.layer_kind is not LayerKind.SOFTMAX_CROSS_ENTROPY
    ]
    if unused:
        raise WorkloadError(
            f"{name}: layer '{unused[0]}' output is never used"
            + (f" (nor are {len(unused) - 1} more)" if len(unused) > 1 else "")
            + "; every path must end in a softmax_cross_entropy loss"
        )
    return graph


def _infer_shapes(
    ordered: tuple[Layer, ...], batch: int, image: tuple[int, int]
) -> dict[str, TensorShape]:
    shapes: dict[str, TensorShape] = {}
    for layer in ordered:
        if isinstance(layer, Input):
            shapes[layer.name] = TensorShape(batch, layer.channels, image[0], image[1])
        else:
            shapes[layer.name] = layer.infer_shape(tuple(shapes[source] for source in layer.inputs))
        elements = shapes[layer.name].num_elements()
        if elements > MAX_TENSOR_ELEMENTS:
            raise WorkloadError(
                f"layer '{layer.name}' ({layer.layer_kind.value}): its output "
                f"{shapes[layer.name]} has {elements:.3g} elements, more than bnsim can lay out "
                f"(2^{MAX_TENSOR_ELEMENTS.bit_length() - 1}); check its sizes, padding and batch"
            )
    return shapes


def _rebuilt(name: str, layers: tuple[Layer, ...], batch: int, image: tuple[int, int]) -> Network:
    return build_network(name, layers, batch=batch, image=image)


def rebuild(
    network: Network,
    *,
    batch: int | None = None,
    image: tuple[int, int] | int | None = None,
) -> Network:
    """The same network at another batch size and/or image size.

    Raises:
        WorkloadError: the new size does not fit a layer (e.g. an image too small for the pools).
    """
    return build_network(
        network.name,
        network.layers,
        batch=network.batch if batch is None else batch,
        image=network.image if image is None else image,
    )
