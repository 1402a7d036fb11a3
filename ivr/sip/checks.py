"""The checks a server makes on a well-formed request before acting on it.

Theory of operation
-------------------
The parser answers "is this SIP?"; ``check_request`` answers "can I act on
this request?", in the order RFC 3261 §8.2 gives a UAS (and §16.3 a proxy):

1. Header fields: the mandatory ones present (§8.1.1), single-valued ones
   not repeated (RFC 4475 §3.3.8), every field we rely on well formed, scalar
   values in range (RFC 4475 §3.1.2.4), the Date in GMT (§20.17, RFC 4475
   §3.1.2.12), no headers in the Request-URI (§19.1.1 table 1, RFC 4475
   §3.1.2.11), a Via branch that is more than the magic cookie (§8.1.1.7,
   RFC 4475 §3.2.1). All of these answer 400, naming what is wrong.
2. Method inspection (§8.2.1): a method we do not support is 405 with Allow
   when SIP defines it, 501 when it is unknown (RFC 4475 §3.1.2.18 prefers
   501 to 400 for an unknown method, so this comes before the CSeq check).
3. CSeq method equal to the request method (RFC 4475 §3.1.2.17): 400.
4. Request-URI scheme (§8.2.2.1): 416. Max-Forwards 0 where we would forward
   (§16.3 step 3): 483. A REGISTER's To must be a SIP or SIPS URI (§10.2): 400.
5. Require at a UAS (§8.2.2.3; ignored on ACK and CANCEL), Proxy-Require
   when forwarding (§16.3 step 5): 420 with Unsupported listing the unknown
   option tags.
6. Body (§8.2.3): Content-Type and Content-Encoding we understand, else 415
   with Accept or Accept-Encoding; an INVITE whose Accept leaves out every
   type we answer with gets 406 (RFC 4475 §3.3.15).

The result is ``None`` (go ahead) or a ``Rejection``: a ``(status, reason)``
tuple that also carries the header fields the response must include. Never
send a response to an ACK, whatever this says: an ACK is not answered.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ivr.sip.errors import ParseError
from ivr.sip.fields import BRANCH_MAGIC_COOKIE, parse_scalar
from ivr.sip.headers import MAX_EXPIRES
from ivr.sip.message import Request, Response, response_to
from ivr.sip.uri import SipUri

# The methods RFC 3261 and its extensions define (the IANA method registry).
SIP_METHODS = frozenset(
    {
        "ACK",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    }
)
# The header fields RFC 3261 §8.1.1 requires in every request (Max-Forwards is optional
# here: an RFC 2543 request lacks it and must still be served, RFC 4475 §3.4).
MANDATORY_FIELDS = ("Via", "To", "From", "Call-ID", "CSeq")
# Fields that may appear once only (RFC 3261 §7.3.1: not comma lists).
SINGLE_FIELDS = (
    "To",
    "From",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
    "Expires",
    "Date",
)
# What a reason phrase may carry of the text we put in it (RFC 3261 §25.1 Reason-Phrase).
_UNSAFE_IN_REASON = re.compile(r'[^\x20-\x7e]|["<>\\]')
_RFC1123_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)


class Rejection(tuple[int, str]):
    """``(status, reason)`` of the response to send, with the header fields it needs."""

    headers: tuple[tuple[str, str], ...]

    def __new__(
        cls, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Rejection:
        rejection = super().__new__(cls, (status, _UNSAFE_IN_REASON.sub("?", reason)))
        rejection.headers = tuple(headers)
        return rejection

    @property
    def status(self) -> int:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]

    def response(self, request: Request, *, to_tag: str | None = None) -> Response:
        """The response to ``request``, built as RFC 3261 §8.2.6 says."""
        return response_to(request, self.status, self.reason, to_tag=to_tag, headers=self.headers)


def check_request(
    request: Request,
    *,
    supported: Iterable[str] = (),
    methods: Iterable[str] | None = None,
    accept: Iterable[str] = ("application/sdp",),
    encodings: Iterable[str] = ("identity",),
    schemes: Iterable[str] = ("sip", "sips"),
    forwarding: bool = False,
    require_max_forwards: bool = False,
) -> Rejection | None:
    """Why ``request`` must be refused, or ``None``.

    ``supported``: our option tags (Require, Proxy-Require). ``methods``: the
    methods we serve (``None``: do not check). ``accept``: the body types we
    read, which are also what we answer with (default SDP). ``encodings``: the
    Content-Encodings we read. ``schemes``: the Request-URI schemes we serve.
    ``forwarding``: we are about to proxy it (Max-Forwards 0, Proxy-Require).
    """
    try:
        return _check(
            request,
            supported=supported,
            methods=methods,
            accept=accept,
            encodings=encodings,
            schemes=schemes,
            forwarding=forwarding,
            require_max_forwards=require_max_forwards,
        )
    except ParseError as error:  # a field we had to read is malformed
        return Rejection(400, f"Bad Request ({error.reason})")


def _check(
    request: Request,
    *,
    supported: Iterable[str],
    methods: Iterable[str] | None,
    accept: Iterable[str],
    encodings: Iterable[str],
    schemes: Iterable[str],
    forwarding: bool,
    require_max_forwards: bool,
) -> Rejection | None:
    rejection = _check_fields(request, require_max_forwards)
    if rejection is not None:
        return rejection
    method = request.method
    if methods is not None:
        served = sorted(set(methods))
        if method not in served:
            allow = [("Allow", ", ".join(served))]
            if method in SIP_METHODS:
                return Rejection(405, "Method Not Allowed", allow)
            return Rejection(501, "Not Implemented", allow)
    cseq = request.headers.cseq()
    if cseq is not None and cseq.method != method:
        return Rejection(400, "Bad Request (CSeq method does not match the request)")
    scheme = request.uri.scheme
    if scheme not in {s.lower() for s in schemes}:
        return Rejection(416, "Unsupported URI Scheme")
    max_forwards = request.headers.max_forwards()
    if forwarding and max_forwards == 0:
        return Rejection(483, "Too Many Hops")
    if method == "REGISTER":
        to = request.headers.to_address()
        if to is not None and not isinstance(to.uri, SipUri):
            return Rejection(400, "Bad Request (the address-of-record is not a SIP URI)")
    return _check_extensions(request, supported, forwarding) or _check_body(
        request, accept, encodings
    )


def _check_fields(request: Request, require_max_forwards: bool) -> Rejection | None:
    headers = request.headers
    mandatory = (*MANDATORY_FIELDS, "Max-Forwards") if require_max_forwards else MANDATORY_FIELDS
    missing = [name for name in mandatory if name not in headers]
    if missing:
        return Rejection(400, f"Bad Request (missing {', '.join(missing)})")
    repeated = [name for name in SINGLE_FIELDS if headers.count(name) > 1]
    if repeated:
        return Rejection(400, f"Bad Request (more than one {', '.join(repeated)})")
    # Every field we may act on must parse (each raises ParseError, made a 400 above).
    headers.max_forwards()
    headers.expires()
    headers.routes()
    headers.record_routes()
    headers.content_type()
    headers.option_tags("Require")
    headers.option_tags("Proxy-Require")
    for contact in headers.contacts():
        expires = contact.params.get("expires")
        if expires is not None:
            parse_scalar(expires, "Contact expires", MAX_EXPIRES)
    date = headers.get("Date")
    if date is not None and _RFC1123_DATE.fullmatch(date) is None:
        return Rejection(400, "Bad Request (Date is not an RFC 1123 date in GMT)")
    if isinstance(request.uri, SipUri) and request.uri.headers:
        return Rejection(400, "Bad Request (headers in the Request-URI)")
    top = headers.top_via()
    if top is not None and top.branch == BRANCH_MAGIC_COOKIE:
        return Rejection(400, "Bad Request (Via branch is only the magic cookie)")
    return None


def _check_extensions(
    request: Request, supported: Iterable[str], forwarding: bool
) -> Rejection | None:
    if request.method in ("ACK", "CANCEL"):  # §8.2.2.3: Require is ignored on these
        return None
    known = {tag.lower() for tag in supported}
    # A UAS answers for Require, a proxy for Proxy-Require (§16.3 step 5, RFC 4475 §3.3.5).
    field = "Proxy-Require" if forwarding else "Require"
    unknown = [t for t in request.headers.option_tags(field) if t.lower() not in known]
    if unknown:
        return Rejection(420, "Bad Extension", [("Unsupported", tag) for tag in unknown])
    return None


def _check_body(
    request: Request, accept: Iterable[str], encodings: Iterable[str]
) -> Rejection | None:
    headers = request.headers
    accepted = [essence.lower() for essence in accept]
    if request.body:
        content_type = headers.content_type()
        if content_type is None:
            return Rejection(400, "Bad Request (a body without Content-Type)")  # §7.4.1
        if content_type.essence not in accepted:
            return Rejection(415, "Unsupported Media Type", [("Accept", ", ".join(accepted))])
        understood = {e.lower() for e in encodings}
        for encoding in headers.get_all("Content-Encoding"):
            if encoding.lower() not in understood:
                return Rejection(
                    415,
                    "Unsupported Media Type",
                    [("Accept-Encoding", ", ".join(sorted(understood)))],
                )
    if request.method == "INVITE" and "Accept" in headers:
        ranges = headers.accept()
        if ranges and not any(r.matches(essence) for r in ranges for essence in accepted):
            return Rejection(406, "Not Acceptable")
    return None


__all__ = ["MANDATORY_FIELDS", "SINGLE_FIELDS", "SIP_METHODS", "Rejection", "check_request"]
