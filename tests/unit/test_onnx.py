"""ONNX files imported as workloads: graphs built with onnx.helper and PyTorch's own export, the
folded-BN and other refusals, and the round trip through a workload YAML file."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from bnsim.errors import WorkloadError
from bnsim.graph import load_workload, network_to_yaml
from bnsim.graph.summary import param_count, summarize

onnx = pytest.importorskip("onnx", reason="the ONNX import needs onnx (bnsim[onnx])")
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto


def weight(name: str, *shape: int) -> object:
    return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)


def save(
    tmp_path: Path, nodes: list, initializers: list, *, size: object = 8, name: str = "g"
) -> Path:  # type: ignore[type-arg]
    """A graph of `nodes` from input 'x' (N × 3 × size × size, N symbolic) to output 'logits'."""
    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])
    graph = helper.make_graph(nodes, name, [image], [logits], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def squeeze_excitation_nodes() -> tuple[list, list]:  # type: ignore[type-arg]
    """conv → BN → SiLU (as x·Sigmoid(x)) → squeeze-excitation → pool → flatten → Gemm."""
    nodes = [
        helper.make_node(
            "Conv", ["x", "w0"], ["c0"], name="conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        ),
        helper.make_node(
            "BatchNormalization",
            ["c0", "g0", "b0", "m0", "v0"],
            ["n0"],
            name="bn0",
            epsilon=1e-5,
            momentum=0.9,
        ),
        helper.make_node("Sigmoid", ["n0"], ["s0"], name="sig0"),
        helper.make_node("Mul", ["n0", "s0"], ["a0"], name="silu0"),
        helper.make_node("GlobalAveragePool", ["a0"], ["p0"], name="squeeze"),
        helper.make_node("Conv", ["p0", "w1", "bias1"], ["r0"], name="reduce", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["r0"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "bias2"], ["e0"], name="expand", kernel_shape=[1, 1]),
        helper.make_node("HardSigmoid", ["e0"], ["gate"], name="gate", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["a0", "gate"], ["scaled"], name="excite"),
        helper.make_node(
            "MaxPool", ["scaled"], ["mp"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("GlobalAveragePool", ["mp"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    initializers = [
        weight("w0", 16, 3, 3, 3),
        *(weight(n, 16) for n in ("g0", "b0", "m0", "v0")),
        weight("w1", 4, 16, 1, 1),
        weight("bias1", 4),
        weight("w2", 16, 4, 1, 1),
        weight("bias2", 16),
        weight("wf", 10, 16),
        weight("bf", 10),
    ]
    return nodes, initializers


def test_a_graph_built_with_onnx_helper_maps_node_by_node(tmp_path: Path) -> None:
    path = save(tmp_path, *squeeze_excitation_nodes())
    network = load_workload(path, batch=4)
    kinds = [(layer.name, layer.layer_kind.value) for layer in network.layers]
    assert kinds == [
        ("input", "input"),
        ("conv0", "conv2d"),
        ("bn0", "batchnorm2d"),
        ("silu0", "silu"),  # x · Sigmoid(x): one layer, the sigmoid taken in
        ("squeeze", "global_avgpool"),
        ("reduce", "conv2d"),
        ("relu1", "relu"),
        ("expand", "conv2d"),
        ("gate", "hardsigmoid"),
        ("excite", "mul"),
        ("pool", "maxpool"),
        ("gap", "global_avgpool"),
        ("flatten", "flatten"),
        ("fc", "linear"),
        ("loss", "softmax_cross_entropy"),
    ]
    assert network.layer("excite").inputs == ("silu0", "gate")
    bn = network.layer("bn0")
    assert (bn.eps, bn.momentum) == (1e-5, 0.1)  # type: ignore[union-attr]
    assert (network.batch, network.image) == (4, (8, 8))
    # 16·27 conv0 + 32 BN + 4·16+4 reduce + 16·4+16 expand + 10·16+10 fc
    assert param_count(network) == 432 + 32 + 68 + 80 + 170


def test_a_graph_with_bn_folded_is_refused(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="conv0", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c0"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["logits"], name="fc", transB=1),
    ]
    path = save(
        tmp_path, nodes, [weight("w0", 16, 3, 1, 1), weight("b0", 16), weight("wf", 10, 16)]
    )
    with pytest.raises(
        WorkloadError, match="has no BatchNormalization nodes: was it exported with BN folded"
    ):
        load_workload(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("gelu", r"node 'act' \(Gelu\): not supported; bnsim maps the operators Conv"),
        ("if", r"node 'branch' \(If\): control flow is not supported"),
        ("dynamic", r"input 'x' must be N × C × H × W with C, H and W fixed"),
        ("pads", r"node 'conv0' \(Conv\): only 2-D windows with equal pads on both sides"),
    ],
)
def test_what_bnsim_cannot_simulate_is_refused_by_node(
    tmp_path: Path, change: str, message: str
) -> None:
    nodes, initializers = squeeze_excitation_nodes()
    size: object = 8
    if change == "gelu":
        nodes[6] = helper.make_node("Gelu", ["r0"], ["r1"], name="act")
        nodes_opset = 20
    if change == "if":
        branch = helper.make_graph(
            [], "b", [], [helper.make_tensor_value_info("r0", TensorProto.FLOAT, None)]
        )
        nodes.insert(
            0,
            helper.make_node(
                "If", ["cond"], ["unused"], name="branch", then_branch=branch, else_branch=branch
            ),
        )
        initializers.append(numpy_helper.from_array(np.array(True), "cond"))
    if change == "dynamic":
        size = "H"
    if change == "pads":
        nodes[0] = helper.make_node(
            "Conv", ["x", "w0"], ["c0"], name="conv0", kernel_shape=[3, 3], pads=[1, 1, 0, 0]
        )
    path = save(tmp_path, nodes, initializers, size=size)
    if change == "gelu":  # Gelu is an opset-20 operator
        model = onnx.load(str(path))
        model.opset_import[0].version = nodes_opset
        onnx.save(model, str(path))
    with pytest.raises(WorkloadError, match=message) as raised:
        load_workload(path)
    assert "\n" not in str(raised.value)


def test_not_an_onnx_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00not a protobuf\xff" * 8)
    with pytest.raises(WorkloadError, match=r"broken\.onnx: not an ONNX model"):
        load_workload(path)
    with pytest.raises(WorkloadError, match=r"missing\.onnx: no such file"):
        load_workload(tmp_path / "missing.onnx")


def test_an_import_round_trips_through_a_workload_file(tmp_path: Path) -> None:
    network = load_workload(save(tmp_path, *squeeze_excitation_nodes()), batch=4)
    written = tmp_path / "imported.yaml"
    written.write_text(network_to_yaml(network))
    assert load_workload(written) == network


def test_bnsim_workloads_import_writes_the_yaml(tmp_path: Path) -> None:
    path = save(tmp_path, *squeeze_excitation_nodes())
    out = tmp_path / "g.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "bnsim", "workloads", "import", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert load_workload(out).layer("excite").layer_kind.value == "mul"
    bad = subprocess.run(
        [sys.executable, "-m", "bnsim", "workloads", "import", str(tmp_path / "none.onnx")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "none.onnx: no such file" in bad.stderr


def test_pytorchs_export_imports_as_torch_fx_sees_the_module(tmp_path: Path) -> None:
    """The same module through torch.onnx.export (training mode) and through torch.fx: the same
    layer kinds, parameters and multiply-accumulates."""
    torch = pytest.importorskip("torch")
    from test_fx import Small  # noqa: PLC0415 (a module of tests/unit)

    from bnsim.graph.fx import from_torch  # noqa: PLC0415

    module = Small().eval()
    path = tmp_path / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            torch.zeros(2, 3, 32, 32),
            str(path),
            dynamo=False,
            training=torch.onnx.TrainingMode.TRAINING,
            do_constant_folding=False,
        )
    imported = load_workload(path, batch=4)
    traced = from_torch(Small(), (3, 32, 32), batch=4)
    assert [layer.layer_kind for layer in imported.layers] == [
        layer.layer_kind for layer in traced.layers
    ]
    assert summarize(imported).params == summarize(traced).params
    assert summarize(imported).macs_per_sample == summarize(traced).macs_per_sample
