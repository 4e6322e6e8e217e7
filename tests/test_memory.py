"""A serving worker freezes what startup built out of the collector's walks and collects
its youngest generation less often (server/memory.py, CUSTOMER_GRAPH_GC_THRESHOLD)."""

from __future__ import annotations

import gc

import pytest

from server.memory import tune_gc
from server.settings import Settings


@pytest.fixture
def collector():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_startup_objects_are_frozen_and_the_threshold_set(collector):
    schema_like = [{"field": i} for i in range(1000)]  # lives as long as the worker
    tune_gc(50_000)
    assert gc.get_freeze_count() >= len(schema_like)
    assert gc.get_threshold()[0] == 50_000


def test_zero_leaves_the_collector_alone(collector):
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


def test_the_setting(monkeypatch):
    assert Settings(database_url="x").gc_threshold == 50_000
    monkeypatch.setenv("CUSTOMER_GRAPH_GC_THRESHOLD", "0")
    assert Settings(database_url="x").gc_threshold == 0
