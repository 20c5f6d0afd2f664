"""Publication filters by tags: which publications of a channel a subscriber receives.

A subscriber sends a filter expression with its subscribe request (``tf``, the protocol's
``FilterNode``; centrifuge-js's ``tagsFilter``, centrifuge-python's ``tags_filter``) in a
namespace with ``allow_tags_filter``, and receives only the publications whose ``tags`` match,
as Centrifugo 6.4 does (https://centrifugal.dev/docs/server/publication_filtering). The
operators and their meanings are those of centrifuge's ``internal/filter``: a leaf compares
one tag (``eq``, ``neq``, ``in``, ``nin``, ``ex``, ``nex``, ``sw``, ``ew``, ``ct``, and the
decimal comparisons ``gt``, ``gte``, ``lt``, ``lte``), a node combines others (``and``,
``or``, ``not``).

Equal filters compile to one :class:`TagsFilter` object (they are interned), so fan-out
evaluates a publication once per distinct filter of a channel, however many subscribers
share it.
"""

from __future__ import annotations

import decimal
import weakref
from collections.abc import Callable, Mapping

from .codec.schema import FilterNode

__all__ = ["MAX_FILTER_DEPTH", "MAX_FILTER_NODES", "TagsFilter", "compile_filter"]

#: Nodes nested in one filter, the root counting 1.
MAX_FILTER_DEPTH = 10
#: Nodes (leaves included) in one filter.
MAX_FILTER_NODES = 64

Tags = Mapping[str, str]
_Match = Callable[[Tags], bool]

_WITH_VAL = frozenset({"eq", "neq", "sw", "ew", "ct", "gt", "gte", "lt", "lte"})
_WITH_VALS = frozenset({"in", "nin"})
_WITHOUT = frozenset({"ex", "nex"})
_DECIMAL = {"gt": (1,), "gte": (0, 1), "lt": (-1,), "lte": (-1, 0)}


class TagsFilter:
    """A compiled, validated filter; equal filters are the same object.

    Attributes:
        key: the filter's canonical form, which equal filters share.
    """

    __slots__ = ("__weakref__", "_match", "key")

    def __init__(self, key: tuple[object, ...], match: _Match) -> None:
        self.key = key
        self._match = match

    def match(self, tags: Tags | None) -> bool:
        """Whether a publication with these tags passes the filter."""
        return self._match(tags or {})


_interned: weakref.WeakValueDictionary[tuple[object, ...], TagsFilter] = weakref.WeakValueDictionary()


def compile_filter(node: FilterNode) -> TagsFilter:
    """Validate a filter as centrifuge's ``filter.Validate`` does and compile it.

    Raises:
        ValueError: the filter is malformed (an unknown operator, a missing value, a node
            without children), deeper than :data:`MAX_FILTER_DEPTH` or larger than
            :data:`MAX_FILTER_NODES`; the message says which.
    """
    count = [0]
    key, match = _compile(node, 1, count)
    compiled = _interned.get(key)
    if compiled is None:
        compiled = _interned[key] = TagsFilter(key, match)
    return compiled


def _compile(node: FilterNode, depth: int, count: list[int]) -> tuple[tuple[object, ...], _Match]:
    if depth > MAX_FILTER_DEPTH:
        raise ValueError(f"filter nests {depth} nodes deep, expected no more than {MAX_FILTER_DEPTH}")
    count[0] += 1
    if count[0] > MAX_FILTER_NODES:
        raise ValueError(f"filter has more than {MAX_FILTER_NODES} nodes")
    if node.op == "":
        return _leaf(node)
    children = node.nodes or []
    if node.op in ("and", "or"):
        if not children:
            raise ValueError(f"{node.op} node must have at least one child")
        compiled = [_compile(child, depth + 1, count) for child in children]
        matches = [match for _, match in compiled]
        key = (node.op, *(child_key for child_key, _ in compiled))
        if node.op == "and":
            return key, lambda tags: all(match(tags) for match in matches)
        return key, lambda tags: any(match(tags) for match in matches)
    if node.op == "not":
        if len(children) != 1:
            raise ValueError("not node must have exactly one child")
        child_key, child = _compile(children[0], depth + 1, count)
        return ("not", child_key), lambda tags: not child(tags)
    raise ValueError(f"invalid op: {node.op!r}")


def _leaf(node: FilterNode) -> tuple[tuple[object, ...], _Match]:
    cmp, key, val, vals = node.cmp, node.key, node.val, node.vals or []
    if not cmp:
        raise ValueError("leaf node must have cmp set")
    if cmp in _WITH_VAL:
        if not val:
            raise ValueError(f"{cmp} comparison requires val")
        if vals:
            raise ValueError(f"{cmp} comparison must not use vals")
    elif cmp in _WITH_VALS:
        if not vals:
            raise ValueError(f"{cmp} comparison requires non-empty vals")
        if val:
            raise ValueError(f"{cmp} comparison must not use val")
    elif cmp in _WITHOUT:
        if val or vals:
            raise ValueError(f"{cmp} comparison must not use val or vals")
    else:
        raise ValueError(f"unknown comparison operator: {cmp!r}")
    if not key and cmp not in _WITHOUT:
        raise ValueError("leaf node requires key")
    match: _Match
    if cmp == "eq":
        match = lambda tags: tags.get(key) == val  # noqa: E731
    elif cmp == "neq":
        match = lambda tags: tags.get(key) != val  # noqa: E731
    elif cmp in _WITH_VALS:
        # As centrifuge: a missing tag reads as "", so "in" matches it when "" is listed.
        members = frozenset(vals)
        inside = cmp == "in"
        match = lambda tags: (tags.get(key, "") in members) is inside  # noqa: E731
    elif cmp == "ex":
        match = lambda tags: key in tags  # noqa: E731
    elif cmp == "nex":
        match = lambda tags: key not in tags  # noqa: E731
    elif cmp == "sw":
        match = lambda tags: tags.get(key, "").startswith(val)  # noqa: E731
    elif cmp == "ew":
        match = lambda tags: tags.get(key, "").endswith(val)  # noqa: E731
    elif cmp == "ct":
        match = lambda tags: key in tags and val in tags[key]  # noqa: E731
    else:
        match = _decimal_match(key, val, _DECIMAL[cmp])
    return ("leaf", cmp, key, val, tuple(sorted(set(vals)))), match


def _decimal(text: str | None) -> decimal.Decimal | None:
    if text is None:
        return None
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    return value if value.is_finite() else None


def _decimal_match(key: str, val: str, accepted: tuple[int, ...]) -> _Match:
    # A tag or a bound that isn't a decimal number matches nothing, as in centrifuge.
    bound = _decimal(val)

    def match(tags: Tags) -> bool:
        value = _decimal(tags.get(key))
        if value is None or bound is None:
            return False
        return (value > bound) - (value < bound) in accepted

    return match
