"""PyTorch's CPU kernels on this machine: convolution throughput, element-wise costs (not a test).

Run: python benchmarks/measure_kernels.py [--threads N] [--quick] [--json FILE]
Needs torch (`pip install 'bnsim[torch]'`). Prints, with the machine and the torch build:

- convolutions: GFLOP/s of forward, backward-data and backward-weight (oneDNN, as PyTorch calls it)
  on ResNet-50 layers at batch 16, in NCHW and channels-last (NHWC) layouts, and for NCHW of
  oneDNN's convolution primitive alone, without the layout reorders around it (oneDNN's own times,
  from its verbose log);
- fully connected layers: GFLOP/s of their three GEMMs (ResNet-50's and DenseNet-121's, batch 32);
- element-wise ops, on NCHW and on channels-last (NHWC) tensors, on one thread: each op's time
  per element and per call on one core, fitted as a straight line through its
  time at several tensor sizes that stay in the L2 caches (so that memory does not set the time):
  the slope is the op's own cost per element, the intercept PyTorch's cost per call (dispatch,
  allocation, the OpenMP fork and join); the line is Theil and Sen's (medians of pairwise slopes),
  so that one disturbed size does not tilt it; oneDNN's layout reorders (nchw to nChw16c and
  back) the same way, from oneDNN's own times.

Element-wise ops run on one thread because ATen shares a tensor among threads only above a
grain of 32 768 elements (TensorIterator's GRAIN_SIZE), and gains little from the second thread
well above it (measured: relu_ on 100 352 elements takes as long on two threads as on one): at
cache-resident sizes two threads would time mostly one thread's work. One thread times exactly one
core's cost per element, which is what a config's `cycles_per_element` holds.

glibc's allocator is set as benchmarks/realcpu.py sets it (no mmap, so no page faults on fresh
buffers; the script re-runs itself so). Each time is the fastest of several blocks of calls,
because other tenants of a shared virtual
machine only ever slow it down. `--quick` shrinks every run (to check the script, not to measure).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    import torch
    import torch.nn.functional as F  # noqa: N812 (PyTorch's own spelling)
except ImportError:
    print("measure_kernels: needs torch: pip install 'bnsim[torch]'", file=sys.stderr)
    sys.exit(2)

# ResNet-50 layers (batch, input channels, output channels, kernel, stride, input size)
CONVOLUTIONS = [
    ("res2 1x1 256->64", 16, 256, 64, 1, 1, 56),
    ("res3 3x3 128->128", 16, 128, 128, 3, 1, 28),
    ("res4 1x1 256->1024", 16, 256, 1024, 1, 1, 14),
]
CHANNELS = 64
# glibc's allocator as benchmarks/realcpu.py sets it: no buffer mapped afresh (and page-faulted)
# per call, freed memory kept
MALLOC_SETTINGS = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}
EPS = 1e-5


def fastest(call: Callable[[], object], calls: int, blocks: int = 7) -> float:
    """Seconds per call: the fastest block's mean, after a warm-up block."""
    for _ in range(calls):
        call()
    best = float("inf")
    for _ in range(blocks):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def convolutions(quick: bool) -> list[dict[str, Any]]:
    measured = []
    for name, full_batch, cin, cout, kernel, stride, size in CONVOLUTIONS:
        batch = 2 if quick else full_batch
        for layout in ("nchw", "nhwc"):
            memory = torch.channels_last if layout == "nhwc" else torch.contiguous_format
            x = torch.randn(batch, cin, size, size).to(memory_format=memory)
            w = torch.randn(cout, cin, kernel, kernel).to(memory_format=memory)
            y = F.conv2d(x, w, stride=stride, padding=kernel // 2)
            dy = torch.randn_like(y)
            out = y.shape[2] * y.shape[3]
            flops = 2.0 * batch * cout * cin * kernel * kernel * out
            calls = 1 if quick else 3
            steps = {
                "forward": lambda x=x, w=w, s=stride, k=kernel: F.conv2d(
                    x, w, stride=s, padding=k // 2
                ),
                "backward_data": lambda x=x, w=w, dy=dy, s=stride, k=kernel: (
                    torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=k // 2)
                ),
                "backward_weight": lambda x=x, w=w, dy=dy, s=stride, k=kernel: (
                    torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=k // 2)
                ),
            }
            for step, call in steps.items():
                seconds = fastest(call, calls, blocks=2 if quick else 5)
                measured.append(
                    {"layer": name, "layout": layout, "pass": step, "batch": batch,
                     "gflops": flops / seconds / 1e9, "seconds": seconds}
                )  # fmt: skip
    return measured


# fully connected layers (batch, input features, output features): ResNet-50's and DenseNet-121's
GEMMS = [("resnet50 fc 2048->1000", 32, 2048, 1000), ("densenet121 fc 1024->1000", 32, 1024, 1000)]


def gemms(quick: bool) -> list[dict[str, Any]]:
    """GFLOP/s of a fully connected layer's three GEMMs (forward, data and weight gradients)."""
    measured = []
    for name, full_batch, inputs, outputs in GEMMS:
        batch = 2 if quick else full_batch
        x, w = torch.randn(batch, inputs), torch.randn(outputs, inputs)
        dy = torch.randn(batch, outputs)
        flops = 2.0 * batch * inputs * outputs
        steps = {
            "forward": lambda x=x, w=w: F.linear(x, w),
            "backward_data": lambda dy=dy, w=w: dy @ w,
            "backward_weight": lambda dy=dy, x=x: dy.t() @ x,
        }
        for step, call in steps.items():
            seconds = fastest(call, 3 if quick else 20, blocks=2 if quick else 5)
            measured.append(
                {"layer": name, "pass": step, "batch": batch, "gflops": flops / seconds / 1e9,
                 "seconds": seconds}
            )  # fmt: skip
    return measured


def elementwise_ops(
    shape: tuple[int, int, int, int], layout: str = "nchw"
) -> dict[str, tuple[Callable[[], object], float]]:
    """Each op as PyTorch's training code calls it, with its count of elements (the unit of its
    bnsim cost) per call, on tensors in `layout` (nchw, or nhwc: PyTorch's channels_last)."""
    n, c, h, w = shape
    memory = torch.channels_last if layout == "nhwc" else torch.contiguous_format
    x = torch.randn(shape).to(memory_format=memory)
    other = torch.randn(shape).to(memory_format=memory)
    dy = torch.randn(shape).to(memory_format=memory)
    weight, bias = torch.ones(c), torch.zeros(c)
    mean, var = torch.zeros(c), torch.ones(c)
    save_mean = x.mean((0, 2, 3))
    save_invstd = (x.var((0, 2, 3), correction=0) + EPS).rsqrt()
    elements = float(x.numel())
    logits = torch.randn(n * h * w, c, requires_grad=True)
    labels = torch.randint(0, c, (n * h * w,))
    parameter = torch.nn.Parameter(torch.randn(x.numel()))
    parameter.grad = torch.randn_like(parameter)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9)

    scale = torch.rand(n, c, 1, 1)
    pooled, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    pooled_grad = torch.randn_like(pooled)

    def loss() -> None:
        F.cross_entropy(logits, labels).backward()

    return {
        "batch_norm_train (stats + normalize)": (
            lambda: F.batch_norm(x, mean, var, weight, bias, training=True, eps=EPS),
            elements,
        ),
        "batch_norm_eval (normalize)": (
            lambda: F.batch_norm(x, mean, var, weight, bias, training=False, eps=EPS),
            elements,
        ),
        "batch_norm_backward": (
            lambda: torch.ops.aten.native_batch_norm_backward(
                dy, x, weight, mean, var, save_mean, save_invstd, True, EPS, [True, True, True]
            ),
            elements,
        ),
        "batch_norm_backward, reductions only (no input gradient)": (
            lambda: torch.ops.aten.native_batch_norm_backward(
                dy, x, weight, mean, var, save_mean, save_invstd, True, EPS, [False, True, True]
            ),
            elements,
        ),
        "relu": (lambda: torch.relu(x), elements),
        "relu_ (in place)": (lambda: torch.relu_(other), elements),
        "threshold_backward (relu backward)": (
            lambda: torch.ops.aten.threshold_backward(dy, x, 0.0),
            elements,
        ),
        "silu_ (in place)": (lambda: F.silu(other, inplace=True), elements),
        "silu backward": (lambda: torch.ops.aten.silu_backward(dy, x), elements),
        "hardswish_ (in place)": (lambda: F.hardswish(other, inplace=True), elements),
        "hardswish backward": (lambda: torch.ops.aten.hardswish_backward(dy, x), elements),
        "mul by a per-channel scale (squeeze-excitation)": (lambda: x * scale, elements),
        "its scale's gradient, (dy·x) summed per channel": (
            lambda: (dy * x).sum((2, 3), keepdim=True),
            elements,
        ),
        "add": (lambda: torch.add(x, other), elements),
        "add_ (in place)": (lambda: other.add_(x), elements),
        "max_pool2d 3x3/2 (per input element)": (lambda: F.max_pool2d(x, 3, 2, 1), elements),
        "max_pool2d backward (per input-gradient element)": (
            lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                pooled_grad, x, [3, 3], [2, 2], [1, 1], [1, 1], False, indices
            ),
            elements,
        ),
        "cat (per output element)": (lambda: torch.cat([x, other], 1), 2 * elements),
        "dropout": (lambda: F.dropout(x, 0.5, training=True), elements),
        "cross_entropy forward+backward (per logit)": (loss, float(logits.numel())),
        "sgd momentum step (per parameter)": (optimizer.step, elements),
    }


