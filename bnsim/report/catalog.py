"""What bnsim knows, described: the model zoo, a network's summary, the schemes, their options."""

from __future__ import annotations

from typing import Any

from bnsim import units
from bnsim.graph import CATEGORIES, Network, summarize
from bnsim.graph.zoo import MODELS, build_model
from bnsim.report.summary import Table
from bnsim.report.tables import key_value_table, text_table
from bnsim.schemes import MODIFIERS, SCHEMES


def zoo_documents() -> list[dict[str, Any]]:
    """Every zoo model: name, builder, image size, parameters, MACs per sample, description."""
    documents = []
    for model in MODELS.values():
        summary = summarize(build_model(model.name, batch=1))
        documents.append(
            {
                "name": model.name,
                "builder": model.builder,
                "image": model.image,
                "params": summary.params,
                "macs_per_sample": summary.macs_per_sample,
                "description": model.description,
            }
        )
    return documents


def zoo_table(documents: list[dict[str, Any]]) -> Table:
    """The zoo as a table (`bnsim workloads list`)."""
    header = ["model", "image (pixels)", "parameters", "MACs/sample", "description"]
    rows = [
        [
            document["name"],
            f"{document['image']}×{document['image']}",
            f"{document['params']:,}",
            units.format_count(document["macs_per_sample"], "MAC"),
            document["description"],
        ]
        for document in documents
    ]
    return Table(header, rows)


def describe_network(network: Network) -> str:
    """A network's input, parameters, MACs, activation bytes and layers by kind
    (`bnsim workloads show`)."""
    summary = summarize(network)
    c, h, w = summary.input
    by_category = {category: 0 for category in CATEGORIES}
    for layer in network.layers[1:]:
        by_category[layer.layer_kind.category] += 1
    batch_bytes = summary.activation_bytes_per_sample * summary.batch
    rows = [
        ["input", f"{c}×{h}×{w} per sample, batch {summary.batch} samples"],
        ["parameters", f"{summary.params:,} ({units.format_bytes(summary.params * 4)} in fp32)"],
        [
            "forward MACs",
            f"{units.format_count(summary.macs_per_sample, 'MAC')} per sample "
            f"({summary.macs_per_sample:,} MAC; conv and linear layers)",
        ],
        [
            "activations",
            f"{units.format_bytes(summary.activation_bytes_per_sample)} per sample, "
            f"{units.format_bytes(batch_bytes)} per batch (fp32, every layer output once)",
        ],
        [
            "BN inputs",
            f"{summary.bn_input_elements_per_sample:,} elements per sample "
            f"({units.format_bytes(summary.bn_input_elements_per_sample * 4)} fp32)",
        ],
        ["layers", f"{summary.num_layers} layers"],
    ]
    counts = [[k, v] for k, v in by_category.items() if v]
    return "\n".join(
        [
            network.name,
            key_value_table(rows, indent="  "),
            "\n  layers by kind:",
            text_table(["kind", "layers"], list(summary.layer_counts.items()), indent="    "),
            "\n  layers by breakdown category:",
            text_table(["category", "layers"], counts, indent="    "),
        ]
    )


def describe_schemes() -> str:
    """Every scheme and modifier with its options, defaults and meanings (`bnsim schemes`)."""
    lines = []
    for scheme in (*SCHEMES.values(), *MODIFIERS.values()):
        kind = " (a modifier: X+sampling)" if scheme.name in MODIFIERS else ""
        lines.append(f"{scheme.name}: {scheme.summary}{kind}")
        rows = [
            [key, repr(field.default), field.description or ""]
            for key, field in scheme.options_model.model_fields.items()
        ]
        if rows:
            lines.append(text_table(["option", "default", "meaning"], rows, indent="  "))
    lines.append("\noptions: --scheme NAME:key=value,key=value, e.g. baseline:bn_stats_passes=1")
    return "\n".join(lines)
