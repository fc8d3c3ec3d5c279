"""Files written whole or not at all: through a hidden partial file renamed over the target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def write_whole(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call `write` on a partial file beside `path`, then rename it to `path`: an interrupted or
    failed write leaves the old file as it was and no partial file behind."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_text_whole(path: str | Path, text: str) -> Path:
    """`text` written to `path` as UTF-8, whole or not at all."""
    return write_whole(path, lambda partial: partial.write_text(text, encoding="utf-8"))
