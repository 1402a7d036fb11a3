"""Typed values of the header fields the transaction and dialog layers read.

``Via`` (RFC 3261 §20.42, RFC 3581 rport), ``NameAddress`` for From, To,
Contact, Route and Record-Route (§20.10, §20.20, §20.39), ``CSeq`` (§20.16)
and ``MediaType`` (Content-Type, §20.15). Each comes with a ``parse_*``
function taking one unfolded header value (one element of a comma list) and
raising ``ParseError`` when it breaks the grammar; ``str()`` writes the value
back in canonical form, ready for a header field.

The grammar allows white space around ``/``, ``;``, ``=`` and ``:`` in most
places (RFC 3261 §25.1 SLASH, SEMI, EQUAL, COLON), and RFC 4475 §3.1.1.1
exercises all of them; it does not allow it inside ``<...>`` (RFC 4475
§3.1.2.14), nor unquoted separators in a display name (§3.1.2.15).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.sip.errors import ParseError
from ivr.sip.grammar import (
    NO_PARAMS,
    TOKEN,
    TOKENS,
    WHITESPACE,
    Params,
    is_token,
    parse_params,
    quote,
    read_quoted,
)
from ivr.sip.uri import Uri, format_host, parse_hostport, parse_uri

MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31
BRANCH_MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

# RFC 3261 §25.1 word: the characters of a Call-ID on either side of its optional "@".
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(f"{_WORD}(?:@{_WORD})?")
_TRANSPORT_AND_REST = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+(.*)", re.DOTALL)
_ANY_WHITESPACE = re.compile(r"[ \t]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via value: where a response to the request goes back (RFC 3261 §18.2.2)."""

    transport: str  # upper case: UDP, TCP, TLS, SCTP, WS, WSS...
    host: str  # an IPv6 address without brackets
    port: int | None = None
    params: Params = NO_PARAMS
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The port filled in by the server (RFC 3581 §4), when there is one."""
        value = self.params.get("rport")
        return None if value is None else int(value)

    @property
    def wants_rport(self) -> bool:
        """Whether the client asked for symmetric response routing (RFC 3581 §3)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def is_rfc3261_branch(self) -> bool:
        """Whether the branch starts with the magic cookie and has something after it."""
        branch = self.branch
        return (
            branch is not None
            and branch.startswith(BRANCH_MAGIC_COOKIE)
            and len(branch) > len(BRANCH_MAGIC_COOKIE)
        )

    def with_param(self, name: str, value: str | None = None) -> Via:
        """This Via with ``name`` set (``received``, ``rport`` on arrival: RFC 3261 §18.2.1)."""
        return Via(
            transport=self.transport,
            host=self.host,
            port=self.port,
            params=self.params.with_param(name, value),
            protocol=self.protocol,
        )

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{self.params}"


def parse_via(text: str) -> Via:
    """One Via value: ``SIP / 2.0 / UDP host[:port] *(; param)``."""
    pieces = text.split("/", 2)
    if len(pieces) != 3:
        raise ParseError("Via without a sent-protocol")
    name, version = pieces[0].strip(WHITESPACE), pieces[1].strip(WHITESPACE)
    if not (is_token(name) and is_token(version)):
        raise ParseError("invalid Via sent-protocol")
    match = _TRANSPORT_AND_REST.fullmatch(pieces[2].lstrip(WHITESPACE))
    if match is None:
        raise ParseError("Via without a transport and sent-by")
    transport, rest = match.group(1).upper(), match.group(2)
    sent_by, semicolon, params_text = rest.partition(";")
    sent_by = sent_by.strip(WHITESPACE)
    if not sent_by:
        raise ParseError("Via without a sent-by")
    if _ANY_WHITESPACE.search(sent_by):  # COLON = SWS ":" SWS
        sent_by = "".join(sent_by.split())
    host, port = parse_hostport(sent_by)
    params = parse_params(params_text) if semicolon else NO_PARAMS
    if semicolon:
        _check_via_params(params)
    return Via(
        transport=transport,
        host=host,
        port=port,
        params=params,
        protocol=f"{name.upper()}/{version}",
    )


