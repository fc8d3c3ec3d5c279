"""PyTorch training iterations on this machine, timed, beside what bnsim predicts (not a test).

Run: python benchmarks/realcpu.py [--networks resnet50,densenet121] [--batches 8,16,32]
                                  [--iterations 5] [--hw FILE] [--json FILE]
Needs torch (`pip install 'bnsim[torch]'`). Each network is bnsim's own (bnsim.graph.zoo), built as
a torch module layer for layer, so that both sides run the same network; it trains as PyTorch runs
torchvision's models: every ReLU in place where only it reads its input (`nn.ReLU(inplace=True)`),
residual sums in place (`out += identity`), a concatenation per DenseNet layer, SGD with momentum,
FP32, NCHW, all the machine's cores. Per network and batch: two warm-up iterations, then the median
of `--iterations` timed ones, then one iteration under torch.profiler, whose per-op CPU times give
the share of batch norm, ReLU and concatenation (forward and backward) in the iteration.

glibc hands large allocations to mmap and adapts the threshold as memory is freed, so that the same
iteration can page-fault fresh memory or reuse the heap depending on history; bnsim models no page
faults. The script turns mmap off (MALLOC_MMAP_MAX_=0: every buffer comes from the heap) and never
gives freed heap memory back (MALLOC_TRIM_THRESHOLD_), re-running itself with them set if they are
not, and prints them with the results. (Fixing the threshold at glibc's largest, 32 MiB, as an
earlier version did, leaves every buffer above 32 MiB page-faulting afresh on each call: ResNet-50's
iteration at batch 16 took 3.13 s so, 2.91 s without mmap, docs/validation.md.)

A child process trains the same network once more with oneDNN's verbose log on for its last
iteration, and the script sums oneDNN's own times of the primitives it ran: convolutions by pass,
and the layout copies (reorders) of activations and of weights around them, which the profiler
counts as part of the convolutions.

With `--hw FILE`, bnsim predicts the same iteration on that machine (fast fidelity, baseline with
in-place ReLU and add, the machine's layout copies) and the script prints both, the primitives'
times beside bnsim's kernels of the same kind. `--channels-last` trains in PyTorch's channels-last
format; its prediction needs a config whose activations are NHWC (hwconfigs/zen4-2c-nhwc.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# glibc's allocator: no buffer mapped afresh (and page-faulted) per call, freed memory kept
MALLOC_SETTINGS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
BN_OPS = ("batch_norm",)  # aten::batch_norm, native_batch_norm(_backward), ...
RELU_OPS = ("relu", "threshold_backward", "clamp_min")
CONCAT_OPS = ("aten::cat",)
# what oneDNN's primitives do, and the bnsim kernels that do the same
PRIMITIVE_KINDS = (
    "conv forward", "conv backward data", "conv backward weight", "reorder activations",
    "reorder weights", "other",
)  # fmt: skip
PREDICTED_KINDS = {"conv_fwd": "conv forward", "conv_bwd_data": "conv backward data",
                   "conv_bwd_weight": "conv backward weight"}  # fmt: skip

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 (PyTorch's own spelling)
    from torch import nn
except ImportError:
    print("realcpu: needs torch: pip install 'bnsim[torch]'", file=sys.stderr)
    sys.exit(2)

from bnsim.graph import Network, summarize  # noqa: E402 (after the torch check)
from bnsim.graph.zoo import build_model  # noqa: E402


class BnsimNetwork(nn.Module):
    """A bnsim network as a torch module: its layers in order, each output kept by name."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network
        self.blocks = nn.ModuleDict()
        for layer in network.layers:
            module = _module(network, layer)
            if module is not None:
                self.blocks[_key(layer.name)] = module

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        outputs: dict[str, torch.Tensor] = {}
        loss = images.new_zeros(())
        for layer in self.network.layers:
            inputs = [outputs[name] for name in layer.inputs]
            kind = layer.kind
            if kind == "input":
                outputs[layer.name] = images
            elif kind == "concat":
                outputs[layer.name] = torch.cat(inputs, 1)
            elif kind == "add":
                # torchvision: `out += identity` on the branch only the add reads
                total = inputs[0] if self._only_reader(layer.inputs[0]) else inputs[0].clone()
                for other in inputs[1:]:
                    total += other
                outputs[layer.name] = total
            elif kind == "flatten":
                outputs[layer.name] = torch.flatten(inputs[0], 1)
            elif kind == "softmax_cross_entropy":
                loss = F.cross_entropy(inputs[0], labels)
            else:
                outputs[layer.name] = self.blocks[_key(layer.name)](inputs[0])
        return loss

    def _only_reader(self, name: str) -> bool:
        return len(self.network.consumers(name)) == 1 and self.network.layer(name).kind != "input"


def _key(name: str) -> str:
    return name.replace(".", "_")


