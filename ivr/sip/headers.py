"""SIP header fields: an ordered multi-dict that keeps the names as they were written.

Lookups are case-insensitive and see compact forms as their long names (RFC 3261 §7.3.3), so
``headers.get("Call-ID")`` finds an ``i:`` line. List-valued fields are split on commas only
for the fields RFC 3261 defines as lists (§7.3.1): Call-ID, Date and the authentication
fields may hold commas inside one value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ivr.sip.params import split_top

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "v": "Via",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "x": "Session-Expires",
    "u": "Allow-Events",
}
_KEYS = {short: long.lower() for short, long in COMPACT_FORMS.items()}

# Fields whose grammar is a comma-separated list (RFC 3261 §20 and extensions we meet).
LIST_FIELDS = frozenset(
    {
        "via", "contact", "route", "record-route", "path", "service-route",
        "allow", "allow-events", "supported", "require", "proxy-require", "unsupported",
        "accept", "accept-encoding", "accept-language", "content-encoding", "content-language",
        "alert-info", "call-info", "error-info", "in-reply-to", "warning", "reason",
        "p-asserted-identity", "p-preferred-identity", "privacy",
    }
)  # fmt: skip


def header_key(name: str) -> str:
    """The lookup key of a field name: lower case, compact forms expanded."""
    key = name.lower()
    return _KEYS.get(key, key)


class Headers:
    """Ordered (name, value) pairs; names keep their original spelling."""

    __slots__ = ("_index", "_items", "_keys")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = list(items)
        self._keys: list[str] = [header_key(name) for name, _ in self._items]
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def from_parsed(cls, items: list[tuple[str, str]], keys: list[str]) -> Headers:
        """Adopt lists the message parser built (``keys[i]`` is ``header_key`` of item i)."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._keys = keys
        headers._index = None
        return headers

    def _values_by_key(self) -> dict[str, list[str]]:
        # Built on the first lookup and dropped on any change: a UA reads a message's fields
        # many times (validation, transaction matching, dialog) and changes it rarely.
        if self._index is None:
            index: dict[str, list[str]] = {}
            for key, (_, value) in zip(self._keys, self._items, strict=True):
                index.setdefault(key, []).append(value)
            self._index = index
        return self._index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name``, or ``default``."""
        values = self._values_by_key().get(header_key(name))
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """The values of every field line called ``name``, in order, not split on commas."""
        return list(self._values_by_key().get(header_key(name), ()))

    def values(self, name: str) -> list[str]:
        """Every value of ``name``: lines in order, each split on commas if a list field.

        Raises:
            SipParseError: An unterminated quoted string in a list field.
        """
        lines = self.get_all(name)
        if header_key(name) not in LIST_FIELDS:
            return lines
        return [part.strip(" \t") for line in lines for part in split_top(line, ",")]

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        self._items.append((name, value))
        self._keys.append(header_key(name))
        self._index = None

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one, where the first one was (or at the end)."""
        key = header_key(name)
        if key not in self._keys:
            self.add(name, value)
            return
        first = self._keys.index(key)
        self.remove(name)
        self._items.insert(first, (name, value))
        self._keys.insert(first, key)
        self._index = None

    def remove(self, name: str) -> None:
        """Drop every ``name`` line."""
        key = header_key(name)
        kept = [(item, k) for item, k in zip(self._items, self._keys, strict=True) if k != key]
        self._items = [item for item, _ in kept]
        self._keys = [k for _, k in kept]
        self._index = None

    def copy(self) -> Headers:
        """A shallow copy."""
        return Headers(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._values_by_key()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    __hash__ = None  # type: ignore[assignment]