def elementwise(quick: bool, layout: str = "nchw") -> list[dict[str, Any]]:
    """Each op's cost per element and per call on `layout` tensors (`elementwise_ops`), on one
    thread: one core's cost."""
    sides = [4, 8] if quick else [4, 6, 8, 10, 12, 14]
    times: dict[str, list[tuple[float, float]]] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for side in sides:
        for name, (call, elements) in elementwise_ops((8, CHANNELS, side, side), layout).items():
            seconds = fastest(call, 5 if quick else 200, blocks=2 if quick else 7)
            times.setdefault(name, []).append((elements, seconds))
    torch.set_num_threads(threads)
    measured = []
    for name, points in times.items():
        slope, intercept = _theil_sen(points)
        measured.append(
            {"op": name, "layout": layout, "threads": 1, "ns_per_element": slope * 1e9,
             "us_per_call": intercept * 1e6,
             "points": [{"elements": x, "seconds": y} for x, y in points]}
        )  # fmt: skip
    return measured


def thread_scaling(quick: bool) -> list[dict[str, Any]]:
    """relu_'s time per element on one thread and on all, from cache-resident sizes to DRAM-sized
    ones: why `elementwise` times one thread."""
    threads = torch.get_num_threads()
    measured = []
    for side in [8, 14] if quick else [8, 14, 28, 56]:
        x = torch.randn(8, CHANNELS, side, side)
        for count in sorted({1, threads}):
            torch.set_num_threads(count)
            seconds = fastest(lambda x=x: torch.relu_(x), 5 if quick else 200, 2 if quick else 7)
            measured.append(
                {
                    "elements": x.numel(),
                    "threads": count,
                    "ns_per_element": seconds / x.numel() * 1e9,
                }
            )
    torch.set_num_threads(threads)
    return measured


