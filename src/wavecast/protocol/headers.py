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
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: HeadersLike | None = None) -> None:
        self._items: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping | Headers) else items
            for name, value in pairs:
                self.add(name, value)

    def add(self, name: str, value: str) -> None:
        """Append a header, keeping any earlier value of the same name.

        Raises:
            ValueError: if the name or value holds a CR, LF or NUL, which would let it
                inject other headers.
        """
        if _FORBIDDEN.intersection(name) or _FORBIDDEN.intersection(value):
            raise ValueError(f"invalid character in header {name!r}")
        self._items.append((name, value))
        self._index.setdefault(name.lower(), []).append(value)

    def __setitem__(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with ``value``."""
        if name.lower() in self._index:
            del self[name]
        self.add(name, value)

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        del self._index[key]
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def __getitem__(self, name: str) -> str:
        values = self._index[name.lower()]
        if len(values) > 1:
            raise ValueError(f"{name} appears {len(values)} times")
        return values[0]

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the only value of ``name``, or ``default`` when it is missing."""
        values = self._index.get(name.lower())
        if not values:
            return default
        if len(values) > 1:
            raise ValueError(f"{name} appears {len(values)} times")
        return values[0]

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name``, in order; an empty list when it is missing."""
        return list(self._index.get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, str]]:
        """Return every ``(name, value)`` pair in order."""
        return list(self._items)

    def copy(self) -> Headers:
        return Headers(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def serialize(self) -> bytes:
        """Return the header lines, each ending with CRLF."""
        return "".join(f"{name}: {value}\r\n" for name, value in self._items).encode()


HeadersLike = Headers | Mapping[str, str] | Iterable[tuple[str, str]]
