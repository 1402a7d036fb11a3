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
agent's own address), the calls' INVITE, ACK, BYE, INFO and CANCEL
(``ivr.calls``: callers into the IVR and the queues, agents' phones rung and
bridged, REFER from an agent's phone, overflow calls to other sites; an
INVITE while we take no calls is 503), CANCEL of a transaction we
no longer have (481), and the checks every request gets first
(``check_request``: 400, 415, 416, 420...). Anything else is answered 501
(or 405 for a known method we do not take). ``calls.run`` (the media pacer
and the core's actions) runs in the switchboard's own task group.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Collection
from pathlib import Path

from acd.ids import AgentId, CallId
from ivr.calling_back import DEFAULT_RING_SECONDS
from ivr.calls import Calls
from ivr.flow_config import Flow
from ivr.registrations import PhoneNotice, RegisterRefused, Registrations
from ivr.sip.checks import check_request
from ivr.sip.message import Message, Response, response_to
from ivr.sip.transaction_outputs import (
    AckReceived,
    Peer,
    RequestReceived,
    ResponseReceived,
    Role,
    TransactionTimedOut,
    Transmit,
    TransportError,
)
from ivr.sip.transactions import Output, TransactionLayer
from ivr.sip.transport import SipTransport
from ivr.site_calls import OverflowMode

log = logging.getLogger(__name__)

ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "REFER")
SERVER_NAME = "acd"
CALL_METHODS = frozenset({"INVITE", "BYE", "INFO", "REFER"})
ACCEPTED_BODIES = ("application/sdp", "application/dtmf-relay")  # SDP; INFO key presses


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
        has_account: Callable[[AgentId], bool] = lambda _agent: False,
        queues: Callable[[], Collection[str]] = tuple,
        new_call_id: Callable[[], CallId] | None = None,
        flow: Flow | None = None,
        callback_uri: str | None = None,
        callback_ring_seconds: float = DEFAULT_RING_SECONDS,
        voicemail_dir: Path | None = None,
        find_agent: Callable[[str], AgentId | None] = lambda _name: None,
        overflow: OverflowMode = OverflowMode.BRIDGE,
        on_refused: Callable[[RegisterRefused], None] = lambda _refused: None,
    ) -> None:
        self.transport = SipTransport(host, port, self._received)
        self.transactions = TransactionLayer()
        self.registrations = registrations
        self._on_phone = on_phone
        self._on_refused = on_refused
        self._taking_calls = taking_calls
        self._clock = clock
        self._wake = asyncio.Event()
        self.started = asyncio.Event()
        self.calls = Calls(
            host=host,
            transactions=self.transactions,
            carry_out=self._carry_out,
            wake=self._wake.set,
            locate=registrations.locate,
            has_account=has_account,
            queues=queues,
            new_call_id=new_call_id or _call_ids(),
            flow=flow,
            voicemail_dir=voicemail_dir,
            clock=clock,
            callback_uri=callback_uri,
            callback_ring_seconds=callback_ring_seconds,
            find_agent=find_agent,
            overflow=overflow,
        )

    @property
    def port(self) -> int:
        return self.transport.port

    async def run(self) -> None:
        """Listen and serve until cancelled."""
        await self.transport.start()
        self.calls.port = self.transport.port
        log.info("SIP on udp and tcp %s:%d", self.transport.host, self.transport.port)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.calls.run(), name="SIP calls")
                self.started.set()
                await self._serve()
        finally:
            await self.transport.close()

    async def _serve(self) -> None:
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
            self.calls.advance(now)
            for notice in self.registrations.expire(now):
                self._on_phone(notice)

    def _next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (
                self.transactions.next_deadline(),
                self.registrations.next_deadline(),
                self.calls.next_deadline(),
            )
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
            elif isinstance(output, AckReceived):
                self.calls.ack(output.request)
            elif isinstance(output, ResponseReceived):
                self.calls.response(output.response, output.key)
            elif isinstance(output, TransactionTimedOut | TransportError) and (
                output.key.role is Role.CLIENT and output.key.method == "INVITE"
            ):
                self.calls.invite_timed_out(output.key)

    def _request(self, received: RequestReceived) -> None:
        request, now = received.request, self._clock()
        rejection = check_request(request, supported=(), methods=ALLOWED, accept=ACCEPTED_BODIES)
        if rejection is not None:
            status, reason = rejection
            response = response_to(request, status, reason, to_tag=received.key.to_tag)
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
            if answer.refused is not None:
                self._on_refused(answer.refused)
            for notice in answer.notices:
                self._on_phone(notice)
        elif (
            method == "INVITE"
            and request.to_address is not None
            and (request.to_address.tag is None and not self._taking_calls())
        ):
            response = response_to(request, 503, "Not taking calls", to_tag=received.key.to_tag)
            response.headers.add("Retry-After", "30")
            self._respond(received, response)
        elif method in CALL_METHODS or (method == "CANCEL" and received.cancels is not None):
            self.calls.request(received)
        elif method == "CANCEL":  # the layer found no INVITE for it (RFC 3261 §9.2)
            self._respond(received, response_to(request, 481, to_tag=received.key.to_tag))
        else:
            status = 405 if method in ALLOWED else 501
            response = response_to(request, status, to_tag=received.key.to_tag)
            response.headers.add("Allow", ", ".join(ALLOWED))
            self._respond(received, response)

    def _options(self, received: RequestReceived) -> None:
        """RFC 3261 §11.2: what we are able to do; 503 while we take no calls (a drain)."""
        if self._taking_calls():
            response = response_to(received.request, 200, to_tag=received.key.to_tag)
            response.headers.add("Allow", ", ".join(ALLOWED))
            response.headers.add("Accept", "application/sdp")
        else:
            response = response_to(received.request, 503, "Draining", to_tag=received.key.to_tag)
            response.headers.add("Retry-After", "30")
        response.headers.add("Server", SERVER_NAME)
        self._respond(received, response)

    def _respond(self, received: RequestReceived, response: Response) -> None:
        cseq = received.request.cseq
        if cseq is None or cseq.method != received.key.method:
            # A request whose CSeq names another method (RFC 4475 §3.1.2.17, mismatch01/02)
            # is refused with a 400 that copies that CSeq: no transaction can carry it, so
            # it goes back statelessly, where the request came from.
            self.transport.send(response, received.source)
            return
        self._carry_out(self.transactions.respond(received.key, response, self._clock()))
        self._wake.set()


def _call_ids() -> Callable[[], CallId]:
    """Call ids for a switchboard without a server to number its calls (tests)."""
    numbers = itertools.count(1)
    return lambda: CallId(f"sip-{next(numbers)}")
