"""The lexical pieces of RFC 3261 §25 that every header field shares.

Tokens, quoted strings with backslash escapes, ``;name=value`` parameters and
comma-separated lists. Each function takes a header value that has already
been unfolded (folding is the parser's job, RFC 3261 §7.3.1) and works with
``str`` methods and a few compiled expressions that cannot backtrack without
bound: a character class, or a quoted string matched with possessive
quantifiers, so a hostile value costs time linear in its length.

Splitting is quote-aware: a comma inside ``"..."`` or ``<...>`` does not end a
list element, and a semicolon inside ``"..."`` does not end a parameter
(RFC 3261 §7.3.1, §25.1). Text that breaks the grammar raises ``ParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ivr.sip.errors import ParseError

WHITESPACE = " \t"

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN = re.compile(f"[{TOKEN_CHARS}]+")
# One or more tokens separated by linear white space: an unquoted display name (§20.10).
TOKENS = re.compile(f"[{TOKEN_CHARS}]+(?:[ \t]+[{TOKEN_CHARS}]+)*")
# A parameter value: token / host (an IPv6 reference adds brackets and colons) (§25.1 gen-value).
_PARAM_VALUE = re.compile(f"[{TOKEN_CHARS}\\[\\]:]+")
# The body of a quoted string: qdtext or quoted-pair, up to the closing quote (§25.1).
_QUOTED_REST = re.compile(r'(?:[^"\\]++|\\.)*+"', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_LIST_SPECIAL = re.compile(r'[,"<]')
_PARAM_SPECIAL = re.compile(r'[;"]')


def is_token(text: str) -> bool:
    """Whether ``text`` is one RFC 3261 token."""
    return TOKEN.fullmatch(text) is not None


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """The unescaped content of the quoted string opening at ``start``, and the index after it."""
    match = _QUOTED_REST.match(text, start + 1)
    if match is None:
        raise ParseError("unterminated quoted string")
    inner = text[start + 1 : match.end() - 1]
    if "\\" in inner:
        inner = _QUOTED_PAIR.sub(r"\1", inner)
    return inner, match.end()


def quote(text: str) -> str:
    """``text`` as a quoted string, escaping ``"`` and ``\\`` (RFC 3261 §25.1 quoted-pair)."""
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def unquote(value: str) -> str:
    """A parameter value without its quotes and escapes, when it is a quoted string."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner, end = read_quoted(value, 0)
        if end == len(value):
            return inner
    return value


def _skip_quoted(text: str, start: int) -> int:
    """The index after the quoted string opening at ``start`` (the end if unterminated)."""
    match = _QUOTED_REST.match(text, start + 1)
    return len(text) if match is None else match.end()


def split_list(value: str) -> list[str]:
    """The elements of a comma-separated header value, stripped (RFC 3261 §7.3.1).

    Commas inside a quoted string or between angle brackets belong to the
    element. Empty elements are kept (as ``""``) so that the element's own
    grammar can reject them: ``Via: a;;,;,,`` is malformed, not three Vias.
    """
    if '"' not in value and "<" not in value:
        if "," not in value:
            return [value.strip(WHITESPACE)]
        return [part.strip(WHITESPACE) for part in value.split(",")]
    parts: list[str] = []
    begin = position = 0
    while True:
        match = _LIST_SPECIAL.search(value, position)
        if match is None:
            break
        char, at = match.group(), match.start()
        if char == ",":
            parts.append(value[begin:at].strip(WHITESPACE))
            begin = position = at + 1
        elif char == "<":
            close = value.find(">", at + 1)
            position = len(value) if close < 0 else close + 1
        else:
            position = _skip_quoted(value, at)
    parts.append(value[begin:].strip(WHITESPACE))
    return parts


def _split_params(text: str) -> list[str]:
    """``text`` split at semicolons that are not inside a quoted string."""
    if '"' not in text:
        return text.split(";")
    parts: list[str] = []
    begin = position = 0
    while True:
        match = _PARAM_SPECIAL.search(text, position)
        if match is None:
            break
        if match.group() == ";":
            parts.append(text[begin : match.start()])
            begin = position = match.start() + 1
        else:
            position = _skip_quoted(text, match.start())
    parts.append(text[begin:])
    return parts


def parse_params(text: str) -> Params:
    """The parameters of ``name[=value];name[=value]...`` (the text after the first ``;``).

    White space is allowed around ``;`` and ``=`` (RFC 3261 §25.1 SEMI, EQUAL).
    A quoted value is kept with its quotes (``unquote`` removes them), so it
    is written back as it came.
    """
    items: list[tuple[str, str | None]] = []
    for part in _split_params(text):
        name, equals, value = part.partition("=")
        name = name.strip(WHITESPACE)
        if not name:
            raise ParseError("empty parameter")
        if TOKEN.fullmatch(name) is None:
            raise ParseError(f"invalid parameter name {name!r}")
        if not equals:
            items.append((name, None))
            continue
        value = value.strip(WHITESPACE)
        if value.startswith('"'):
            match = _QUOTED_REST.match(value, 1)
            if match is None or match.end() != len(value):
                raise ParseError(f"invalid quoted value for parameter {name!r}")
        elif _PARAM_VALUE.fullmatch(value) is None:
            raise ParseError(f"invalid value for parameter {name!r}")
        items.append((name, value))
    return Params(items)


class Params:
    """An ordered, immutable set of ``;name=value`` parameters; names compare case-insensitively.

    A parameter without a value (``;lr``) maps to ``None``: test presence with
    ``in``, read values with ``get``. The names keep their spelling for
    output; values are compared as written (a ``tag`` is case-sensitive).
    """

    __slots__ = ("_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._items = tuple(items)
        index: dict[str, int] = {}
        for position, (name, _) in enumerate(self._items):
            index.setdefault(name.lower(), position)
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first parameter called ``name`` (``None`` when it has no value)."""
        position = self._index.get(name.lower())
        return default if position is None else self._items[position][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def _folded(self) -> tuple[tuple[str, str | None], ...]:
        return tuple((name.lower(), value) for name, value in self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return self._folded() == other._folded()

    def __hash__(self) -> int:
        return hash(self._folded())

    def __repr__(self) -> str:
        return f"Params({list(self._items)!r})"

    def __str__(self) -> str:
        """The parameters as written on the wire, each with its leading ``;``."""
        return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self._items)

    def lowered(self) -> dict[str, str | None]:
        """The parameters as a dict keyed by lower-case name (the first of each name)."""
        return {name.lower(): value for name, value in reversed(self._items)}

    def with_param(self, name: str, value: str | None = None) -> Params:
        """These parameters with ``name`` set to ``value`` (replaced in place, or appended)."""
        key = name.lower()
        if key not in self._index:
            return Params((*self._items, (name, value)))
        return Params((n, value) if n.lower() == key else (n, v) for n, v in self._items)

    def without(self, name: str) -> Params:
        """These parameters without any called ``name``."""
        key = name.lower()
        return Params((n, v) for n, v in self._items if n.lower() != key)


NO_PARAMS = Params()
