"""PyTorch modules imported through torch.fx: the layers they map to, the parameter count, the
same logits and gradients as PyTorch's own training step, and clear refusals."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bnsim.errors import WorkloadError
from bnsim.graph.fx import from_torch
from bnsim.graph.summary import param_count
from bnsim.schemes import build_schedule
from bnsim.verify import check_schedule_against_reference, initial_values
from bnsim.verify.network import reference_step

torch = pytest.importorskip("torch", reason="the torch.fx import needs torch (bnsim[torch])")
nn = torch.nn
F = torch.nn.functional


class Residual(nn.Module):
    """torchvision's BasicBlock: two 3×3 conv-BN pairs, `out += identity`, in-place ReLUs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation: pool, 1×1 conv, SiLU, 1×1 conv, sigmoid, scale."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.activation = nn.SiLU()
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x):  # type: ignore[no-untyped-def]
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale) * x


class Small(nn.Module):
    """Every supported kind once: a stem, a residual block, squeeze-excitation, max pooling, a
    depthwise conv with hard-swish, a concatenation with a functional hard-sigmoid, a mean over the
    pixels, a view to (batch, features), dropout and a linear head."""

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.SiLU(inplace=True),
        )
        self.block = Residual(16)
        self.se = SqueezeExcitation(16, 4)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.hs = nn.Hardswish()
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(32, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.pool(self.se(self.block(self.stem(x))))
        y = self.hs(self.bn(self.dw(x)))
        x = torch.cat([x, F.hardsigmoid(y)], 1)
        x = x.mean((2, 3), keepdim=True)
        x = x.view(x.size(0), -1)
        return self.head(self.drop(x))


def stochastic_depth(input, p: float, mode: str, training: bool = True):  # type: ignore[no-untyped-def]
    """torchvision.ops.stochastic_depth as torchvision defines it, under its qualified name."""
    if not training or p == 0.0:
        return input
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype).bernoulli_(1 - p)
    return input * noise.div_(1 - p)


stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
torch.fx.wrap("stochastic_depth")


class Functional(nn.Module):
    """What torchvision's models call as functions: a concatenation of one tensor (DenseNet),
    F.max_pool2d and F.avg_pool2d (Inception-v3), stochastic depth (EfficientNet) and a mean over
    the pixels that drops them (MnasNet)."""

    def __init__(self, mode: str = "row") -> None:
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = torch.cat([F.max_pool2d(self.conv(x), 3, stride=2, ceil_mode=True)], 1)
        y = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        x = x + stochastic_depth(self.bn(y), 0.25, self.mode, self.training)
        return self.head(x.mean([2, 3]))


