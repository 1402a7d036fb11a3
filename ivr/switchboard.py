"""The SIP side of the server: one owner of the transport, the transactions and the registrar.

Theory of operation. ``Switchboard.run`` listens (``SipTransport``) and feeds
every message, with the time, to the sans-IO ``TransactionLayer``; what
comes out is carried out here: ``Transmit`` goes to the transport, a new
request goes to the handler for its method, and one timer task sleeps until
the earliest deadline of the transactions and the registrar. Nothing here
decides routing: phones that become reachable or unreachable are reported
through ``on_phone``, which the server turns into the core's commands.

Methods handled: OPTIONS (200 while the server takes calls, 503 while it
drains or starts), REGISTER (``ivr.registrations``: digest, throttle, the
agent's own address), CANCEL of a transaction we no longer have (481), and
the checks every request gets first (``check_request``: 400, 416, 420...).
Anything else is answered 501 (or 405 for a known method we do not take).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ivr.registrations import PhoneNotice, Registrations
from ivr.sip.checks import check_request
from ivr.sip.message import Message, Response, response_to
from ivr.sip.transaction_outputs import (
    Peer,
    RequestReceived,
    Transmit,
)
from ivr.sip.transactions import Output, TransactionLayer
from ivr.sip.transport import SipTransport

log = logging.getLogger(__name__)

ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO")
SERVER_NAME = "acd"


class Switchboard:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        registrations: Registrations,
        on_phone: Callable[[PhoneNotice], None],
        taking_calls: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = SipTransport(host, port, self._received)
        self.transactions = TransactionLayer()
        self.registrations = registrations
        self._on_phone = on_phone
        self._taking_calls = taking_calls
        self._clock = clock
        self._wake = asyncio.Event()
        self.started = asyncio.Event()

    @property
    def port(self) -> int:
        return self.transport.port

    async def run(self) -> None:
        """Listen and serve until cancelled."""
        await self.transport.start()
        log.info("SIP on udp and tcp %s:%d", self.transport.host, self.transport.port)
        self.started.set()
        try:
            while True:
                deadline = self._next_deadline()
                delay = None if deadline is None else max(0.0, deadline - self._clock())
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                now = self._clock()
                self._carry_out(self.transactions.advance(now))
                for notice in self.registrations.expire(now):
                    self._on_phone(notice)
        finally:
            await self.transport.close()

    def _next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (self.transactions.next_deadline(), self.registrations.next_deadline())
            if d is not None
        ]
        return min(deadlines, default=None)

    # == arrivals ======================================================================

    def _received(self, message: Message, peer: Peer) -> None:
        self._carry_out(self.transactions.receive(message, peer, self._clock()))
        self._wake.set()  # a new transaction may have armed an earlier timer

    def _carry_out(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Transmit):
                self.transport.send(output.data, output.destination)
            elif isinstance(output, RequestReceived):
                self._request(output)

    def _request(self, received: RequestReceived) -> None:
        request, now = received.request, self._clock()
        rejection = check_request(
            request, supported=(), methods=ALLOWED, accept=("application/sdp",)
        )
        if rejection is not None:
            status, reason = rejection
            response = response_to(request, status, reason, to_tag=_tag(received))
            for name, value in rejection.headers:
                response.headers.add(name, value)
            self._respond(received, response)
            return
        method = request.method
        if method == "OPTIONS":
            self._options(received)
        elif method == "REGISTER":
            answer = self.registrations.register(request, received.source, now)
            if answer.response is not None:
                self._respond(received, answer.response)
            for notice in answer.notices:
                self._on_phone(notice)
        elif method == "CANCEL":  # the layer found no INVITE for it (RFC 3261 §9.2)
            self._respond(received, response_to(request, 481, to_tag=_tag(received)))
        else:
            status = 405 if method in ALLOWED else 501
            response = response_to(request, status, to_tag=_tag(received))
            response.headers.add("Allow", ", ".join(ALLOWED))
            self._respond(received, response)

    def _options(self, received: RequestReceived) -> None:
        """RFC 3261 §11.2: what we are able to do; 503 while we take no calls (a drain)."""
        if self._taking_calls():
            response = response_to(received.request, 200, to_tag=_tag(received))
            response.headers.add("Allow", ", ".join(ALLOWED))
            response.headers.add("Accept", "application/sdp")
        else:
            response = response_to(received.request, 503, "Draining", to_tag=_tag(received))
            response.headers.add("Retry-After", "30")
        response.headers.add("Server", SERVER_NAME)
        self._respond(received, response)

    def _respond(self, received: RequestReceived, response: Response) -> None:
        self._carry_out(self.transactions.respond(received.key, response, self._clock()))
        self._wake.set()


def _tag(received: RequestReceived) -> str:
    """A To tag for our final response, the same for every retransmission of the request."""
    return received.key.branch.removeprefix("z9hG4bK")[-20:].replace(".", "") or "acd"
