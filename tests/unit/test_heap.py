"""frozen_heap: the objects that exist are exempt from collection while a pass runs, then return."""

from __future__ import annotations

import gc

import pytest

from bnsim.heap import frozen_heap


def test_the_heap_is_frozen_inside_and_released_after_the_outermost_block() -> None:
    before = gc.get_freeze_count()
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > before
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= frozen  # an inner block does not release the outer one
    assert gc.get_freeze_count() == 0


def test_the_heap_is_released_when_the_block_raises() -> None:
    with pytest.raises(KeyError), frozen_heap():
        raise KeyError("x")
    assert gc.get_freeze_count() == 0
