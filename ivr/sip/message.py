"""SIP messages: the data model, the parser and the serializer (RFC 3261 §7, §18.3, §25).

Theory of operation
-------------------
``parse_message`` reads one message from a UDP datagram (or, ``stream=True``,
one message cut out of a TCP byte stream by ``ivr.sip.stream.StreamFramer``)
in a single pass over its lines:

1. Bound the work: a message over ``MAX_MESSAGE_SIZE`` is refused before it is
   read; the header block is bounded in lines (``MAX_HEADER_LINES``), each
   field in length (``MAX_LINE_LENGTH``) and the Via list in elements
   (``MAX_VIAS``). A bound exceeded is a ``ParseError`` with status 513.
2. Split the header block from the body at the first empty line; CRLF and bare
   LF both end a line, CRLFs before the start line are ignored (§7.5). The
   head is decoded as UTF-8 (undecodable bytes survive as surrogate escapes, so
   they are written back unchanged); the body stays bytes.
3. Read the start line, then the header fields: continuation lines are folded
   into the field above (§7.3.1), names normalised, comma lists split
   (``ivr.sip.headers``). A malformed line does not stop the reading, so that
   the error can carry Via, From, To, Call-ID and CSeq and be answered (§8.2.6.2).
4. Frame the body by Content-Length (§18.3, §20.14): on a datagram, a missing
   Content-Length means the rest of the datagram, a larger one is an error and
   anything after the body is ignored (RFC 4475 §3.1.1.8, §3.1.2.2); on a
   stream it is mandatory. Conflicting values are an error (RFC 4475 §3.3.9).
5. Parse the fields a response and a transaction need — every Via, From, To,
   Call-ID, CSeq — so a message that comes back from here has them well formed.
   Other fields are checked when read (``Headers`` accessors) or by
   ``ivr.sip.checks.check_request``.

``serialize`` writes the canonical form: CRLF line ends, long header names,
one field per line, Content-Length rewritten from the body. ``response_to``
builds a response the way a UAS must (§8.2.6).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ivr.sip.errors import ParseError
from ivr.sip.fields import CSeq, NameAddress, Via, parse_name_address
from ivr.sip.grammar import TOKEN, split_list
from ivr.sip.headers import _SPELLINGS, LIST_FIELDS, Headers, canonical_name
from ivr.sip.uri import Uri, parse_uri

MAX_MESSAGE_SIZE = 65535  # octets: the largest UDP payload, and our bound on a TCP message
MAX_LINE_LENGTH = 8192  # octets in the start line or in one header field (after unfolding)
MAX_HEADER_LINES = 256  # physical lines in the header block
MAX_VIAS = 70  # Via elements; more than Max-Forwards' usual 70 hops is no honest request

SIP_VERSION = "SIP/2.0"
# The header fields a response copies from its request (RFC 3261 §8.2.6.2).
RESPONSE_FIELDS = ("Via", "From", "To", "Call-ID", "CSeq")
_RESPONSE_KEYS = frozenset(name.lower() for name in RESPONSE_FIELDS)

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FOLD = re.compile(r"\n[ \t]+")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def _same_message_headers(a: Headers, b: Headers) -> bool:
    """Whether two header sets are equal but for Content-Length, which the body decides."""
    return [f for f in a if f[0] != "Content-Length"] == [f for f in b if f[0] != "Content-Length"]


class _Accessors:
    """The header reads the transaction and dialog layers make on every message."""

    __slots__ = ()
    headers: Headers

    @property
    def vias(self) -> tuple[Via, ...]:
        return self.headers.vias()

    @property
    def top_via(self) -> Via | None:
        return self.headers.top_via()

    @property
    def cseq(self) -> CSeq | None:
        return self.headers.cseq()

    @property
    def call_id(self) -> str | None:
        return self.headers.call_id()

    @property
    def from_address(self) -> NameAddress | None:
        return self.headers.from_address()

    @property
    def to_address(self) -> NameAddress | None:
        return self.headers.to_address()

    def __bytes__(self) -> bytes:
        return serialize(self)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Request(_Accessors):
    """A SIP request; equal to another when all but the Content-Length field match."""

    method: str  # case-sensitive (RFC 3261 §7.1)
    uri: Uri
    headers: Headers
    body: bytes = b""

    def __post_init__(self) -> None:
        if TOKEN.fullmatch(self.method) is None:
            raise ValueError(f"invalid method {self.method!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and self.uri == other.uri
            and self.body == other.body
            and _same_message_headers(self.headers, other.headers)
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Response(_Accessors):
    """A SIP response; equal to another when all but the Content-Length field match."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 699:
            raise ValueError(f"status {self.status} out of range")
        if "\r" in self.reason or "\n" in self.reason:
            raise ValueError("line break in a reason phrase")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.status == other.status
            and self.reason == other.reason
            and self.body == other.body
            and _same_message_headers(self.headers, other.headers)
        )


Message = Request | Response


# -- parsing ------------------------------------------------------------------


