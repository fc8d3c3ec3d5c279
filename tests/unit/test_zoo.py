"""The model zoo against torchvision: exact parameters, MACs within 1%, shapes, layer counts."""

from __future__ import annotations

import pytest

from bnsim.errors import WorkloadError
from bnsim.graph import LayerKind, build_network, summarize
from bnsim.graph.zoo import MODELS, build_layers, build_model, get_model

# sum(p.numel() for p in torchvision.models.<name>().parameters()), as listed in the foundation
# issue.
TORCHVISION_PARAMS = {
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "resnet50_v1": 25_557_032,  # same weights as v1.5; only the stride moves
    "inception_v3": 23_834_568,
    "vgg16_bn": 138_365_992,
    "mobilenet_v2": 3_504_872,
}
# torchvision's model table, "GFLOPS" column (which counts multiply-accumulates).
TORCHVISION_GMACS = {
    "densenet121": 2.83,
    "resnet50": 4.09,
    "inception_v3": 5.71,
    "vgg16_bn": 15.47,
    "mobilenet_v2": 0.30,
    "resnet18": 1.81,
    "resnet34": 3.66,
    "resnet101": 7.80,
    "resnet152": 11.51,
    "densenet161": 7.73,
    "densenet169": 3.36,
    "densenet201": 4.29,
}


@pytest.mark.parametrize(("name", "params"), TORCHVISION_PARAMS.items())
def test_parameter_count_equals_torchvision(name: str, params: int) -> None:
    assert summarize(build_model(name, batch=1)).params == params


def test_inception_aux_classifier_adds_torchvisions_aux_parameters() -> None:
    layers = build_layers("inception_v3", {"aux_logits": True}, 3)
    network = build_network("inception_v3_aux", layers, batch=1, image=299)
    assert summarize(network).params == 27_161_264
    losses = [layer.name for layer in network.layers_of_kind(LayerKind.SOFTMAX_CROSS_ENTROPY)]
    assert losses == ["AuxLogits.loss", "loss"]


@pytest.mark.parametrize(("name", "gmacs"), TORCHVISION_GMACS.items())
def test_macs_per_sample_match_torchvision_within_1_percent(name: str, gmacs: float) -> None:
    macs = summarize(build_model(name, batch=1)).macs_per_sample
    assert macs == pytest.approx(gmacs * 1e9, rel=0.01)


def test_macs_scale_with_batch_but_per_sample_figure_does_not() -> None:
    one, four = (summarize(build_model("resnet18", batch=batch)) for batch in (1, 4))
    assert one.macs_per_sample == four.macs_per_sample


def test_densenet121_block_outputs_follow_the_paper() -> None:
    network = build_model("densenet121", batch=2)
    shapes = [network.out_shape(f"features.denseblock{i}.cat") for i in range(1, 5)]
    assert [(s.c, s.h, s.w) for s in shapes] == [
        (256, 56, 56),
        (512, 28, 28),
        (1024, 14, 14),
        (1024, 7, 7),
    ]
    assert network.out_shape("features.transition1.pool").c == 128
    assert network.in_shapes("classifier")[0].c == 1024


def test_densenet121_layer_counts() -> None:
    counts = summarize(build_model("densenet121", batch=1)).layer_counts
    # 1 stem + 58 dense layers × 2 + 3 transitions = 120 convs; 1 fc; BN = 120 + norm5.
    assert (counts["conv2d"], counts["linear"], counts["batchnorm2d"]) == (120, 1, 121)
    # each block of L layers: L-1 concats feeding dense layers + 1 block output = 6+12+24+16
    assert counts["concat"] == 58


def test_resnet_shapes_and_strides() -> None:
    v15, v1 = build_model("resnet50", batch=1), build_model("resnet50_v1", batch=1)
    assert v15.out_shape("layer4.2.relu3") == v1.out_shape("layer4.2.relu3")
    assert (v15.out_shape("layer2.0.conv1").h, v1.out_shape("layer2.0.conv1").h) == (56, 28)
    assert v15.layer("layer2.0.conv2").stride == (2, 2)
    assert v1.layer("layer2.0.conv2").stride == (
        1,
        1,
    )
    assert summarize(v15).layer_counts["add"] == 16


def test_inception_v3_block_shapes() -> None:
    network = build_model("inception_v3", batch=1)
    expected = {
        "Mixed_5d.cat": (288, 35, 35),
        "Mixed_6e.cat": (768, 17, 17),
        "Mixed_7c.cat": (2048, 8, 8),
    }
    for name, chw in expected.items():
        shape = network.out_shape(name)
        assert (shape.c, shape.h, shape.w) == chw
    assert network.layer("Mixed_5b.branch1x1.bn").eps == 0.001


def test_mobilenet_v2_residuals_and_depthwise_convs() -> None:
    network = build_model("mobilenet_v2", batch=1)
    assert network.layer("features.2.conv.1.0").groups == 96  # 16 input channels × 6, depthwise
    assert network.out_shape("features.18.2").c == 1280
    assert sum(1 for _ in network.layers_of_kind(LayerKind.ADD)) == 10


def test_tiny_cnn_parameters_by_hand() -> None:
    network = build_model("tiny_cnn", batch=2)
    # convs: 8·3·9 + 8·8 + 4·8·9 + 8·12 + 12·8·9 = 1528; BNs: 2·(8+8+8+12+8+12) = 112; fc: 12·10+10
    # = 130
    assert summarize(network).params == 1528 + 112 + 130
    # stem conv: 2 samples × 8 × 16 × 16 outputs × 3·9 MACs each
    stem = network.layer("stem.conv")
    assert stem.macs(network.in_shapes("stem.conv"), network.out_shape("stem.conv")) == 110_592


def test_every_model_builds_at_a_small_batch() -> None:
    for name in MODELS:
        network = build_model(name, batch=1)
        assert network.layers[0].name == "input"
        assert any(network.layers_of_kind(LayerKind.SOFTMAX_CROSS_ENTROPY))


def test_unknown_model_lists_the_zoo_and_suggests() -> None:
    with pytest.raises(
        WorkloadError,
        match=r"unknown model 'densnet121' \(known: densenet121, .*\); "
        r"did you mean 'densenet121'\?",
    ):
        get_model("densnet121")


def test_image_too_small_is_a_workload_error_naming_the_layer() -> None:
    with pytest.raises(
        WorkloadError,
        match=r"densenet121 at 16×16 pixels: layer "
        r"'features.transition3.pool' \(avgpool\)",
    ):
        build_model("densenet121", batch=1, image=16)
