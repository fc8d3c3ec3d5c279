"""frozen_heap: the objects that exist are exempt from collection, and the collector pauses, while a
pass runs; both come back after it."""

from __future__ import annotations

import gc

import pytest

from bnsim.heap import frozen_heap


def test_the_heap_is_frozen_inside_and_released_after_the_outermost_block() -> None:
    before = gc.get_freeze_count()
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > before
        assert not gc.isenabled()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= frozen  # an inner block does not release the outer one
        assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_a_collector_paused_before_stays_paused() -> None:
    gc.disable()
    try:
        with frozen_heap():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_heap_is_released_when_the_block_raises() -> None:
    with pytest.raises(KeyError), frozen_heap():
        raise KeyError("x")
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