def _module(network: Network, layer: Any) -> nn.Module | None:
    """The torch module of a bnsim layer (None: computed in BnsimNetwork.forward)."""
    kind = layer.kind
    if kind in ("input", "concat", "add", "flatten", "softmax_cross_entropy"):
        return None
    channels = network.in_shapes(layer.name)[0].c
    if kind == "conv2d":
        return nn.Conv2d(
            channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
            layer.dilation, layer.groups, bias=layer.bias,
        )  # fmt: skip
    if kind == "batchnorm2d":
        return nn.BatchNorm2d(channels, eps=layer.eps, momentum=layer.momentum)
    if kind in ("relu", "relu6"):
        source = layer.inputs[0]
        only = len(network.consumers(source)) == 1 and network.layer(source).kind != "input"
        return nn.ReLU(inplace=only) if kind == "relu" else nn.ReLU6(inplace=only)
    if kind == "maxpool":
        return nn.MaxPool2d(layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode)
    if kind == "avgpool":
        return nn.AvgPool2d(
            layer.kernel, layer.stride, layer.padding, ceil_mode=layer.ceil_mode,
            count_include_pad=layer.count_include_pad,
        )  # fmt: skip
    if kind == "adaptive_avgpool":
        return nn.AdaptiveAvgPool2d(layer.output_size)
    if kind == "global_avgpool":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "linear":
        shape = network.in_shapes(layer.name)[0]
        return nn.Linear(shape.c * shape.h * shape.w, layer.out_features, bias=layer.bias)
    if kind == "dropout":
        return nn.Dropout(layer.p)
    raise ValueError(f"layer {layer.name}: kind {kind} has no torch module here")


def train_step(model: nn.Module, optimizer: Any, images: Any, labels: Any) -> None:
    optimizer.zero_grad(set_to_none=True)
    model(images, labels).backward()
    optimizer.step()


def training(name: str, batch: int, channels_last: bool) -> tuple[nn.Module, Any, Any, Any]:
    """bnsim's network `name` as a torch module, its optimizer, images and labels, seeded; with
    `channels_last`, the module's weights and the images in PyTorch's channels-last format."""
    torch.manual_seed(0)
    network = build_model(name, batch=batch)
    model = BnsimNetwork(network)
    parameters = sum(p.numel() for p in model.parameters())
    if parameters != summarize(network).params:  # the same network on both sides, or nothing
        raise SystemExit(
            f"realcpu: {name} has {parameters} parameters in torch but "
            f"{summarize(network).params} in bnsim"
        )
    images = torch.randn(batch, network.input_channels(), *network.image)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    labels = torch.randint(0, 10, (batch,))
    return model, optimizer, images, labels


def measure(name: str, batch: int, iterations: int, channels_last: bool) -> dict[str, Any]:
    """Time one network's training iteration at `batch`, and its ops' shares."""
    model, optimizer, images, labels = training(name, batch, channels_last)
    for _ in range(2):
        train_step(model, optimizer, images, labels)
    seconds = []
    for _ in range(iterations):
        started = time.perf_counter()
        train_step(model, optimizer, images, labels)
        seconds.append(time.perf_counter() - started)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        train_step(model, optimizer, images, labels)
    self_us: dict[str, float] = {}
    for event in profile.key_averages():
        self_us[event.key] = self_us.get(event.key, 0.0) + event.self_cpu_time_total
    total = sum(self_us.values())

    def share(parts: tuple[str, ...]) -> float:
        return sum(us for op, us in self_us.items() if any(p in op for p in parts)) / total

    top = sorted(self_us.items(), key=lambda item: -item[1])[:12]
    return {
        "network": name,
        "batch": batch,
        "seconds": statistics.median(seconds),
        "seconds_all": seconds,
        "bn_share": share(BN_OPS),
        "relu_share": share(RELU_OPS),
        "concat_share": share(CONCAT_OPS),
        "top_ops_ms": {op: us / 1000 for op, us in top},
        "onednn_ms": onednn_primitives(name, batch, channels_last),
        "layout": "nhwc" if channels_last else "nchw",
    }


def onednn_primitives(name: str, batch: int, channels_last: bool) -> dict[str, float]:
    """oneDNN's own times of the primitives one training iteration runs, summed by what they do
    (`PRIMITIVE_KINDS`): a child process trains the same network and logs its last iteration
    (ONEDNN_VERBOSE). The profiler cannot separate a convolution from its layout copies."""
    command = [sys.executable, __file__, "--primitives-child", name, str(batch)]
    command += ["--channels-last"] if channels_last else []
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    sums = dict.fromkeys(PRIMITIVE_KINDS, 0.0)
    for line in child.stdout.splitlines():
        fields = line.split(",")
        if not line.startswith("onednn_verbose,") or ",exec," not in line:
            continue
        if fields[5] == "convolution":
            kind = {"forward_training": "conv forward", "backward_data": "conv backward data",
                    "backward_weights": "conv backward weight"}.get(fields[7], "other")  # fmt: skip
        elif fields[5] == "reorder":
            kind = "reorder activations" if "aBcd" in line else "reorder weights"
        else:
            kind = "other"
        sums[kind] += float(fields[-1])
    return sums


def _primitives_child(name: str, batch: int, channels_last: bool) -> None:
    model, optimizer, images, labels = training(name, batch, channels_last)
    for _ in range(2):
        train_step(model, optimizer, images, labels)
    with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
        train_step(model, optimizer, images, labels)