def onednn_log(what: str, quick: bool, threads: int) -> list[list[str]]:
    """Run this script's `what` child (`_child`) with oneDNN's verbose log on: each line oneDNN
    prints for a primitive it ran, its fields split at commas. oneDNN times each primitive itself,
    which separates a convolution from the reorders around it: neither the profiler nor a timer
    around a PyTorch call can. (Lines are told apart by their shapes: oneDNN's C buffer and
    Python's reach the pipe in no fixed order.)"""
    environment = {**os.environ, "ONEDNN_VERBOSE": "1"}
    command = [sys.executable, __file__, "--child", what, "--threads", str(threads)]
    command += ["--quick"] if quick else []
    child = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return [
        line.split(",")
        for line in child.stdout.splitlines()
        if line.startswith("onednn_verbose,") and ",exec," in line
    ]


def reorders(quick: bool, threads: int) -> list[dict[str, Any]]:
    """oneDNN's layout reorders around an NCHW convolution (input to nChw16c, output back), each
    fitted like an element-wise op (`elementwise`) from oneDNN's own times."""
    fastest_ms: dict[tuple[str, int], float] = {}
    for fields in onednn_log("reorders", quick, threads):
        dims = fields[-2].split("x")
        if fields[5] != "reorder" or dims[:2] != ["8", str(CHANNELS)]:
            continue
        side = int(dims[2])
        direction = "to_blocked" if "dst:f32::blocked:aBcd16b::f0" in fields[8] else "to_plain"
        key = (direction, side)
        fastest_ms[key] = min(fastest_ms.get(key, float("inf")), float(fields[-1]))
    sides = sorted({side for _, side in fastest_ms})
    measured = []
    for direction, label in (("to_blocked", "nchw to nChw16c"), ("to_plain", "nChw16c to nchw")):
        points = [(8.0 * CHANNELS * s * s, fastest_ms[direction, s] / 1e3) for s in sides]
        slope, intercept = _theil_sen(points)
        measured.append(
            {"op": f"reorder {label} (oneDNN's own time)", "ns_per_element": slope * 1e9,
             "us_per_call": intercept * 1e6,
             "points": [{"elements": x, "seconds": y} for x, y in points]}
        )  # fmt: skip
    return measured


