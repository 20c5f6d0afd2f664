"""Tags filters: centrifuge's operators and validation rules, and equal filters shared."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from wavecast.realtime.codec.schema import FilterNode
from wavecast.realtime.tagsfilter import MAX_FILTER_DEPTH, MAX_FILTER_NODES, compile_filter


def node(value: dict[str, Any]) -> FilterNode:
    return msgspec.convert(value, FilterNode)


def leaf(cmp: str, key: str = "k", val: str = "", vals: list[str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"cmp": cmp, "key": key}
    if val:
        result["val"] = val
    if vals:
        result["vals"] = vals
    return result


TAGS = {"ticker": "AAPL", "price": "101.5", "source": "NASDAQ", "empty": ""}

CASES = [
    (leaf("eq", "ticker", "AAPL"), True),
    (leaf("eq", "ticker", "MSFT"), False),
    (leaf("eq", "missing", "x"), False),
    (leaf("neq", "ticker", "MSFT"), True),
    (leaf("neq", "missing", "x"), True),
    (leaf("in", "source", vals=["NYSE", "NASDAQ"]), True),
    (leaf("in", "missing", vals=["a", ""]), True),  # a missing tag reads as "", as in centrifuge
    (leaf("nin", "source", vals=["NYSE"]), True),
    (leaf("nin", "source", vals=["NASDAQ"]), False),
    (leaf("ex", "empty"), True),
    (leaf("ex", "missing"), False),
    (leaf("nex", "missing"), True),
    (leaf("sw", "ticker", "AA"), True),
    (leaf("ew", "ticker", "PL"), True),
    (leaf("ct", "source", "SDA"), True),
    (leaf("ct", "missing", "x"), False),
    (leaf("gt", "price", "100"), True),
    (leaf("gte", "price", "101.50"), True),
    (leaf("lt", "price", "101.5"), False),
    (leaf("lte", "price", "101.5"), True),
    (leaf("gt", "ticker", "1"), False),  # not a number: no match
    (leaf("gt", "price", "abc"), False),
    ({"op": "and", "nodes": [leaf("eq", "ticker", "AAPL"), leaf("gte", "price", "100")]}, True),
    ({"op": "and", "nodes": [leaf("eq", "ticker", "AAPL"), leaf("lt", "price", "100")]}, False),
    ({"op": "or", "nodes": [leaf("eq", "ticker", "MSFT"), leaf("ex", "source")]}, True),
    ({"op": "not", "nodes": [leaf("eq", "source", "NYSE")]}, True),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_operators_match_as_centrifuge(value: dict[str, Any], expected: bool) -> None:
    assert compile_filter(node(value)).match(TAGS) is expected


def test_a_publication_without_tags() -> None:
    assert compile_filter(node(leaf("nex", "a"))).match(None)
    assert not compile_filter(node(leaf("eq", "a", "1"))).match(None)


INVALID = [
    ({"key": "k"}, "leaf node must have cmp set"),
    (leaf("eq"), "eq comparison requires val"),
    (leaf("eq", val="1", vals=["1"]), "eq comparison must not use vals"),
    (leaf("in"), "in comparison requires non-empty vals"),
    (leaf("in", val="1", vals=["1"]), "in comparison must not use val"),
    (leaf("ex", val="1"), "ex comparison must not use val or vals"),
    (leaf("like", val="1"), "unknown comparison operator: 'like'"),
    (leaf("eq", key="", val="1"), "leaf node requires key"),
    ({"op": "and"}, "and node must have at least one child"),
    ({"op": "not", "nodes": [leaf("ex"), leaf("ex")]}, "not node must have exactly one child"),
    ({"op": "xor", "nodes": [leaf("ex")]}, "invalid op: 'xor'"),
]


@pytest.mark.parametrize(("value", "message"), INVALID)
def test_invalid_filters_say_why(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        compile_filter(node(value))


def test_depth_limit_and_one_past() -> None:
    def nested(depth: int) -> dict[str, Any]:
        value = leaf("ex")
        for _ in range(depth - 1):
            value = {"op": "not", "nodes": [value]}
        return value

    compile_filter(node(nested(MAX_FILTER_DEPTH)))
    with pytest.raises(ValueError, match=f"expected no more than {MAX_FILTER_DEPTH}"):
        compile_filter(node(nested(MAX_FILTER_DEPTH + 1)))


def test_node_limit_and_one_past() -> None:
    compile_filter(node({"op": "or", "nodes": [leaf("ex")] * (MAX_FILTER_NODES - 1)}))
    with pytest.raises(ValueError, match=f"more than {MAX_FILTER_NODES} nodes"):
        compile_filter(node({"op": "or", "nodes": [leaf("ex")] * MAX_FILTER_NODES}))


def test_equal_filters_are_one_object() -> None:
    first = compile_filter(node({"op": "and", "nodes": [leaf("in", vals=["b", "a"]), leaf("ex")]}))
    second = compile_filter(node({"op": "and", "nodes": [leaf("in", vals=["a", "b"]), leaf("ex")]}))
    other = compile_filter(node({"op": "or", "nodes": [leaf("in", vals=["a", "b"]), leaf("ex")]}))
    assert first is second
    assert other is not first
