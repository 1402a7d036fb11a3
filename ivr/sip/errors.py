"""The one error a malformed SIP message raises: ``ParseError``.

A peer that sends a message we cannot read has broken the rules; that is never
a bug of ours, so it gets an exception of its own, carrying what the transport
edge needs to decide between answering and dropping: the status to answer
with (400, 505, 513…), a reason for the log, and — when the start line said it
was a request and the header fields that route a response back were all there
— those fields, so that a 400 can be built from them (RFC 3261 §8.2.6.2). A
broken response, or a request missing one of those fields, is dropped
(``respondable`` is false): RFC 3261 §18.1.2 and §18.2.1 leave nothing else to
do with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.sip.headers import Headers


class ParseError(Exception):
    """A message (or one of its header fields) breaks the SIP grammar or our limits."""

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        headers: Headers | None = None,
        respondable: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status  # the response a server should send, if it answers at all
        # Via, From, To, Call-ID and CSeq as read (raw values), when the start line was read
        self.headers = headers
        self.respondable = respondable  # a request whose response can be routed back

    def __repr__(self) -> str:
        return f"ParseError({self.reason!r}, status={self.status}, respondable={self.respondable})"
