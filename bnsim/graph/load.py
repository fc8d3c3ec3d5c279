"""Load a workload (zoo name or YAML file) into a Network; write Networks as YAML, GraphML, DOT.

A workload file either names a zoo builder with its hyper-parameters or lists its layers;
docs/workloads.md describes the format. Exporting a network as YAML lists its layers, so any network
round-trips exactly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import networkx as nx
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from bnsim.config.datafile import describe_errors, read_yaml
from bnsim.errors import WorkloadError
from bnsim.graph.kinds import _Layer
from bnsim.graph.layer import LAYER_LIST_ADAPTER, Input, Layer, PositiveInt
from bnsim.graph.network import INPUT_NAME, MAX_LAYERS, Network, build_network
from bnsim.graph.pooling import _Pool
from bnsim.graph.zoo import BUILDERS, DEFAULT_BATCH, MODELS, build_layers, build_model, get_model

SCHEMA_VERSION = 1
YAML_SUFFIXES = (".yaml", ".yml")

MAX_FILE_BYTES = 1 << 20  # larger workload files get their layers counted before parsing


def _to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


class WorkloadFile(BaseModel):
    """The top level of a workload YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    batch: PositiveInt = DEFAULT_BATCH
    input: (
        Annotated[tuple[PositiveInt, PositiveInt, PositiveInt], BeforeValidator(_to_tuple)] | None
    ) = None
    zoo: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    layers: list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _zoo_xor_layers(self) -> WorkloadFile:
        if (self.zoo is None) == (self.layers is None):
            raise ValueError(
                "give either 'zoo' (a builder name) or 'layers' (a list), not both or neither"
            )
        if self.layers is not None and self.params:
            raise ValueError("'params' belongs to 'zoo' workloads; a 'layers' workload has none")
        if self.layers is not None and self.input is None:
            raise ValueError("'input: [channels, height, width]' is required with 'layers'")
        return self


def is_workload_path(spec: str) -> bool:
    """Whether `--workload spec` names a file rather than a zoo model."""
    return (
        spec.endswith(YAML_SUFFIXES)
        or "/" in spec
        or "\\" in spec
        or (spec not in MODELS and Path(spec).is_file())
    )


def load_workload(
    spec: str | Path, *, batch: int | None = None, image: int | tuple[int, int] | None = None
) -> Network:
    """A Network from a zoo model name, a workload YAML path, an ONNX file (`.onnx`) or a
    torchvision model (`torchvision:NAME`); `batch`/`image` override the file's.

    Raises:
        WorkloadError: unknown model, unreadable or invalid file, or a graph that does not check.

    >>> load_workload("densenet121", batch=8).out_shape("features.denseblock1.cat")
    TensorShape(n=8, c=256, h=56, w=56)
    """
    if str(spec).endswith(".onnx"):
        return _load_onnx(Path(spec), batch=batch, image=image)
    if str(spec).startswith(TORCHVISION):
        from bnsim.graph.fx import from_torchvision  # noqa: PLC0415 (torch loads on first use)

        name = str(spec).removeprefix(TORCHVISION)
        return from_torchvision(name, batch=DEFAULT_BATCH if batch is None else batch, image=image)
    if isinstance(spec, Path) or is_workload_path(spec):
        return load_workload_file(spec, batch=batch, image=image)
    get_model(spec)  # a clear error for unknown names
    return build_model(spec, batch=DEFAULT_BATCH if batch is None else batch, image=image)


TORCHVISION = "torchvision:"


def _load_onnx(path: Path, *, batch: int | None, image: int | tuple[int, int] | None) -> Network:
    """An ONNX model file (bnsim.graph.onnximport); its image size is the file's own."""
    from bnsim.graph.onnximport import from_onnx  # noqa: PLC0415 (onnx loads on first use)

    network = from_onnx(path, batch=batch)
    size = (image, image) if isinstance(image, int) else image
    if size is not None and tuple(size) != network.image:
        height, width = network.image
        raise WorkloadError(
            f"{path}: the graph's input is fixed at {height}×{width} pixels; export it at "
            f"{size[0]}×{size[1]} instead of passing --image"
        )
    return network


