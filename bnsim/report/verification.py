"""What `bnsim verify` reports: a row per scheme, the worst tensors of a mismatch, its document."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bnsim.report.tables import text_table
from bnsim.verify import VerificationReport


def describe_verification(reports: Sequence[VerificationReport]) -> str:
    """A row per scheme (result, size, error against tolerance, kernels, tiles, time), then for
    sampled schemes how far their statistics are from the exact ones, and for mismatches the worst
    tensors."""
    rows = [
        [
            r.scheme,
            "ok" if r.passed else "MISMATCH",
            f"{r.image[0]}×{r.image[1]}",
            r.batch,
            r.tensors_compared,
            f"{r.max_rel_err:.1e}",
            f"{r.tolerance:.0e}",
            r.num_kernels,
            r.num_tiles,
            f"{r.seconds:.2f}",
        ]
        for r in reports
    ]
    header = [
        "scheme",
        "result",
        "image (pixels)",
        "batch (samples)",
        "tensors",
        "max rel. error",
        "tolerance",
        "kernels",
        "tiles",
        "time (s)",
    ]
    lines = [text_table(header, rows)]
    for report in reports:
        if report.sampled_mean_error is not None:
            lines.append(
                f"{report.scheme}: statistics used vs exact batch statistics: mean off by up to "
                f"{report.sampled_mean_error:.3g} standard deviations, variance by up to "
                f"{report.sampled_var_error:.1%}"
            )
        if not report.passed:
            lines.append(f"{report.scheme}: worst tensors:")
            worst = [[c.name, f"{c.max_rel_err:.2e}", f"{c.max_abs_err:.2e}"] for c in report.worst]
            lines.append(
                text_table(["tensor", "max rel. error", "max abs. error"], worst, indent="  ")
            )
    return "\n".join(lines)


def verify_document(
    workload: str, reports: Sequence[VerificationReport], version: str
) -> dict[str, Any]:
    """The `bnsim verify --json` document: totals over the schemes, then one report per scheme.

    Errors that are not finite (a tensor full of NaN) are written as null: JSON has no infinity.
    """

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [finite(item) for item in value]
        return value

    document: dict[str, Any] = finite(
        {
            "schema": "bnsim.verify/1",
            "bnsim_version": version,
            "workload": workload,
            "scheme": [r.scheme for r in reports],
            "passed": all(r.passed for r in reports),
            "tensors_compared": sum(r.tensors_compared for r in reports),
            "max_abs_err": max(r.max_abs_err for r in reports),
            "max_rel_err": max(r.max_rel_err for r in reports),
            "seconds": sum(r.seconds for r in reports),
            "reports": [r.to_dict() for r in reports],
        }
    )
    return document
