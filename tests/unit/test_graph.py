"""Graph checks and shape inference: hand-worked shapes; every rejection names the layer."""

from __future__ import annotations

import pytest

from bnsim.errors import WorkloadError
from bnsim.graph import TensorShape, build_network, rebuild
from bnsim.graph.layer import (
    Add,
    AvgPool2d,
    BatchNorm2d,
    Concat,
    Conv2d,
    Flatten,
    Input,
    Linear,
    MaxPool2d,
    ReLU,
    SoftmaxCrossEntropy,
)

X = TensorShape(2, 4, 9, 9)


def head(source: str) -> list:
    return [
        Flatten(name="flat", inputs=(source,)),
        Linear(name="fc", inputs=("flat",), out_features=3),
        SoftmaxCrossEntropy(name="loss", inputs=("fc",)),
    ]


def net(*layers, channels: int = 4, image: int = 9, batch: int = 2):
    return build_network(
        "t", [Input(name="input", channels=channels), *layers], batch=batch, image=image
    )


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        (Conv2d(name="c", inputs=("x",), out_channels=6, kernel=3), TensorShape(2, 6, 7, 7)),
        (
            Conv2d(name="c", inputs=("x",), out_channels=6, kernel=3, padding=1, stride=2),
            TensorShape(2, 6, 5, 5),
        ),
        (
            Conv2d(name="c", inputs=("x",), out_channels=6, kernel=3, dilation=2),
            TensorShape(2, 6, 5, 5),
        ),
        (
            Conv2d(name="c", inputs=("x",), out_channels=6, kernel=(1, 7), padding=(0, 3)),
            TensorShape(2, 6, 9, 9),
        ),
        (MaxPool2d(name="p", inputs=("x",), kernel=3, stride=2), TensorShape(2, 4, 4, 4)),
        (
            MaxPool2d(name="p", inputs=("x",), kernel=2, stride=2, ceil_mode=True),
            TensorShape(2, 4, 5, 5),
        ),
        (
            MaxPool2d(name="p", inputs=("x",), kernel=3, stride=2, padding=1),
            TensorShape(2, 4, 5, 5),
        ),
        (AvgPool2d(name="p", inputs=("x",), kernel=2), TensorShape(2, 4, 4, 4)),
        (BatchNorm2d(name="b", inputs=("x",)), X),
    ],
)
def test_shape_inference_follows_torch(layer, expected: TensorShape) -> None:
    assert layer.infer_shape((X,)) == expected


def test_ceil_mode_never_starts_a_window_in_the_right_padding() -> None:
    """torch's rule (aten pooling_shape.h): with ceil_mode, drop the last window if it would start
    at or beyond input + left padding. 2 wide, kernel 2, stride 3, padding 1: ceil((2+2-2)/3)+1 = 2
    windows, but the
    second would start at 2 = inside the right padding, so there is 1."""
    pool = MaxPool2d(name="p", inputs=("x",), kernel=2, stride=3, padding=1, ceil_mode=True)
    assert pool.infer_shape((TensorShape(1, 1, 2, 2),)).h == 1
    # 5 wide, kernel 2, stride 2, no padding: floor gives 2, ceil gives 3 (the last window is half
    # outside)
    assert (
        MaxPool2d(name="p", inputs=("x",), kernel=2, ceil_mode=True)
        .infer_shape((TensorShape(1, 1, 5, 5),))
        .h
        == 3
    )


def test_params_and_macs_by_hand() -> None:
    conv = Conv2d(name="c", inputs=("x",), out_channels=6, kernel=3, groups=2, bias=True)
    out = conv.infer_shape((X,))
    assert conv.param_count((X,)) == 6 * 2 * 9 + 6
    assert conv.macs((X,), out) == out.num_elements() * 2 * 9
    fc = Linear(name="fc", inputs=("f",), out_features=5)
    flat = TensorShape(2, 12, 1, 1)
    assert fc.param_count((flat,)) == 12 * 5 + 5
    assert fc.macs((flat,), fc.infer_shape((flat,))) == 2 * 12 * 5
    assert BatchNorm2d(name="b", inputs=("x",)).param_count((X,)) == 8


def test_a_valid_network_keeps_declaration_order_and_knows_consumers() -> None:
    network = net(
        ReLU(name="r", inputs=("input",)),
        BatchNorm2d(name="b", inputs=("input",)),
        Add(name="a", inputs=("r", "b")),
        *head("a"),
    )
    assert [layer.name for layer in network.layers] == [
        "input",
        "r",
        "b",
        "a",
        "flat",
        "fc",
        "loss",
    ]
    assert network.consumers("input") == ("r", "b")
    assert network.out_shape("flat") == TensorShape(2, 4 * 81, 1, 1)
    assert rebuild(network, batch=5).out_shape("a") == TensorShape(5, 4, 9, 9)