def primitive_times(measured: list[dict[str, Any]], quick: bool, threads: int) -> None:
    """Add to each convolution measurement the GFLOP/s of oneDNN's convolution primitive alone
    (`primitive_gflops`) and its name (`implementation`): a PyTorch call also reorders its
    operands (docs/frameworks.md)."""
    passes = {"forward_training": "forward", "backward_data": "backward_data",
              "backward_weights": "backward_weight"}  # fmt: skip
    fastest: dict[tuple[str, str, str], tuple[float, str]] = {}
    for fields in onednn_log("convolutions", quick, threads):
        if fields[5] == "convolution" and fields[7] in passes:
            shape = fields[-2].split("_")[1]  # "ic128oc128": unique among CONVOLUTIONS
            # PyTorch pins channels-last activations to nhwc ("acdb"); NCHW ones oneDNN reorders
            layout = "nhwc" if "src:f32::blocked:acdb:" in fields[8] else "nchw"
            key = (shape, passes[fields[7]], layout)
            milliseconds = float(fields[-1])
            if milliseconds < fastest.get(key, (float("inf"), ""))[0]:
                fastest[key] = (milliseconds, fields[6])
    layers = {name: f"ic{cin}oc{cout}" for name, _, cin, cout, *_ in CONVOLUTIONS}
    for entry in measured:
        found = fastest.get((layers[entry["layer"]], entry["pass"], entry["layout"]))
        if found is not None:
            milliseconds, implementation = found
            entry["primitive_gflops"] = entry["gflops"] * entry["seconds"] / (milliseconds / 1e3)
            entry["implementation"] = implementation


