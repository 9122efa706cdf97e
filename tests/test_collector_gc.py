"""``nudge serve`` keeps Python's cycle collector off the request path (BENCHMARKS.md, issue 15)."""

from __future__ import annotations

import gc

from collector.server import YOUNG_COLLECTION_EVERY, _tune_garbage_collector


def test_serving_freezes_what_is_loaded_and_collects_young_objects_less_often() -> None:
    thresholds = gc.get_threshold()
    loaded = [object() for _ in range(3)]  # containers alive before serving starts: frozen
    try:
        frozen_before = gc.get_freeze_count()
        _tune_garbage_collector()
        assert gc.get_freeze_count() > frozen_before
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, *thresholds[1:])
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    del loaded
