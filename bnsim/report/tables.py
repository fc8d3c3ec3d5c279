"""Plain-text and Markdown tables: pure string formatting, no I/O."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """Columns aligned with spaces; numbers (and cells starting with a digit) right-aligned.

    >>> print(text_table(["kind", "count"], [["conv2d", 120], ["linear", 1]]))
    kind    count
    conv2d    120
    linear      1
    """
    cells = [[str(item) for item in header], *[[str(item) for item in row] for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    numeric = [
        all(_looks_numeric(row[column]) for row in cells[1:]) and len(cells) > 1
        for column in range(len(header))
    ]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if is_numeric else cell.ljust(width)
            for cell, width, is_numeric in zip(row, widths, numeric, strict=True)
        ]
        lines.append(indent + "  ".join(parts).rstrip())
    return "\n".join(lines)


def _looks_numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or (cell[0] in "+-" and cell[1:2].isdigit()))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped).

    >>> print(markdown_table(["key", "unit"], [["llc.size", "bytes"]]))
    | key | unit |
    |---|---|
    | llc.size | bytes |
    """

    def cell(item: object) -> str:
        return str(item).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(item) for item in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(item) for item in row) + " |" for row in rows)
    return "\n".join(lines)


def key_value_table(rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """Two left-aligned columns: a label and its value.

    >>> print(key_value_table([["parameters", "7,978,856"], ["layers", "428 layers"]]))
    parameters  7,978,856
    layers      428 layers
    """
    width = max((len(str(row[0])) for row in rows), default=0)
    return "\n".join(
        f"{indent}{str(label).ljust(width)}  {value}".rstrip() for label, value in rows
    )