def predict(hw: Path, name: str, batch: int) -> dict[str, Any]:
    """bnsim's prediction of the same iteration on `hw`."""
    import bnsim  # noqa: PLC0415

    machine = bnsim.load_machine(hw)
    network = build_model(name, batch=batch)
    schedule = bnsim.build_schedule(
        network,
        "baseline:inplace_relu=true,inplace_add=true",
        reorders=bnsim.library_reorders(machine),
    )
    result = bnsim.simulate(schedule, machine)
    milliseconds = dict.fromkeys(PRIMITIVE_KINDS, 0.0)
    for kernel, timed in zip(schedule.kernels, result.kernels, strict=True):
        main = kernel.main_op()
        kind = PREDICTED_KINDS.get(main.kind.value)
        if main.kind.value == "reorder":
            weight = schedule.tensor(main.writes[0]).role.value.startswith("weight")
            kind = "reorder weights" if weight else "reorder activations"
        if kind is not None:
            milliseconds[kind] += timed.cycles() / machine.cores.clock_hz * 1e3
    rows = result.breakdown("layer_kind")
    cycles = sum(row["cycles"] for row in rows) or 1
    part = {row["layer_kind"]: row["cycles"] / cycles for row in rows}
    return {
        "seconds": result.cycles / machine.cores.clock_hz,
        "bn_share": part.get("bn", 0.0),
        "relu_share": part.get("relu", 0.0),
        "concat_share": part.get("concat", 0.0),
        "onednn_ms": milliseconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="resnet50,densenet121")
    parser.add_argument("--batches", default="8,16,32")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--hw", type=Path, help="also print bnsim's prediction on this machine")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument(
        "--measured",
        type=Path,
        help="take the measurements from this earlier --json file instead of measuring "
        "(to predict them again, e.g. on another config)",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="train in PyTorch's channels-last (NHWC) format (predict it on a config with "
        "compute.layout: nhwc, e.g. hwconfigs/zen4-2c-nhwc.yaml)",
    )
    parser.add_argument("--primitives-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hw:
        import bnsim  # noqa: PLC0415

        layout = bnsim.load_machine(args.hw).compute.layout
        if (layout == "nhwc") != args.channels_last:
            parser.error(
                f"--hw: {args.hw} keeps activations {layout}; channels-last training needs "
                "compute.layout: nhwc, NCHW training any other"
            )
    if any(os.environ.get(key) != value for key, value in MALLOC_SETTINGS.items()):
        # glibc reads these at start-up only
        environment = {**os.environ, **MALLOC_SETTINGS}
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)
    if args.primitives_child:
        _primitives_child(
            args.primitives_child[0], int(args.primitives_child[1]), args.channels_last
        )
        return 0
    settings = ", ".join(f"{key}={value}" for key, value in MALLOC_SETTINGS.items())
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {settings}"
    )
    shares = "BN | ReLU | concat"
    print(f"| network | batch | iteration (s) | {shares} | predicted (s) | {shares} |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results = []
    earlier = (
        {(row["measured"]["network"], row["measured"]["batch"]): row["measured"]
         for row in json.loads(args.measured.read_text())}
        if args.measured else {}
    )  # fmt: skip
    for name in args.networks.split(","):
        for batch in map(int, args.batches.split(",")):
            if args.measured and (name, batch) not in earlier:
                raise SystemExit(f"realcpu: {args.measured} has no {name} at batch {batch}")
            measured = earlier.get((name, batch)) or measure(
                name, batch, args.iterations, args.channels_last
            )
            if measured.get("layout", "nchw") != ("nhwc" if args.channels_last else "nchw"):
                raise SystemExit(
                    f"realcpu: {args.measured} holds {measured.get('layout', 'nchw')} training; "
                    "give --channels-last exactly when it is nhwc"
                )
            predicted = predict(args.hw, name, batch) if args.hw else None
            results.append({"measured": measured, "predicted": predicted})
            cells = [f"{measured['seconds']:.3f}"] + [
                f"{measured[key]:.1%}" for key in ("bn_share", "relu_share", "concat_share")
            ]
            if predicted:
                cells += [f"{predicted['seconds']:.3f}"] + [
                    f"{predicted[key]:.1%}" for key in ("bn_share", "relu_share", "concat_share")
                ]
            else:
                cells += ["", "", "", ""]
            print(f"| {name} | {batch} | " + " | ".join(cells) + " |", flush=True)
    print(
        "\noneDNN's primitives in one iteration, ms (their own times; predicted: bnsim's kernels)"
    )
    print("| network | batch | " + " | ".join(PRIMITIVE_KINDS) + " |")
    print("|---|---|" + "---|" * len(PRIMITIVE_KINDS))
    for row in results:
        measured, predicted = row["measured"], row["predicted"]
        cells = [
            f"{measured['onednn_ms'][kind]:.0f}"
            + (f" / {predicted['onednn_ms'][kind]:.0f}" if predicted else "")
            for kind in PRIMITIVE_KINDS
        ]
        print(f"| {measured['network']} | {measured['batch']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
