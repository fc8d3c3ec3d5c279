"""Workload YAML: bundled files match the zoo, networks round-trip, bad files name the layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import yaml

from bnsim.errors import WorkloadError
from bnsim.graph import load_workload, network_to_dict, network_to_yaml
from bnsim.graph.load import network_to_dot, network_to_graphml, workload_from_dict
from bnsim.graph.zoo import MODELS, build_model

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


@pytest.mark.parametrize("name", list(MODELS))
def test_bundled_file_equals_zoo_model(name: str) -> None:
    assert load_workload(WORKLOADS / f"{name}.yaml") == build_model(name)


@pytest.mark.parametrize(
    "name", ["densenet121", "resnet50", "inception_v3", "vgg16_bn", "mobilenet_v2", "tiny_cnn"]
)
def test_zoo_to_yaml_to_network_is_identical(name: str, tmp_path: Path) -> None:
    network = build_model(name, batch=4)
    path = tmp_path / f"{name}.yaml"
    path.write_text(network_to_yaml(network))
    loaded = load_workload(path)
    assert loaded == network
    assert dict(loaded.shapes) == dict(network.shapes)


def test_custom_network_loads_with_overrides() -> None:
    path = WORKLOADS / "custom_resnet_cifar.yaml"
    network = load_workload(path, batch=8, image=64)
    assert (network.batch, network.image) == (8, (64, 64))
    assert network.out_shape("merge.cat").c == 64 + 32
    assert load_workload(str(path)).batch == 64


def test_a_path_with_a_zoo_name_is_still_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkloadError, match=r"densenet121\.yaml: no such file"):
        load_workload("densenet121.yaml")


def base_document() -> dict[str, Any]:
    return network_to_dict(build_model("tiny_cnn", batch=2))


def layer(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in document["layers"] if item["name"] == name)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: layer(d, "stem.bn").update(kind="batchnorm3d"),
            r"layers\[1\] 'stem.bn': unknown kind 'batchnorm3d' \(did you mean 'batchnorm2d'\?",
        ),
        (
            lambda d: layer(d, "stem.conv").update(kernal=3),
            r"layers\[0\] 'stem.conv'.kernal: unknown key",
        ),
        (
            lambda d: layer(d, "stem.conv").update(out_channels="8"),
            r"layers\[0\] 'stem.conv'.out_channels: input should be a valid integer, got '8'",
        ),
        (
            lambda d: layer(d, "stem.conv").update(out_channels=0),
            r"layers\[0\] 'stem.conv'.out_channels: input should be greater than 0",
        ),
        (
            lambda d: layer(d, "stem.conv").update(kernel=[3, 3, 3]),
            r"'stem.conv'.kernel: .*at most 2 items",
        ),
        (
            lambda d: layer(d, "stem.bn").update(inputs=["stem.cnv"]),
            r"layer 'stem.bn': input 'stem.cnv' is not a layer of the network",
        ),
        (lambda d: layer(d, "stem.bn").update(inputs=["res.relu2"]), r"the graph has a cycle"),
        (
            lambda d: layer(d, "res.add").update(inputs=["res.bn2", "dense.conv1"]),
            r"layer 'res.add' \(add\): inputs differ in shape",
        ),
        (
            lambda d: layer(d, "dense.cat").update(inputs=["stem.relu", "dense.conv2"]),
            r"layer 'dense.cat' \(concat\): inputs differ in spatial size",
        ),
        (lambda d: layer(d, "res.conv2").update(groups=5), r"groups=5 must divide both"),
        (
            lambda d: layer(d, "stem.conv").update(kernel=40),
            r"kernel 40×40 .* larger than its padded input",
        ),
        (
            lambda d: d["layers"].append(dict(layer(d, "stem.bn"))),
            r"layer 'stem.bn' is defined twice",
        ),
        (
            lambda d: d["layers"].insert(0, {"name": "input", "kind": "input", "channels": 3}),
            r"layers\[0\]: the input layer is implicit",
        ),
        (lambda d: d.update(batch=0), r"batch: input should be greater than 0, got 0"),
        (
            lambda d: d.update(input=[3, -16, 16]),
            r"input\[1\]: input should be greater than 0, got -16",
        ),
        (lambda d: d.update(zoo="tiny_cnn"), r"give either 'zoo' \(a builder name\) or 'layers'"),
        (
            lambda d: d.pop("input"),
            r"'input: \[channels, height, width\]' is required with 'layers'",
        ),
        (lambda d: d.update(schema_version=3), r"schema_version: input should be 1"),
        (lambda d: d.update(layers="conv"), r"layers: input should be a valid list"),
        (lambda d: d.update(layerz=[]), r"layerz: unknown key \(did you mean 'layers'\?"),
    ],
)
def test_bad_workload_documents_name_file_and_layer(mutate, match: str) -> None:
    document = base_document()
    mutate(document)
    with pytest.raises(WorkloadError, match="^bad.yaml: .*" + match):
        workload_from_dict(document, source="bad.yaml")


@pytest.mark.parametrize(
    ("document", "match"),
    [
        (
            {"schema_version": 1, "name": "x", "zoo": "densenett"},
            r"zoo: unknown zoo builder 'densenett' .*did you mean 'densenet'\?",
        ),
        (
            {"schema_version": 1, "name": "x", "zoo": "densenet", "params": {"growth": 12}},
            r"params.growth: unknown key \(did you mean 'growth_rate'\?",
        ),
        (
            {
                "schema_version": 1,
                "name": "x",
                "zoo": "densenet",
                "params": {"block_config": [6, 0]},
            },
            r"params.block_config\[1\]: input should be greater than 0",
        ),
        (
            {"schema_version": 1, "name": "x", "zoo": "resnet", "params": {"block": "wide"}},
            r"params.block: input should be 'basic' or 'bottleneck'",
        ),
    ],
)
def test_bad_zoo_documents(document: dict[str, Any], match: str) -> None:
    with pytest.raises(WorkloadError, match="^bad.yaml: " + match):
        workload_from_dict(document, source="bad.yaml")


def test_zoo_document_with_custom_hyper_parameters() -> None:
    document = {
        "schema_version": 1,
        "name": "densenet_k12",
        "zoo": "densenet",
        "batch": 4,
        "input": [3, 32, 32],
        "params": {
            "growth_rate": 12,
            "block_config": [2, 2],
            "num_init_features": 24,
            "num_classes": 10,
        },
    }
    network = workload_from_dict(document)
    assert network.out_shape("features.denseblock2.cat").c == (24 + 24) // 2 + 24


def test_graphml_and_dot_exports_carry_every_layer_and_edge(tmp_path: Path) -> None:
    network = build_model("tiny_cnn", batch=2)
    path = tmp_path / "tiny.graphml"
    path.write_text(network_to_graphml(network))
    graph = nx.read_graphml(path)
    assert set(graph.nodes) == {layer.name for layer in network.layers}
    assert graph.number_of_edges() == sum(len(layer.inputs) for layer in network.layers)
    assert graph.nodes["res.add"]["kind"] == "add"
    assert graph.nodes["fc"]["params"] == 130
    dot = network_to_dot(network)
    assert dot.count(" -> ") == graph.number_of_edges()
    assert '"stem.conv" [label="stem.conv\\nconv2d 2×8×16×16"];' in dot


def test_exported_yaml_is_one_line_per_layer() -> None:
    text = network_to_yaml(build_model("tiny_cnn", batch=2))
    layer_lines = [line for line in text.splitlines() if line.startswith("  - {")]
    assert len(layer_lines) == len(build_model("tiny_cnn").layers) - 1
    assert yaml.safe_load(text)["layers"][0] == {
        "name": "stem.conv",
        "kind": "conv2d",
        "inputs": ["input"],
        "out_channels": 8,
        "kernel": 3,
        "padding": 1,
    }