def test_out_of_order_declarations_are_sorted_topologically() -> None:
    layers = [Input(name="input", channels=1), *head("r"), ReLU(name="r", inputs=("input",))]
    network = build_network("t", layers, batch=1, image=2)
    assert [layer.name for layer in network.layers] == ["input", "r", "flat", "fc", "loss"]


def test_consumers_follow_declaration_order_where_the_topological_order_differs() -> None:
    # a reads m, which reads c: the topological order is input, c, m, a, but a is declared first
    network = net(
        Add(name="a", inputs=("input", "m")),
        ReLU(name="m", inputs=("c",)),
        ReLU(name="c", inputs=("input",)),
        *head("a"),
    )
    assert [layer.name for layer in network.layers][:4] == ["input", "c", "m", "a"]
    assert network.consumers("input") == ("a", "c")
    assert network.consumers("a") == ("flat",)
    assert network.consumers("loss") == ()


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (
            [ReLU(name="r", inputs=("nope",)), *head("r")],
            r"^t: layer 'r': input 'nope' is not a layer of the network$",
        ),
        (
            [ReLU(name="r", inputs=("input",)), ReLU(name="r", inputs=("input",)), *head("r")],
            r"^t: layer 'r' is defined twice$",
        ),
        (
            [ReLU(name="a", inputs=("b",)), ReLU(name="b", inputs=("a",)), *head("b")],
            r"^t: the graph has a cycle: a → b|^t: the graph has a cycle: b → a",
        ),
        (
            [ReLU(name="r", inputs=("input",)), ReLU(name="dead", inputs=("input",)), *head("r")],
            r"^t: layer 'dead' output is never used; every path must end in a "
            r"softmax_cross_entropy loss",
        ),
        ([ReLU(name="r", inputs=())], r"layer 'r' \(relu\) takes 1 input\(s\), got 0"),
        (
            [Add(name="a", inputs=("input",)), *head("a")],
            r"layer 'a' \(add\) takes at least 2 input",
        ),
        ([Add(name="a", inputs=("input", "input")), *head("a")], r"layer 'a' lists an input twice"),
        (
            [
                MaxPool2d(name="p", inputs=("input",), kernel=2),
                Add(name="a", inputs=("input", "p")),
                *head("a"),
            ],
            r"layer 'a' \(add\): inputs differ in shape: 'input' is 2×4×9×9, 'p' is 2×4×4×4",
        ),
        (
            [
                MaxPool2d(name="p", inputs=("input",), kernel=2),
                Concat(name="c", inputs=("input", "p")),
                *head("c"),
            ],
            r"layer 'c' \(concat\): inputs differ in spatial size",
        ),
        (
            [Conv2d(name="c", inputs=("input",), out_channels=2, kernel=11), *head("c")],
            r"layer 'c' \(conv2d\): kernel 11×11 \(dilation 1×1\) is larger than its padded "
            r"input 9×9",
        ),
        (
            [Conv2d(name="c", inputs=("input",), out_channels=2, kernel=1, groups=3), *head("c")],
            r"groups=3 must divide both input channels \(4\) and out_channels \(2\)",
        ),
        (
            [MaxPool2d(name="p", inputs=("input",), kernel=2, padding=2), *head("p")],
            r"layer 'p' \(maxpool\): padding 2×2 exceeds half the kernel 2×2",
        ),
        (
            [
                Linear(name="fc", inputs=("input",), out_features=2),
                SoftmaxCrossEntropy(name="l", inputs=("fc",)),
            ],
            r"layer 'fc' \(linear\): expects a flat input \(C×1×1\), got 4×9×9; "
            r"add a flatten layer",
        ),
        ([Input(name="x", channels=1), *head("x")], r"layer 'x': only one input layer is allowed"),
    ],
)
def test_bad_graphs_raise_workload_error_naming_the_layer(layers, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        net(*layers)


def test_first_layer_must_be_the_input() -> None:
    with pytest.raises(
        WorkloadError, match="the first layer must be the input layer named 'input'"
    ):
        build_network("t", [ReLU(name="r", inputs=("x",))], batch=1, image=4)


@pytest.mark.parametrize(
    ("batch", "image", "match"),
    [
        (0, 9, "batch must be a positive integer, got 0"),
        (True, 9, "batch must be a positive integer"),
        (1, -3, r"image size must be positive integers"),
    ],
)
def test_bad_batch_or_image(batch: int, image: int, match: str) -> None:
    with pytest.raises(WorkloadError, match=match):
        net(*head("input"), batch=batch, image=image)


def test_networks_compare_by_content() -> None:
    a = net(ReLU(name="r", inputs=("input",)), *head("r"))
    b = net(ReLU(name="r", inputs=("input",)), *head("r"))
    assert a == b
    assert hash(a) == hash(b)
    assert a != rebuild(a, batch=3)