class ShuffleBlock(nn.Module):
    """ShuffleNet-v2's unit with stride 1, as torchvision writes it: split the channels in two,
    convolve one half, concatenate, shuffle the channels in two groups."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        half = channels // 2
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, groups=half, bias=False),
            nn.BatchNorm2d(half),
        )
        self.head = nn.Linear(channels, 10)

    def forward(self, x):  # type: ignore[no-untyped-def]
        x1, x2 = self.stem(x).chunk(2, dim=1)
        x = torch.cat((x1, self.branch(x2)), dim=1)
        n, c, h, w = x.size()
        x = torch.transpose(x.view(n, 2, c // 2, h, w), 1, 2).contiguous().view(n, c, h, w)
        return self.head(x.mean([2, 3]))


def test_shufflenets_split_and_shuffle_map_to_layers_and_train_as_pytorch() -> None:
    network = from_torch(ShuffleBlock(), (3, 8, 8), batch=4)
    layers = {layer.name: layer for layer in network.layers}
    assert [
        layers[name].model_dump(include={"kind", "chunks", "index"})
        for name in ("getitem", "getitem_1")
    ] == [
        {"kind": "chunk", "chunks": 2, "index": 0},
        {"kind": "chunk", "chunks": 2, "index": 1},
    ]
    assert layers["transpose"].model_dump(include={"kind", "groups", "inputs"}) == {
        "kind": "channel_shuffle",
        "groups": 2,
        "inputs": ("cat",),
    }
    assert layers["mean"].inputs == ("transpose",)  # both views and contiguous pass it on
    torch.manual_seed(0)
    module = ShuffleBlock().double().train()
    logits, results = train_both(module, (3, 8, 8))
    assert np.allclose(results["act:head"].reshape(logits.shape), logits)
    for name in ("stem", "branch.0", "branch.3", "head"):
        expected = dict(module.named_parameters())[f"{name}.weight"].grad.numpy()
        assert np.allclose(results[f"dw:{name}"].reshape(expected.shape), expected), name


class Reshaped(nn.Module):
    def forward(self, x):  # type: ignore[no-untyped-def]
        n, c, h, w = x.size()
        x = x.view(n, c, h * w, 1)
        return torch.flatten(x, 1)


def test_torchvisions_functions_map_to_layers() -> None:
    network = from_torch(Functional(), (3, 17, 17), batch=4, name="functional")
    layers = {layer.name: layer for layer in network.layers}
    assert layers["cat"].layer_kind.value == "concat"
    assert layers["cat"].inputs == ("max_pool2d",)
    assert layers["max_pool2d"].model_dump(include={"kernel", "stride", "ceil_mode"}) == {
        "kernel": (3, 3),
        "stride": (2, 2),
        "ceil_mode": True,
    }
    assert network.out_shape("max_pool2d").h == 8  # ceil((17 - 3) / 2) + 1
    pool = layers["avg_pool2d"].model_dump(include={"stride", "padding", "count_include_pad"})
    assert pool == {"stride": (1, 1), "padding": (1, 1), "count_include_pad": False}
    assert (layers["stochastic_depth"].layer_kind.value, layers["stochastic_depth"].p) == (
        "stochastic_depth",
        0.25,
    )
    assert layers["mean"].layer_kind.value == "global_avgpool"
    assert layers["head"].inputs == ("mean",)
    for scheme in ("baseline", "bnff", "recompute"):
        report = check_schedule_against_reference(build_schedule(network, scheme), seed=0)
        assert report.passed, (scheme, report.worst)
    with pytest.raises(WorkloadError, match=r"node 'stochastic_depth' .*only stochastic depth by "):
        from_torch(Functional(mode="batch"), (3, 17, 17), batch=4, name="functional")


def test_modules_functions_and_methods_map_to_layers() -> None:
    module = Small()
    network = from_torch(module, (3, 32, 32), batch=4, name="small")
    kinds = {layer.name: layer.layer_kind.value for layer in network.layers}
    assert kinds["stem.0"] == "conv2d"
    assert kinds["stem.2"] == "silu"
    assert kinds["add"] == "add"
    assert kinds["block.relu_1"] == "relu"  # one ReLU module called twice: two layers
    assert kinds["se.avgpool"] == "global_avgpool"
    assert kinds["mul"] == "mul"
    assert network.layer("mul").inputs == ("block.relu_1", "se.scale_activation")  # map, scale
    assert kinds["hardsigmoid"] == "hardsigmoid"
    assert network.layer("cat").inputs == ("pool", "hardsigmoid")
    assert (kinds["mean"], kinds["view"], kinds["drop"]) == ("global_avgpool", "flatten", "dropout")
    assert network.layer("loss").inputs == ("head",)
    assert network.layer("dw").groups == 16  # type: ignore[union-attr]
    assert param_count(network) == sum(p.numel() for p in module.parameters())
    assert module.training  # shape propagation ran in evaluation mode and restored it


def train_both(module, input_shape: tuple[int, int, int]):  # type: ignore[no-untyped-def]
    """One training step of `module` (float64, training mode) in PyTorch and in bnsim's reference
    from the same weights and images: PyTorch's logits, and bnsim's results."""
    network = from_torch(module, input_shape, batch=4)
    schedule = build_schedule(network, "baseline")
    values = initial_values(schedule, seed=0)
    state = module.state_dict()
    for name in (layer.name for layer in network.layers):
        for prefix, key in (("w", "weight"), ("b", "bias"), ("gamma", "weight"), ("beta", "bias")):
            if f"{prefix}:{name}" in values and f"{name}.{key}" in state:
                values[f"{prefix}:{name}"] = state[f"{name}.{key}"].numpy().copy()
    images = values["act:input"]
    labels = values["labels"]
    logits = module(torch.from_numpy(images))
    F.cross_entropy(logits, torch.from_numpy(labels)).backward()
    results = reference_step(
        network,
        {k: v for k, v in values.items() if k not in ("act:input", "labels")},
        {"act:input": images, "labels": labels},
    )
    return logits.detach().numpy(), results


def test_an_imported_network_trains_as_pytorch_trains_it() -> None:
    """The same weights and images: bnsim's reference training step gives PyTorch's logits,
    loss gradient and weight gradients (float64, training-mode BN, no dropout)."""
    torch.manual_seed(0)
    module = Small(dropout=0.0).double().train()
    logits, results = train_both(module, (3, 32, 32))
    assert np.allclose(results["act:head"].reshape(logits.shape), logits)
    for name in ("stem.0", "block.conv2", "se.fc1", "dw", "head"):
        expected = dict(module.named_parameters())[f"{name}.weight"].grad.numpy()
        assert np.allclose(results[f"dw:{name}"].reshape(expected.shape), expected), name
    assert np.allclose(results["dgamma:bn"], module.bn.weight.grad.numpy())


@pytest.mark.parametrize("scheme", ["baseline", "bnff", "recompute"])
def test_an_imported_network_verifies_under_the_schemes(scheme: str) -> None:
    network = from_torch(Small(), (3, 32, 32), batch=4)
    report = check_schedule_against_reference(build_schedule(network, scheme), seed=0)
    assert report.passed, report.worst


class Unsupported(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.act = nn.GELU()
        self.head = nn.Linear(8, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.act(self.conv(x)), 1), 1))


class TwoOutputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)

    def forward(self, x):  # type: ignore[no-untyped-def]
        flat = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.head(flat), flat


class Branching(nn.Module):
    def forward(self, x):  # type: ignore[no-untyped-def]
        return x if x.sum() > 0 else -x


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (Unsupported(), r"^unsupported: module 'act' \(GELU\): not supported; bnsim maps modules"),
        (TwoOutputs(), r"^twooutputs: the module returns tuple, not one tensor of logits"),
        (Branching(), r"^branching: torch\.fx cannot trace the module: "),
        (
            Reshaped(),
            r"^reshaped: node 'view' \(Tensor\.view\): a view to \(1, 3, 256, 1\) is not "
            r"supported; bnsim maps views that flatten to \(batch, features\) and ShuffleNet's",
        ),
    ],
)
def test_what_cannot_be_imported_is_refused_in_one_line(module, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WorkloadError, match=message) as raised:
        from_torch(module, (3, 16, 16), batch=2)
    assert "\n" not in str(raised.value)


def test_a_bad_input_shape_is_refused() -> None:
    with pytest.raises(WorkloadError, match=r"input_shape must be \(channels, height, width\)"):
        from_torch(Small(), (32, 32), batch=2)
    with pytest.raises(WorkloadError, match=r"does not run on a \(1, 32, 32\) input"):
        from_torch(Small(), (1, 32, 32), batch=2)


class FakeModels:
    """torchvision.models as from_torchvision uses it, serving test modules."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []

    def get_model(self, name: str, weights: object = None, **options: object) -> object:
        self.calls.append((name, {"weights": weights, **options}))
        if name not in ("small", "inception_v3"):
            raise ValueError(f"Unknown model {name}")
        return Small()