def load_workload_file(
    path: str | Path, *, batch: int | None = None, image: int | tuple[int, int] | None = None
) -> Network:
    """A Network from a workload YAML file.

    Raises:
        WorkloadError: naming the file and the key or layer at fault.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        # a quick look before the (slow) YAML parser: one 'kind:' per layer
        layers = path.read_bytes().count(b"kind:")
        if layers > MAX_LAYERS:
            raise WorkloadError(
                f"{path}: about {layers:,} layers, more than bnsim takes ({MAX_LAYERS:,}); the "
                "largest zoo networks have under 1,000"
            )
    return workload_from_dict(
        read_yaml(path, WorkloadError), source=str(path), batch=batch, image=image
    )


def workload_from_dict(
    raw: dict[str, Any],
    *,
    source: str = "<dict>",
    batch: int | None = None,
    image: int | tuple[int, int] | None = None,
) -> Network:
    """A Network from a parsed workload document.

    Raises:
        WorkloadError: naming `source` and the key or layer at fault.
    """
    try:
        spec = WorkloadFile.model_validate(raw)
    except ValidationError as err:
        raise _error(source, describe_errors(err, WorkloadFile)) from None
    if spec.zoo is not None:
        default_image = next((m.image for m in MODELS.values() if m.builder == spec.zoo), 224)
        channels, height, width = spec.input or (3, default_image, default_image)
        try:
            layers = build_layers(spec.zoo, spec.params, channels)
        except ValidationError as err:
            raise _error(
                source,
                [
                    f"params.{line}"
                    for line in describe_errors(err, BUILDERS[spec.zoo].params_model)
                ],
            ) from None
        except WorkloadError as err:
            raise WorkloadError(f"{source}: zoo: {err}") from None
    else:
        assert spec.input is not None
        assert spec.layers is not None
        channels, height, width = spec.input
        layers = [Input(name=INPUT_NAME, channels=channels), *_parse_layers(spec.layers, source)]
    try:
        return build_network(
            spec.name,
            layers,
            batch=spec.batch if batch is None else batch,
            image=(height, width) if image is None else image,
        )
    except WorkloadError as err:
        raise WorkloadError(f"{source}: {err}") from None


def _parse_layers(documents: list[dict[str, Any]], source: str) -> list[Layer]:
    for index, document in enumerate(documents):
        if isinstance(document, dict) and document.get("kind") == "input":
            raise WorkloadError(
                f"{source}: layers[{index}]: the input layer is implicit (named '{INPUT_NAME}'); "
                "give its shape with 'input: [channels, height, width]'"
            )
    try:
        return LAYER_LIST_ADAPTER.validate_python(documents)
    except ValidationError as err:
        names: dict[tuple[int | str, ...], str] = {}
        for index, document in enumerate(documents):
            label = f"layers[{index}]"
            if isinstance(document, dict) and isinstance(document.get("name"), str):
                label += f" '{document['name']}'"
            names[(index,)] = label
            if isinstance(document, dict) and isinstance(document.get("kind"), str):
                names[(index, document["kind"])] = label  # pydantic adds the union tag to the path
        raise _error(source, describe_errors(err, None, names)) from None


def _error(source: str, lines: list[str]) -> WorkloadError:
    count = f"{len(lines)} errors: " if len(lines) > 1 else ""
    return WorkloadError(f"{source}: {count}{'; '.join(lines)}")


def network_to_dict(network: Network, *, description: str = "") -> dict[str, Any]:
    """The explicit-layers workload document of `network` (`workload_from_dict` rebuilds it)."""
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "name": network.name}
    if description:
        document["description"] = description
    input_shape = network.out_shape(INPUT_NAME)
    document["batch"] = network.batch
    document["input"] = [input_shape.c, input_shape.h, input_shape.w]
    document["layers"] = [
        layer_to_dict(layer) for layer in network.layers if not isinstance(layer, Input)
    ]
    return document


class _FlowListDumper(yaml.SafeDumper):
    """Writes each layer as one flow-style line, so a 300-layer network stays readable."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items())


