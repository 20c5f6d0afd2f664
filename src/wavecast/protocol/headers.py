"""HTTP headers: an ordered, case-insensitive multi-map."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

__all__ = ["Headers", "HeadersLike"]

_FORBIDDEN = frozenset("\r\n\0")


class Headers:
    """Ordered HTTP headers whose names compare case-insensitively.

    ``headers[name]`` returns the only value of ``name``, and raises :exc:`KeyError` when it
    is missing or :exc:`ValueError` when it appears several times; ``get_all(name)`` returns
    every value in order. Items keep the case they arrived with.

    Lookups go through an index by lowercase name, built on the first lookup;
    :meth:`compact` drops it, so that the headers a connection keeps for its whole life
    (its handshake request) cost only their names and values, kept in one flat list.
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: HeadersLike | None = None) -> None:
        # name, value, name, value, ...: no tuple per header.
        self._items: list[str] = []
        self._index: dict[str, list[str]] | None = None
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping | Headers) else items
            for name, value in pairs:
                self.add(name, value)

    @classmethod
    def _from_flat(cls, items: list[str]) -> Headers:
        """Take ``[name, value, name, value, ...]`` as it is: the caller checked the characters."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._index = None
        return headers

    def add(self, name: str, value: str) -> None:
        """Append a header, keeping any earlier value of the same name.

        Raises:
            ValueError: if the name or value holds a CR, LF or NUL, which would let it
                inject other headers.
        """
        if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
            raise ValueError(f"invalid character in header {name!r}")
        self._items += (name, value)
        if self._index is not None:
            self._index.setdefault(name.lower(), []).append(value)

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = self._index = {}
            for name, value in self._pairs():
                index.setdefault(name.lower(), []).append(value)
        return index

    def compact(self) -> None:
        """Drop the lookup index until the next lookup needs it again."""
        self._index = None

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value``."""
        if name.lower() in self._lookup():
            del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        del self._lookup()[key]
        self._items = [item for n, v in self._pairs() if n.lower() != key for item in (n, v)]

    def __getitem__(self, name: str) -> str:
        values = self._lookup()[name.lower()]
        if len(values) > 1:
            raise ValueError(f"{name} appears {len(values)} times")
        return values[0]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the only value of ``name``, or ``default`` when it is missing."""
        values = self._lookup().get(name.lower())
        if not values:
            return default
        if len(values) > 1:
            raise ValueError(f"{name} appears {len(values)} times")
        return values[0]

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``, in order; an empty list when it is missing."""
        return list(self._lookup().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._items[0::2])

    def __len__(self) -> int:
        return len(self._items) // 2

    def items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair in order."""
        return list(self._pairs())

    def copy(self) -> Headers:
        return Headers(self._pairs())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def serialize(self) -> bytes:
        """Return the header lines, each ending with CRLF."""
        return "".join(f"{name}: {value}\r\n" for name, value in self._pairs()).encode()

    def _pairs(self) -> Iterator[tuple[str, str]]:
        items = self._items
        return zip(items[0::2], items[1::2], strict=True)


HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
