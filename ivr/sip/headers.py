"""Header fields: an ordered multimap with SIP's names, and typed reads of it.

Theory of operation
-------------------
``Headers`` keeps the fields of one message in order as (name, value) pairs.
Names are normalised on the way in: a compact form becomes its long name
(``v`` → ``Via``, RFC 3261 §7.3.3) and a known name gets its canonical
spelling (``cALL-iD`` → ``Call-ID``); look-ups ignore case (§7.3.1). An
unknown name keeps the spelling it came with and is compared case-insensitively.

A field whose grammar is a comma list (Via, Contact, Route, Allow…) is stored
one element per entry: ``Via: a, b`` and two ``Via`` lines give the same
``get_all("Via")``, as §7.3.1 says they mean the same. Fields whose values may
contain commas of their own (WWW-Authenticate, Date, User-Agent, any unknown
field) are never split. Writing a message puts each entry on its own line,
which §7.3.1 makes equivalent.

Typed accessors (``vias()``, ``cseq()``, ``to_address()``…) parse on first use
and cache the result until the fields change; a value that breaks its grammar
raises ``ParseError`` (status 400). The parser calls the ones a response needs
(Via, From, To, Call-ID, CSeq) before returning a message, so those never
raise on a parsed message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar, cast

from ivr.sip.errors import ParseError
from ivr.sip.fields import (
    CSeq,
    MediaType,
    NameAddress,
    Via,
    parse_call_id,
    parse_cseq,
    parse_media_type,
    parse_name_address,
    parse_scalar,
    parse_via,
)
from ivr.sip.grammar import is_token

T = TypeVar("T")

# RFC 3261 §7.3.3 and the IANA SIP header field registry.
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",  # RFC 3841
    "b": "Referred-By",  # RFC 3892
    "c": "Content-Type",
    "d": "Request-Disposition",  # RFC 3841
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",  # RFC 3841
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",  # RFC 4474
    "o": "Event",  # RFC 6665
    "r": "Refer-To",  # RFC 3515
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",  # RFC 6665
    "v": "Via",
    "x": "Session-Expires",  # RFC 4028
    "y": "Identity",  # RFC 8224
}

_OTHER_NAMES = (
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authentication-Info",
    "Authorization",
    "Call-Info",
    "Content-Disposition",
    "Content-Language",
    "Content-Transfer-Encoding",
    "CSeq",
    "Date",
    "Error-Info",
    "Expires",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Replaces",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Service-Route",
    "SIP-ETag",
    "SIP-If-Match",
    "Subscription-State",
    "Timestamp",
    "Unsupported",
    "User-Agent",
    "Warning",
    "WWW-Authenticate",
)

_CANONICAL: dict[str, str] = {name.lower(): name for name in _OTHER_NAMES}
_CANONICAL.update({name.lower(): name for name in COMPACT_FORMS.values()})
_CANONICAL.update(COMPACT_FORMS)
# The spellings seen on the wire almost always: skip lower() for them.
_SPELLINGS: dict[str, str] = {name: name for name in _CANONICAL.values()}
_SPELLINGS.update(COMPACT_FORMS)
_SPELLINGS.update({letter.upper(): name for letter, name in COMPACT_FORMS.items()})

# Fields whose grammar is a comma-separated list (RFC 3261 §7.3.1, §25.1), by lower-case name.
LIST_FIELDS = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Contact",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "P-Asserted-Identity",
        "P-Preferred-Identity",
        "Path",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Reject-Contact",
        "Require",
        "Route",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    )
)

MAX_EXPIRES = 2**32 - 1  # RFC 3261 §20.19: delta-seconds up to (2**32)-1
MAX_MAX_FORWARDS = 255  # RFC 3261 §20.22


def canonical_name(name: str) -> str:
    """The long, canonically spelt form of a header name; an unknown name as given."""
    canonical = _SPELLINGS.get(name)
    if canonical is None:
        canonical = _CANONICAL.get(name.lower(), name)
    return canonical


def _check_field(name: str, value: str) -> None:
    if not is_token(name):
        raise ValueError(f"invalid header name {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"line break in the value of {name}")


class Headers:
    """The header fields of one message, in order; names compare case-insensitively."""

    __slots__ = ("_cache", "_keys", "_names", "_values")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._names: list[str] = []
        self._keys: list[str] = []  # lower-case canonical names, parallel to _names
        self._values: list[str] = []
        self._cache: dict[str, object] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def _from_parser(cls, names: list[str], keys: list[str], values: list[str]) -> Headers:
        """Fields the parser has already normalised and checked."""
        headers = cls.__new__(cls)
        headers._names, headers._keys, headers._values = names, keys, values
        headers._cache = {}
        return headers

    # -- the multimap ---------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        try:
            return self._values[self._keys.index(canonical_name(name).lower())]
        except ValueError:
            return default

    def first(self, name: str) -> str:
        """The first value of ``name``; ``KeyError`` when there is none."""
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (one per list element for a comma-list field)."""
        key = canonical_name(name).lower()
        if key not in self._keys:
            return []
        return [value for k, value in zip(self._keys, self._values, strict=True) if k == key]

    def count(self, name: str) -> int:
        return self._keys.count(canonical_name(name).lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and canonical_name(name).lower() in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self._names, self._values, strict=True)

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._keys == other._keys and self._values == other._values

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    def copy(self) -> Headers:
        return Headers._from_parser(list(self._names), list(self._keys), list(self._values))

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field; with ``first``, put it before the others of its name (a new Via),
        or at the top when there are none."""
        _check_field(name, value)
        name = canonical_name(name)
        key = name.lower()
        index = len(self._keys)
        if first:
            index = next((i for i, k in enumerate(self._keys) if k == key), 0)
        self._names.insert(index, name)
        self._keys.insert(index, key)
        self._values.insert(index, value)
        self._cache.clear()

    def replace(self, name: str, values: str | Iterable[str]) -> None:
        """Replace every field called ``name`` with ``values``, where the first one stood."""
        new = [values] if isinstance(values, str) else list(values)
        for value in new:
            _check_field(name, value)
        name = canonical_name(name)
        key = name.lower()
        positions = [i for i, k in enumerate(self._keys) if k == key]
        at = positions[0] if positions else len(self._keys)
        for i in reversed(positions):
            del self._names[i], self._keys[i], self._values[i]
        self._names[at:at] = [name] * len(new)
        self._keys[at:at] = [key] * len(new)
        self._values[at:at] = new
        self._cache.clear()

    def remove(self, name: str) -> int:
        """Remove every field called ``name``; how many there were."""
        key = canonical_name(name).lower()
        keep = [i for i, k in enumerate(self._keys) if k != key]
        removed = len(self._keys) - len(keep)
        if removed:
            self._names = [self._names[i] for i in keep]
            self._keys = [self._keys[i] for i in keep]
            self._values = [self._values[i] for i in keep]
            self._cache.clear()
        return removed

    def remove_first(self, name: str) -> str | None:
        """Remove the first field called ``name`` (a proxy's own Via, §16.7) and return it."""
        key = canonical_name(name).lower()
        for index, candidate in enumerate(self._keys):
            if candidate == key:
                del self._names[index], self._keys[index]
                value = self._values.pop(index)
                self._cache.clear()
                return value
        return None

    # -- typed reads ----------------------------------------------------------

    def _cached(self, key: str, build: Callable[[], T]) -> T:
        try:
            return cast(T, self._cache[key])
        except KeyError:
            value = build()
            self._cache[key] = value
            return value

    def vias(self) -> tuple[Via, ...]:
        """Every Via value, topmost first (RFC 3261 §20.42)."""
        return self._cached("via", lambda: tuple(parse_via(v) for v in self.get_all("Via")))

    def top_via(self) -> Via | None:
        vias = self.vias()
        return vias[0] if vias else None

    def _address(self, name: str) -> NameAddress | None:
        value = self.get(name)
        return None if value is None else parse_name_address(value)

    def from_address(self) -> NameAddress | None:
        return self._cached("from", lambda: self._address("From"))

    def to_address(self) -> NameAddress | None:
        return self._cached("to", lambda: self._address("To"))

    def call_id(self) -> str | None:
        value = self.get("Call-ID")
        return None if value is None else parse_call_id(value)

    def cseq(self) -> CSeq | None:
        def build() -> CSeq | None:
            value = self.get("CSeq")
            return None if value is None else parse_cseq(value)

        return self._cached("cseq", build)

    def _scalar(self, name: str, limit: int) -> int | None:
        value = self.get(name)
        return None if value is None else parse_scalar(value, name, limit)

    def max_forwards(self) -> int | None:
        return self._scalar("Max-Forwards", MAX_MAX_FORWARDS)

    def expires(self) -> int | None:
        return self._scalar("Expires", MAX_EXPIRES)

    def content_length(self) -> int | None:
        return self._scalar("Content-Length", MAX_EXPIRES)

    def content_type(self) -> MediaType | None:
        value = self.get("Content-Type")
        return None if value is None else parse_media_type(value)

    def accept(self) -> tuple[MediaType, ...]:
        """The media ranges of Accept (RFC 3261 §20.1); an empty element is skipped."""
        return tuple(parse_media_type(v) for v in self.get_all("Accept") if v)

    def contacts(self) -> tuple[NameAddress, ...]:
        """Every Contact address; a wildcard ``*`` is reported by ``contact_is_wildcard``."""

        def build() -> tuple[NameAddress, ...]:
            values = self.get_all("Contact")
            if "*" in values:
                if len(values) > 1:
                    raise ParseError("Contact * together with other contacts")  # §10.2.2
                return ()
            return tuple(parse_name_address(v) for v in values)

        return self._cached("contact", build)

    def contact_is_wildcard(self) -> bool:
        """Whether Contact is ``*`` (a REGISTER removing every binding, RFC 3261 §10.2.2)."""
        return self.get_all("Contact") == ["*"]

    def routes(self) -> tuple[NameAddress, ...]:
        return self._cached(
            "route",
            lambda: tuple(
                parse_name_address(v, brackets_required=True) for v in self.get_all("Route")
            ),
        )

    def record_routes(self) -> tuple[NameAddress, ...]:
        return self._cached(
            "record-route",
            lambda: tuple(
                parse_name_address(v, brackets_required=True) for v in self.get_all("Record-Route")
            ),
        )

    def option_tags(self, name: str) -> tuple[str, ...]:
        """The tokens of Require, Proxy-Require, Supported, Unsupported or Allow."""
        tags: list[str] = []
        for value in self.get_all(name):
            if not value:
                continue
            if not is_token(value):
                raise ParseError(f"invalid option tag in {canonical_name(name)}")
            tags.append(value)
        return tuple(tags)
