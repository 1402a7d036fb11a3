"""Cutting a TCP or TLS byte stream into SIP messages (RFC 3261 §18.3).

Theory of operation
-------------------
A stream carries messages back to back, so the only way to find where one
ends is its Content-Length, which is therefore mandatory on a stream (§18.3,
§20.14). ``StreamFramer.feed`` takes whatever bytes arrived and returns the
messages they completed, in order:

- Between messages, CRLFs are skipped (§7.5). A double CRLF is a keep-alive
  ping (RFC 5626 §3.5.1), owed a single-CRLF pong: ``take_pongs()`` says how
  many the adapter should write.
- The header block is found by searching for its empty line, resuming where
  the last search stopped, so bytes that trickle in are scanned once.
- Once the header block is read, the framer waits for Content-Length octets
  of body and hands both to the parser.

Errors come back in the list as ``ParseError``. If the message was still
framed (a bad Via, say, with a good Content-Length) the stream stays in step
and the framer carries on. If the framing itself is lost — no Content-Length,
a garbled or repeated one, a header block or message over
``MAX_MESSAGE_SIZE`` — the framer is ``broken``: it keeps nothing and returns
nothing more, and the adapter should answer (when ``respondable``) and close
the connection. Memory held is bounded by ``MAX_MESSAGE_SIZE`` plus one read.
"""

from __future__ import annotations

import re

from ivr.sip.errors import ParseError
from ivr.sip.message import (
    _HEAD_END,
    MAX_MESSAGE_SIZE,
    Request,
    Response,
    _complete,
    _decode_head,
    _Head,
    _read_head,
    _with_context,
)

_LEADING_LINE_ENDS = re.compile(rb"[\r\n]*")


class StreamFramer:
    """Feed it a connection's bytes; it returns the SIP messages they complete."""

    def __init__(self, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_message_size
        self._scan_from = 0  # where the search for the header block's end resumes
        self._head: _Head | None = None  # the header block of a message awaiting its body
        self._body_start = 0
        self._crlfs = 0  # CRLFs seen since the last message, towards a double-CRLF ping
        self._pongs = 0
        self.broken = False  # framing is lost: close the connection

    def take_pongs(self) -> int:
        """How many CRLF pongs are due for the pings seen so far (RFC 5626 §4.4.1)."""
        pongs, self._pongs = self._pongs, 0
        return pongs

    def feed(self, data: bytes) -> list[Request | Response | ParseError]:
        """The messages (or errors) completed by ``data``, in order."""
        if self.broken:
            return []
        self._buffer += data
        out: list[Request | Response | ParseError] = []
        while not self.broken:
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def _fail(self, error: ParseError) -> ParseError:
        self.broken = True
        self._buffer = bytearray()
        self._head = None
        return error

    def _skip_line_ends(self) -> bool:
        """Drop CRLFs before a message, counting pings; whether a message has begun."""
        buffer = self._buffer
        run = _LEADING_LINE_ENDS.match(buffer)
        skipped = 0 if run is None else run.end()
        if skipped == len(buffer) and buffer.endswith(b"\r"):
            skipped -= 1  # half a CRLF: wait for the rest
        if skipped:
            crlfs = self._crlfs + buffer.count(b"\r\n", 0, skipped)
            self._pongs += crlfs // 2
            self._crlfs = crlfs % 2
            del buffer[:skipped]
            self._scan_from = 0
        if not buffer or buffer == b"\r":
            return False
        self._crlfs = 0
        return True

    def _next(self) -> Request | Response | ParseError | None:
        buffer = self._buffer
        if self._head is None:
            if not self._skip_line_ends():
                return None
            match = _HEAD_END.search(buffer, self._scan_from)
            if match is None:
                if len(buffer) > self._max:
                    return self._fail(ParseError("header block too large", status=513))
                self._scan_from = max(0, len(buffer) - 3)
                return None
            try:
                head = _read_head(_decode_head(buffer, 0, match.start()))
            except ParseError as error:  # over a limit: the rest cannot be trusted
                return self._fail(error)
            if head.framing_error:
                assert head.error is not None
                return self._fail(head.error)
            if head.content_length is None:
                missing = ParseError("no Content-Length on a stream")  # §18.3
                return self._fail(_with_context(missing, head.headers, head.is_request))
            if match.end() + head.content_length > self._max:
                large = ParseError("message too large", status=513)
                return self._fail(_with_context(large, head.headers, head.is_request))
            self._head, self._body_start, self._scan_from = head, match.end(), 0
        head = self._head
        assert head is not None and head.content_length is not None
        end = self._body_start + head.content_length
        if len(buffer) < end:
            return None
        body = bytes(buffer[self._body_start : end])
        del buffer[:end]
        self._head = None
        if head.error is not None:  # malformed, but framed: the stream is still in step
            return head.error
        try:
            return _complete(head, body)
        except ParseError as error:
            return error
