"""The serialized-rows cache: exact hits only, bounded size."""

from __future__ import annotations

import json

from congress_ha.api.rows import RowsCache, encode


def decoded(data: bytes) -> list:
    return [r["data"] for r in json.loads(data)["results"]]


def test_same_tuples_hit_and_give_the_same_bytes():
    cache = RowsCache()
    table = {(2, "b"), (1, "a")}
    first = cache.body(("ds", "t"), set(table))
    assert cache.body(("ds", "t"), set(table)) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert decoded(first) == [[1, "a"], [2, "b"]]


def test_a_changed_table_misses():
    cache = RowsCache()
    table = {(1, "a")}
    cache.body(("ds", "t"), set(table))
    table.add((3, "c"))
    assert decoded(cache.body(("ds", "t"), set(table))) == [[1, "a"], [3, "c"]]
    table.discard((1, "a"))
    assert decoded(cache.body(("ds", "t"), set(table))) == [[3, "c"]]
    assert cache.hits == 0


def test_equal_but_different_values_are_not_confused():
    cache = RowsCache()
    assert b"[1]" in cache.body(("ds", "t"), {(1,)})
    assert b"[1.0]" in cache.body(("ds", "t"), {(1.0,)})
    assert cache.hits == 0


def test_the_cache_is_bounded():
    cache = RowsCache(max_bytes=2000, max_entry=1500)
    for i in range(20):
        cache.body(("ds", f"t{i}"), {(j, "x" * 20) for j in range(10)})
    assert cache.size <= 2000 and len(cache.entries) < 20
    big = {(j, "y" * 50) for j in range(100)}
    cache.body(("ds", "big"), big)
    assert ("ds", "big") not in cache.entries


def test_encode_sorts_mixed_types_and_adds_the_trace():
    body = json.loads(encode({(1,), ("a",)}, trace="proof"))
    assert body["trace"] == "proof" and len(body["results"]) == 2
