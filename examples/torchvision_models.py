"""Every torchvision classification model with BN layers, imported through torch.fx: its parameters
and MACs against torchvision's own figures, what each scheme fuses in it, and `bnsim verify` of
every scheme on its down-scaled import. Needs torch and torchvision (not their weights).

Writes torchvision_models.md (the table in docs/workloads.md) and torchvision_models.json.

Run: python examples/torchvision_models.py [--small] [--out DIR]
"""

import argparse
import json
import warnings
from pathlib import Path

import torch
import torchvision

import bnsim
from bnsim.graph.fx import WITHOUT_AUX, from_torchvision
from bnsim.schedule import OpKind, Phase, Schedule

SCHEMES = ("baseline", "fission", "bnff", "recompute", "sampling")
CONVOLUTIONS = (OpKind.CONV_FWD, OpKind.CONV_BWD_DATA, OpKind.CONV_BWD_WEIGHT)


def models_with_batchnorm() -> list[str]:
    """torchvision's classification models that have BatchNorm2d layers, in its own order."""
    found = []
    for name in torchvision.models.list_models(module=torchvision.models):
        module = torchvision.models.get_model(name, weights=None, **WITHOUT_AUX.get(name, {}))
        if any(isinstance(layer, torch.nn.BatchNorm2d) for layer in module.modules()):
            found.append(name)
    return found


def bn_layers_fused(schedule: Schedule, kind: OpKind, phases: tuple[Phase, ...]) -> int:
    """How many BN layers have an op of `kind` inside a convolution's kernel of `phases`."""
    return len(
        {
            op.layer
            for kernel in schedule.kernels
            if kernel.phase in phases and kernel.main_op().kind in CONVOLUTIONS
            for op in kernel.ops
            if op.kind is kind
        }
    )


def model_row(name: str, schemes: tuple[str, ...]) -> dict[str, object]:
    """What one model is, what each scheme does to it, and whether each verifies."""
    module = torchvision.models.get_model(name, weights=None, **WITHOUT_AUX.get(name, {}))
    try:
        network = from_torchvision(name, batch=1)
    except bnsim.WorkloadError as error:  # what bnsim cannot describe, said in one line
        reason = str(error).split("; bnsim maps")[0].removeprefix(f"{name}: ")
        return {"model": name, "refused": reason}
    summary = bnsim.summarize(network)
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    bnff = bnsim.build_schedule(network, "bnff")
    recompute = bnsim.build_schedule(network, "recompute")
    backward = (Phase.BWD_DATA, Phase.BWD_WEIGHT)
    return {
        "model": name,
        "image": network.image[0],
        "parameters": summary.params,
        "torchvision_parameters": sum(p.numel() for p in module.parameters()),
        "gmac_per_image": round(summary.macs_per_sample / 1e9, 3),
        "torchvision_gmac_per_image": published,
        "bn_layers": sum(layer.layer_kind.value == "batchnorm2d" for layer in network.layers),
        "bnff_statistics_in_producer": bn_layers_fused(bnff, OpKind.BN_STATS, (Phase.FWD,)),
        "bnff_normalize_in_consumer": bn_layers_fused(bnff, OpKind.BN_APPLY, (Phase.FWD,)),
        "recompute_normalize_in_backward": bn_layers_fused(recompute, OpKind.BN_APPLY, backward),
        "verified": {scheme: bnsim.verify_scheme(network, scheme).passed for scheme in schemes},
    }


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| model | image (px) | parameters | GMAC/image | BN layers | bnff: statistics in the "
        "producing conv | bnff: normalize in the consuming conv | recompute: normalize redone "
        "in backward convs | verified |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        if "refused" in row:
            lines.append(f"| {row['model']} | refused: {row['refused']} |" + " |" * 7)
            continue
        verified = row["verified"]
        assert isinstance(verified, dict)
        passed = (
            "all"
            if all(verified.values())
            else "FAILED: " + ", ".join(scheme for scheme, ok in verified.items() if not ok)
        )
        lines.append(
            f"| {row['model']} | {row['image']} | {row['parameters']:,} | "
            f"{row['gmac_per_image']:.3f} | {row['bn_layers']} | "
            f"{row['bnff_statistics_in_producer']} | {row['bnff_normalize_in_consumer']} | "
            f"{row['recompute_normalize_in_backward']} | {passed} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="two models, two schemes")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder to write into")
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
    names = ["resnet18", "efficientnet_b0"] if arguments.small else models_with_batchnorm()
    schemes = ("baseline", "bnff") if arguments.small else SCHEMES
    rows = []
    for name in names:
        row = model_row(name, schemes)
        if "refused" in row:
            print(f"{name}: {row['refused']}")
        else:
            mismatch = (
                row["parameters"] != row["torchvision_parameters"]
                or row["gmac_per_image"] != row["torchvision_gmac_per_image"]
            )
            print(f"{name}: {'DIFFERS from torchvision' if mismatch else 'as torchvision counts'}")
        rows.append(row)
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "torchvision_models.md").write_text(markdown(rows))
    (arguments.out / "torchvision_models.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
