"""SIP, sans-IO: messages, URIs and header fields (RFC 3261), stream framing, request checks.

Nothing in this package touches a socket or reads the clock: bytes go in,
messages (or ``ParseError``) come out, and messages go back out as bytes.
"""

from ivr.sip.checks import Rejection, check_request
from ivr.sip.errors import ParseError
from ivr.sip.fields import CSeq, MediaType, NameAddress, Via
from ivr.sip.grammar import Params
from ivr.sip.headers import Headers, canonical_name
from ivr.sip.message import (
    MAX_HEADER_LINES,
    MAX_LINE_LENGTH,
    MAX_MESSAGE_SIZE,
    MAX_VIAS,
    Message,
    Request,
    Response,
    error_response,
    parse_message,
    response_to,
    serialize,
)
from ivr.sip.stream import StreamFramer
from ivr.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

__all__ = [
    "MAX_HEADER_LINES",
    "MAX_LINE_LENGTH",
    "MAX_MESSAGE_SIZE",
    "MAX_VIAS",
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "MediaType",
    "Message",
    "NameAddress",
    "Params",
    "ParseError",
    "Rejection",
    "Request",
    "Response",
    "SipUri",
    "StreamFramer",
    "Uri",
    "Via",
    "canonical_name",
    "check_request",
    "error_response",
    "parse_message",
    "parse_uri",
    "response_to",
    "serialize",
]