@dataclass(slots=True)
class _Head:
    """What the header block said, before the body is framed."""

    headers: Headers
    is_request: bool
    method: str = ""
    uri: Uri | None = None
    status: int = 0
    reason: str = ""
    content_length: int | None = None
    framing_error: bool = False  # Content-Length repeated or garbled: the body cannot be found
    error: ParseError | None = None  # the first thing found wrong, with its context


def _with_context(error: ParseError, headers: Headers, is_request: bool) -> ParseError:
    """``error`` carrying the fields a response needs, and whether they are all there."""
    names, keys, values = [], [], []
    for name, value in headers:
        key = name.lower()
        if key in _RESPONSE_KEYS:
            names.append(name)
            keys.append(key)
            values.append(value)
    context = Headers._from_parser(names, keys, values)
    respondable = is_request and _RESPONSE_KEYS.issubset(keys)
    return ParseError(error.reason, status=error.status, headers=context, respondable=respondable)


def _read_start_line(line: str, head: _Head) -> None:
    """Fill ``head`` from the start line; a fault is recorded in ``head.error``."""
    first, _, rest = line.partition(" ")
    if "/" in first:  # a method is a token, and a token has no "/": a Status-Line (§7.2)
        head.is_request = False
        code, _, reason = rest.partition(" ")
        if first.upper() != SIP_VERSION:
            head.error = ParseError(f"unsupported version {first[:20]!r}", status=505)
        elif not (len(code) == 3 and code.isascii() and code.isdigit() and code[0] in "123456"):
            head.error = ParseError(f"invalid status code {code[:20]!r}")
        else:
            head.status, head.reason = int(code), reason
        return
    parts = line.split(" ")
    # §7.1: Method SP Request-URI SP SIP-Version, single spaces (RFC 4475 §3.1.2.7-10).
    if len(parts) != 3 or not all(parts):
        head.error = ParseError("malformed Request-Line")
        return
    method, uri_text, version = parts
    if TOKEN.fullmatch(method) is None:
        head.error = ParseError("method is not a token")
    elif _VERSION.fullmatch(version) is None:
        head.error = ParseError("malformed SIP-Version")
    elif version.upper() != SIP_VERSION:
        head.error = ParseError(f"unsupported version {version!r}", status=505)  # §8.2 / §21.5.6
    else:
        try:
            head.uri = parse_uri(uri_text)
        except ParseError as error:
            head.error = ParseError(f"Request-URI: {error.reason}")
        head.method = method


def _read_head(text: str) -> _Head:
    """The start line and header fields of a header block (without its empty line)."""
    if text.count("\n") >= MAX_HEADER_LINES:
        raise ParseError("too many header lines", status=513)
    field_error: ParseError | None = None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:  # CR is only ever half of a line end
            field_error = ParseError("bare CR in the header block")
            text = text.replace("\r", " ")
    start, _, block = text.partition("\n")
    if block[:1] in (" ", "\t"):  # nothing above to continue
        field_error = field_error or ParseError("continuation line without a field")
        block = block.lstrip(" \t")
    if "\n " in block or "\n\t" in block:
        block = _FOLD.sub(" ", block)  # §7.3.1: a folded line is the same as one SP
    lines = block.split("\n") if block else []
    if len(start) > MAX_LINE_LENGTH or (lines and max(map(len, lines)) > MAX_LINE_LENGTH):
        raise ParseError("header line too long", status=513)
    if not start:
        raise ParseError("empty start line")
    head = _Head(headers=Headers(), is_request=True)
    _read_start_line(start, head)

    names: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    for line in lines:
        name, colon, value = line.partition(":")
        canonical = _SPELLINGS.get(name)
        if canonical is None or not colon:
            name = name.rstrip(" \t")  # HCOLON = *( SP / HTAB ) ":" SWS
            if not colon or TOKEN.fullmatch(name) is None:
                field_error = field_error or ParseError(f"malformed header line {line[:40]!r}")
                continue
            canonical = canonical_name(name)
        value = value.strip(" \t")
        key = canonical.lower()
        if "," in value and key in LIST_FIELDS:
            elements = split_list(value)
            names += [canonical] * len(elements)
            keys += [key] * len(elements)
            values += elements
        else:
            names.append(canonical)
            keys.append(key)
            values.append(value)

    headers = Headers._from_parser(names, keys, values)
    head.headers = headers
    if keys.count("via") > MAX_VIAS:
        raise _with_context(ParseError("too many Via values", status=513), headers, head.is_request)
    length_error: ParseError | None = None
    lengths = keys.count("content-length")
    if lengths > 1:
        length_error = ParseError("more than one Content-Length")  # RFC 4475 §3.3.9
    elif lengths:
        try:
            head.content_length = headers.content_length()
        except ParseError as fault:
            length_error = fault  # a negative or garbled length: RFC 4475 §3.1.2.3
    head.framing_error = length_error is not None
    error = head.error or field_error or length_error
    if error is not None:
        head.error = _with_context(error, headers, head.is_request)
    return head


