"""PyTorch modules imported through torch.fx: the layers they map to, the parameter count, the
same logits and gradients as PyTorch's own training step, and clear refusals."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bnsim.errors import WorkloadError
from bnsim.graph.fx import from_torch
from bnsim.graph.summary import param_count
from bnsim.kernels.network import reference_step
from bnsim.schemes import build_schedule
from bnsim.verify import check_schedule_against_reference, initial_values

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


def test_an_imported_network_trains_as_pytorch_trains_it() -> None:
    """The same weights and images: bnsim's reference training step gives PyTorch's logits,
    loss gradient and weight gradients (float64, training-mode BN, no dropout)."""
    torch.manual_seed(0)
    module = Small(dropout=0.0).double().train()
    network = from_torch(module, (3, 32, 32), batch=4)
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
    assert np.allclose(results["act:head"].reshape(logits.shape), logits.detach().numpy())
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


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "resnet50",
        "resnext50_32x4d",
        "wide_resnet50_2",
        "densenet121",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "regnet_y_400mf",
        "mnasnet1_0",
        "vgg16_bn",
    ],
)
def test_torchvision_models_import_with_their_parameter_count(name: str) -> None:
    """Runs where torchvision is installed (its CPU build); bnsim counts what PyTorch counts."""
    torchvision = pytest.importorskip("torchvision", reason="needs torchvision (its CPU build)")
    from bnsim.graph.fx import from_torchvision  # noqa: PLC0415

    module = torchvision.models.get_model(name, weights=None)
    network = from_torchvision(name, batch=2)
    assert param_count(network) == sum(p.numel() for p in module.parameters())