def test_torchvision_models_load_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--workload torchvision:NAME`: the model without weights (Inception-v3 without its
    auxiliary classifier, at 299 pixels), imported through torch.fx."""
    import types  # noqa: PLC0415

    from bnsim.graph import load_workload  # noqa: PLC0415

    fake = types.ModuleType("torchvision")
    fake.models = FakeModels()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    network = load_workload("torchvision:small", batch=4, image=32)
    assert (network.name, network.batch, network.image) == ("small", 4, (32, 32))
    assert param_count(network) == sum(p.numel() for p in Small().parameters())
    inception = load_workload("torchvision:inception_v3", batch=2)
    assert inception.image == (299, 299)
    assert fake.models.calls[-1] == ("inception_v3", {"weights": None, "aux_logits": False})  # type: ignore[attr-defined]
    with pytest.raises(WorkloadError, match=r"torchvision:nope: torchvision has no model 'nope'"):
        load_workload("torchvision:nope")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # not installed
    with pytest.raises(WorkloadError, match=r"torchvision:small: needs torchvision: pip install"):
        load_workload("torchvision:small")


# torchvision 0.29's classification models with BatchNorm2d layers, all but MaxViT (attention)
TORCHVISION_MODELS = (
    *("densenet121", "densenet161", "densenet169", "densenet201"),
    *(f"efficientnet_b{index}" for index in range(8)),
    *("efficientnet_v2_s", "efficientnet_v2_m", "efficientnet_v2_l"),
    *("googlenet", "inception_v3"),
    *("mnasnet0_5", "mnasnet0_75", "mnasnet1_0", "mnasnet1_3"),
    *("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"),
    *(f"regnet_x_{size}" for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    *(
        f"regnet_y_{size}"
        for size in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")
    ),
    *("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
    *("resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d"),
    *(f"shufflenet_v2_x{size}" for size in ("0_5", "1_0", "1_5", "2_0")),
    *("wide_resnet50_2", "wide_resnet101_2"),
    *("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"),
)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_models_import_as_torchvision_counts_them_and_verify(name: str) -> None:
    """Parameters as PyTorch counts them, MACs as torchvision publishes them for the model's
    weights (at their image size; read from the weights' metadata, nothing downloaded), and every
    scheme verified on the down-scaled import."""
    torchvision = pytest.importorskip("torchvision", reason="needs torchvision (bnsim[test])")
    from bnsim.graph.fx import WITHOUT_AUX, from_torchvision  # noqa: PLC0415
    from bnsim.graph.summary import summarize  # noqa: PLC0415
    from bnsim.verify import verify  # noqa: PLC0415

    module = torchvision.models.get_model(name, weights=None, **WITHOUT_AUX.get(name, {}))
    network = from_torchvision(name, batch=1)
    assert param_count(network) == sum(p.numel() for p in module.parameters())
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    assert round(summarize(network).macs_per_sample / 1e9, 3) == published
    for scheme in ("baseline", "fission", "bnff", "recompute", "sampling"):
        report = verify(network, scheme)
        assert report.passed, (scheme, report.worst)


def test_maxvit_is_refused_by_node() -> None:
    pytest.importorskip("torchvision", reason="needs torchvision (bnsim[test])")
    from bnsim.graph.fx import from_torchvision  # noqa: PLC0415

    with pytest.raises(WorkloadError, match=r"^maxvit_t: module 'stem\.0\.2' \(GELU\)"):
        from_torchvision("maxvit_t", batch=1)