def _complete(head: _Head, body: bytes) -> Message:
    """The message, once the fields every layer relies on are known to be well formed."""
    headers = head.headers
    try:
        headers.vias()
        headers.cseq()
        headers.call_id()
        headers.to_address()
        headers.from_address()
        for name in ("From", "To"):  # a duplicate is check_request's to flag, but must parse
            for value in headers.get_all(name)[1:]:
                parse_name_address(value)
    except ParseError as error:
        raise _with_context(error, headers, head.is_request) from None
    if head.is_request:
        assert head.uri is not None
        return Request(method=head.method, uri=head.uri, headers=headers, body=body)
    return Response(status=head.status, reason=head.reason, headers=headers, body=body)


def _decode_head(data: bytes | bytearray, start: int, end: int) -> str:
    return bytes(data[start:end]).decode("utf-8", "surrogateescape")


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """One SIP message from ``data``: a whole datagram, or (``stream``) one framed message.

    Raises ``ParseError`` for anything malformed or over a limit; never
    anything else, whatever the bytes.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise ParseError("message too large", status=513)
    start = len(data) - len(data.lstrip(b"\r\n"))  # §7.5: CRLFs before the start line
    if start == len(data):
        raise ParseError("empty message")
    match = _HEAD_END.search(data, start)
    if match is not None:
        head_end, body_start = match.start(), match.end()
    elif stream:
        raise ParseError("header block without its empty line")
    else:  # a datagram's end ends its header block too (tolerated: the empty line is missing)
        body_start = len(data)
        head_end = body_start - (2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\n") else 0)
    head = _read_head(_decode_head(data, start, head_end))
    if head.error is not None:
        raise head.error
    available = len(data) - body_start
    length = head.content_length
    if length is None:
        if stream:
            fault = ParseError("no Content-Length on a stream")  # §18.3, §20.14
            raise _with_context(fault, head.headers, head.is_request)
        length = available  # §18.3: the rest of the datagram (RFC 4475 §3.4)
    elif length > available:
        fault = ParseError("Content-Length larger than the message")  # RFC 4475 §3.1.2.2
        raise _with_context(fault, head.headers, head.is_request)
    elif stream and length < available:
        fault = ParseError("octets after the body on a stream")
        raise _with_context(fault, head.headers, head.is_request)
    return _complete(head, bytes(data[body_start : body_start + length]))


# -- writing ------------------------------------------------------------------


def serialize(message: Message) -> bytes:
    """The message in canonical wire form, with a Content-Length that matches its body."""
    if isinstance(message, Request):
        lines = [f"{message.method} {message.uri} {SIP_VERSION}"]
    else:
        lines = [f"{SIP_VERSION} {message.status} {message.reason}"]
    length = f"Content-Length: {len(message.body)}"
    for name, value in message.headers:
        if name == "Content-Length":
            if length:
                lines.append(length)
                length = ""
        else:
            lines.append(f"{name}: {value}")
    if length:
        lines.append(length)
    lines += ("", "")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + message.body


def response_to(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to ``request`` with the fields RFC 3261 §8.2.6.2 says to copy.

    Every Via (in order), From, Call-ID and CSeq are copied; To is copied and
    gets ``to_tag`` if it has no tag yet — except on a 100 Trying, which never
    carries one (§8.2.6.2) but does echo a Timestamp (§8.2.6.1). ``headers`` are
    added after those.
    """
    fields: list[tuple[str, str]] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "to" and to_tag is not None and status != 100:
            value = _add_tag(request, value, to_tag)
        if key in _RESPONSE_KEYS or (key == "timestamp" and status == 100):
            fields.append((name, value))
    fields.extend(headers)
    return Response(
        status=status,
        reason=reason if reason is not None else REASONS.get(status, "Unknown"),
        headers=Headers(fields),
        body=body,
    )


def _add_tag(request: Request, value: str, tag: str) -> str:
    """The To value with ``tag`` appended, unless it has one (kept as written otherwise)."""
    try:
        to = request.headers.to_address()
    except ParseError:  # a To we could not read (answering a broken request): look at the text
        to = None
        if ";tag=" in value.replace(" ", "").lower():
            return value
    if to is not None and to.tag is not None:
        return value
    return f"{value};tag={tag}"  # outside any <>: a header parameter in both address forms


def error_response(error: ParseError, *, to_tag: str | None = None) -> Response | None:
    """The response to a request that failed to parse, or ``None`` when it must be dropped."""
    if not error.respondable or error.headers is None:
        return None
    fields: list[tuple[str, str]] = []
    for name, value in error.headers:
        if name == "To" and to_tag is not None and ";tag=" not in value.replace(" ", "").lower():
            value = f"{value};tag={to_tag}"
        fields.append((name, value))
    return Response(
        status=error.status,
        reason=REASONS.get(error.status, "Bad Request"),
        headers=Headers._from_parser(
            [n for n, _ in fields], [n.lower() for n, _ in fields], [v for _, v in fields]
        ),
    )