_FlowListDumper.add_representer(dict, _represent_dict)


def network_to_yaml(network: Network, *, description: str = "") -> str:
    """YAML text of `network` with one line per layer."""
    document = network_to_dict(network, description=description)
    layers = document.pop("layers")
    head = yaml.dump(document, Dumper=_FlowListDumper, sort_keys=False, default_flow_style=None)
    lines = [
        yaml.dump(
            layer, Dumper=_FlowListDumper, sort_keys=False, default_flow_style=True, width=10**6
        ).strip()
        for layer in layers
    ]
    return head + "layers:\n" + "".join(f"  - {line}\n" for line in lines)


def network_to_graph(network: Network) -> nx.DiGraph[str]:
    """A plain DiGraph with string/number node attributes (kind, shape, params) for GraphML."""
    graph: nx.DiGraph[str] = nx.DiGraph(name=network.name, batch=network.batch)
    for layer in network.layers:
        attrs = layer_to_dict(layer)
        attrs.pop("name")
        attrs.pop("inputs", None)
        kind = attrs.pop("kind")
        shape = network.out_shape(layer.name)
        graph.add_node(
            layer.name,
            kind=kind,
            category=layer.layer_kind.category,
            shape=str(shape),
            params=layer.param_count(network.in_shapes(layer.name)),
            attrs=json.dumps(attrs, sort_keys=True),
        )
        for source in layer.inputs:
            graph.add_edge(source, layer.name)
    return graph


def network_to_graphml(network: Network) -> str:
    """GraphML text of `network` (loads in networkx, Gephi, yEd)."""
    buffer = io.BytesIO()
    nx.write_graphml(network_to_graph(network), buffer)
    return buffer.getvalue().decode("utf-8")


def network_to_dot(network: Network) -> str:
    """Graphviz DOT text of `network`, one box per layer labelled with its kind and output shape."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    lines = [f'digraph "{escape(network.name)}" {{', "  node [shape=box, fontsize=10];"]
    for layer in network.layers:
        kind_and_shape = f"{layer.layer_kind.value} {network.out_shape(layer.name)}"
        lines.append(
            f'  "{escape(layer.name)}" [label="{escape(layer.name)}\\n{escape(kind_and_shape)}"];'
        )
    lines.extend(
        f'  "{escape(source)}" -> "{escape(layer.name)}";'
        for layer in network.layers
        for source in layer.inputs
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def layer_to_dict(layer: _Layer) -> dict[str, Any]:
    """The workload-YAML form of a layer: name, kind, inputs, then non-default attributes.

    >>> from bnsim.graph.layer import Conv2d
    >>> layer_to_dict(Conv2d(name="c1", inputs=("x",), out_channels=64, kernel=7, stride=2))
    {'name': 'c1', 'kind': 'conv2d', 'inputs': ['x'], 'out_channels': 64, 'kernel': 7, 'stride': 2}
    """
    attrs = layer.model_dump(exclude_defaults=True, exclude={"name", "kind", "inputs"})
    if isinstance(layer, _Pool) and layer.stride == layer.kernel:
        attrs.pop("stride", None)
    for key, value in attrs.items():
        if isinstance(value, tuple):
            attrs[key] = value[0] if len(set(value)) == 1 else list(value)
    document: dict[str, Any] = {"name": layer.name, "kind": layer.layer_kind.value}
    if layer.inputs:
        document["inputs"] = list(layer.inputs)
    return {**document, **attrs}