def _child(what: str, quick: bool) -> None:
    """What `onednn_log` runs: 1×1 NCHW convolutions at each reorder size, or every pass of each
    measured convolution in NCHW and in NHWC."""
    calls = 5 if quick else 200
    with torch.no_grad():
        if what == "reorders":
            for side in [4, 8] if quick else [4, 6, 8, 10, 12, 14]:
                conv = torch.nn.Conv2d(CHANNELS, CHANNELS, 1, bias=False)
                x = torch.randn(8, CHANNELS, side, side)
                for _ in range(calls):
                    conv(x)
            return
        for (_, full_batch, cin, cout, kernel, stride, size), memory in itertools.product(
            CONVOLUTIONS, (torch.contiguous_format, torch.channels_last)
        ):
            x = torch.randn(2 if quick else full_batch, cin, size, size).to(memory_format=memory)
            w = torch.randn(cout, cin, kernel, kernel).to(memory_format=memory)
            dy = torch.randn_like(F.conv2d(x, w, stride=stride, padding=kernel // 2))
            for _ in range(1 if quick else 25):  # the fastest of many: tenants only slow it
                F.conv2d(x, w, stride=stride, padding=kernel // 2)
                torch.nn.grad.conv2d_input(x.shape, w, dy, stride=stride, padding=kernel // 2)
                torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=stride, padding=kernel // 2)


def _theil_sen(points: list[tuple[float, float]]) -> tuple[float, float]:
    """A line through (elements, seconds) points that one disturbed run cannot tilt: the median of
    the slopes between every two points, and the median of the intercepts it leaves (Theil, 1950;
    Sen, 1968)."""
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    ]
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in points)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"machine: {results['machine']['processor']}, torch {results['torch']['version']}, "
        f"{results['torch']['threads']} threads",
        "",
        "| convolution | layout | pass | GFLOP/s | the primitive alone, GFLOP/s | oneDNN's "
        "implementation |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {e['layer']} | {e['layout']} | {e['pass']} | {e['gflops']:.1f} | "
        + (f"{e['primitive_gflops']:.1f} |" if "primitive_gflops" in e else "– |")
        + f" {e.get('implementation', '–')} |"
        for e in results["convolutions"]
    ]
    lines += ["", "| fully connected | pass | GFLOP/s |", "|---|---|---|"]
    lines += [f"| {e['layer']} | {e['pass']} | {e['gflops']:.1f} |" for e in results["gemms"]]
    lines += ["", "| relu_, elements | threads | ns per element |", "|---|---|---|"]
    lines += [
        f"| {e['elements']} | {e['threads']} | {e['ns_per_element']:.4f} |"
        for e in results.get("thread_scaling", [])
    ]
    lines += ["", "element-wise ops on one thread; reorders on all (oneDNN's own times)"]
    lines += ["", "| op | layout | ns per element | µs per call |", "|---|---|---|---|"]
    lines += [
        f"| {e['op']} | {e.get('layout', 'nchw')} | {e['ns_per_element']:.4f} | "
        f"{e['us_per_call']:.2f} |"
        for e in results["elementwise"]
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--quick", action="store_true", help="small runs: check, do not measure")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--child", choices=("reorders", "convolutions"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if any(os.environ.get(key) != value for key, value in MALLOC_SETTINGS.items()):
        # glibc reads these at start-up only
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_SETTINGS})
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        _child(args.child, args.quick)
        return 0
    torch.manual_seed(0)
    processor = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    with torch.no_grad():
        results: dict[str, Any] = {
            "machine": {"processor": processor, "python": platform.python_version()},
            "torch": {
                "version": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            },
            "convolutions": convolutions(args.quick),
            "gemms": gemms(args.quick),
        }
    primitive_times(results["convolutions"], args.quick, torch.get_num_threads())
    results["thread_scaling"] = thread_scaling(args.quick)
    results["elementwise"] = elementwise(args.quick) + elementwise(args.quick, "nhwc")
    results["elementwise"] += reorders(args.quick, torch.get_num_threads())
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