def _check_via_params(params: Params) -> None:
    if "branch" in params and not params.get("branch"):
        raise ParseError("Via branch without a value")
    rport = params.get("rport")
    if rport is not None and not (
        len(rport) <= 5 and rport.isascii() and rport.isdigit() and 0 < int(rport) <= 65535
    ):
        raise ParseError("invalid Via rport")
    ttl = params.get("ttl")
    if ttl is not None and not (
        len(ttl) <= 3 and ttl.isascii() and ttl.isdigit() and int(ttl) <= 255
    ):
        raise ParseError("invalid Via ttl")


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddress:
    """``"Display" <uri>;params``: From, To, Contact, Route, Record-Route (RFC 3261 §20.10)."""

    uri: Uri
    display_name: str | None = None  # unquoted and unescaped
    params: Params = NO_PARAMS  # header parameters (outside the brackets)

    @property
    def tag(self) -> str | None:
        """The dialog tag of a From or To (RFC 3261 §19.3)."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddress:
        return NameAddress(
            uri=self.uri, display_name=self.display_name, params=self.params.with_param("tag", tag)
        )

    def __str__(self) -> str:
        # Always the name-addr form: a URI with ";", "?" or "," needs the brackets (§20.10).
        if self.display_name is None:
            return f"<{self.uri}>{self.params}"
        name = self.display_name
        if not TOKENS.fullmatch(name):
            name = quote(name)
        return f"{name} <{self.uri}>{self.params}"


def parse_name_address(text: str, *, brackets_required: bool = False) -> NameAddress:
    """A name-addr or addr-spec, with its header parameters (RFC 3261 §20.10, §25.1).

    ``brackets_required`` is for Route and Record-Route, which admit only the
    name-addr form (§25.1 route-param, rec-route).
    """
    text = text.strip(WHITESPACE)
    if not text:
        raise ParseError("empty address")
    if text[0] == '"':
        display, end = read_quoted(text, 0)
        rest = text[end:].lstrip(WHITESPACE)
        if not rest.startswith("<"):
            raise ParseError("display name without <uri>")
        return _bracketed(display, rest)
    open_at = text.find("<")
    if open_at >= 0:
        before = text[:open_at].strip(WHITESPACE)
        if not before:
            return _bracketed(None, text[open_at:])
        if TOKENS.fullmatch(before):
            return _bracketed(" ".join(before.split()), text[open_at:])
        if '"' not in before:  # a quoted parameter of an addr-spec may hold a "<"
            raise ParseError("invalid characters in an unquoted display name")
    if brackets_required:
        raise ParseError("address must be enclosed in <>")
    uri_text, semicolon, params_text = text.partition(";")
    uri_text = uri_text.rstrip(WHITESPACE)
    # §20.10: a URI holding ",", "?" or ";" must be in brackets; an addr-spec holds none.
    if any(char in uri_text for char in ' \t,?<>"'):
        raise ParseError("addr-spec with characters that need angle brackets")
    uri = parse_uri(uri_text)
    params = parse_params(params_text) if semicolon else NO_PARAMS
    return NameAddress(uri=uri, params=params)


def _bracketed(display: str | None, text: str) -> NameAddress:
    """``<uri>`` followed by optional parameters; ``text`` starts at the ``<``."""
    close = text.find(">")
    if close < 0:
        raise ParseError("unterminated <uri>")
    uri_text = text[1:close]
    if not uri_text or uri_text[0] in WHITESPACE or uri_text[-1] in WHITESPACE:
        raise ParseError("white space inside <uri>")  # RFC 4475 §3.1.2.14
    uri = parse_uri(uri_text)
    rest = text[close + 1 :].strip(WHITESPACE)
    if not rest:
        return NameAddress(uri=uri, display_name=display)
    if rest[0] != ";":
        raise ParseError("unexpected text after <uri>")
    return NameAddress(uri=uri, display_name=display, params=parse_params(rest[1:]))


@dataclass(frozen=True, slots=True, kw_only=True)
class CSeq:
    """The command sequence: a number and the method it belongs to (RFC 3261 §20.16)."""

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    """``1*DIGIT LWS Method``; the number must fit in 31 bits (RFC 3261 §8.1.1.5)."""
    pieces = text.split()
    if len(pieces) != 2:
        raise ParseError("CSeq is not a number and a method")
    digits, method = pieces
    if not (digits.isascii() and digits.isdigit()):
        raise ParseError("CSeq number is not a number")
    if len(digits.lstrip("0")) > 10 or int(digits) > MAX_CSEQ:
        raise ParseError("CSeq number out of range")
    if not is_token(method):
        raise ParseError("CSeq method is not a token")
    return CSeq(number=int(digits), method=method)


def parse_call_id(text: str) -> str:
    """``word ["@" word]`` (RFC 3261 §20.8); compared case-sensitively, byte for byte."""
    if _CALL_ID.fullmatch(text) is None:
        raise ParseError("invalid Call-ID")
    return text


def parse_scalar(text: str, what: str, limit: int) -> int:
    """A decimal header value (Max-Forwards, Expires, Content-Length…) no larger than ``limit``."""
    if not (text.isascii() and text.isdigit()):
        raise ParseError(f"{what} is not a number")
    if len(text.lstrip("0")) > len(str(limit)) or int(text) > limit:
        raise ParseError(f"{what} out of range")
    return int(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaType:
    """``type/subtype;params`` of Content-Type or one Accept range (RFC 3261 §20.1, §20.15)."""

    type: str  # lower case
    subtype: str  # lower case
    params: Params = NO_PARAMS

    @property
    def essence(self) -> str:
        """``type/subtype``, lower case: what matching compares."""
        return f"{self.type}/{self.subtype}"

    def matches(self, essence: str) -> bool:
        """Whether this media range (``*/*``, ``type/*`` or exact) covers ``essence``."""
        kind, _, sub = essence.lower().partition("/")
        return self.type in ("*", kind) and self.subtype in ("*", sub)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params}"


def parse_media_type(text: str) -> MediaType:
    """``m-type SLASH m-subtype *(SEMI m-parameter)`` (RFC 3261 §25.1)."""
    essence, semicolon, params_text = text.partition(";")
    kind, slash, sub = essence.partition("/")
    kind, sub = kind.strip(WHITESPACE), sub.strip(WHITESPACE)
    if not slash or TOKEN.fullmatch(kind) is None or TOKEN.fullmatch(sub) is None:
        raise ParseError(f"invalid media type {essence.strip()!r}")
    params = parse_params(params_text) if semicolon else NO_PARAMS
    return MediaType(type=kind.lower(), subtype=sub.lower(), params=params)


__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "MAX_CSEQ",
    "CSeq",
    "MediaType",
    "NameAddress",
    "Via",
    "parse_call_id",
    "parse_cseq",
    "parse_media_type",
    "parse_name_address",
    "parse_scalar",
    "parse_via",
]
