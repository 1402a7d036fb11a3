"""Server transactions, INVITE and non-INVITE (RFC 3261 §17.2, amended by RFC 6026 §7.1, §8.7).

Theory of operation
-------------------
A server transaction stands between one received request and the TU that
answers it. It passes the request up once, sends the TU's responses, answers
request retransmissions with the last response sent, and outlives its final
response long enough to absorb the stragglers. Each machine is a transition
table from ``(state, input)`` to ``(next state, action)``; an input is the
peer's (a retransmission, an ACK), the TU's (a response by class), a timer,
or a failure to send. Timers are armed on entering a state: the final
response's retransmission (G, unreliable transports only) and the ACK wait
(H) on entering Completed, I on Confirmed, J on a non-INVITE's Completed,
L on Accepted. A zero duration (I and J on a reliable transport) fires at
once, so a TCP transaction ends as soon as its work is done.

INVITE (Figure 7 with RFC 6026's Accepted state)::

    Proceeding --1xx from TU--> Proceeding        (sent; INVITE retransmission: re-send it)
    Proceeding --2xx from TU--> Accepted  (L)     (2xx retransmission belongs to the TU)
    Proceeding --3xx-6xx-----> Completed (G, H)   (re-sent on G and on each retransmission)
    Completed  --ACK----------> Confirmed (I)  --I--> Terminated
    Completed  --H------------> Terminated        (the TU is told: no ACK came)
    Accepted   --INVITE-------> Accepted          (absorbed, not re-sent: RFC 6026 §7.1)
    Accepted   --ACK----------> Accepted          (passed to the TU: RFC 6026 §7.1)
    Accepted   --L------------> Terminated

Non-INVITE (Figure 8)::

    Trying     --1xx from TU--> Proceeding --final--> Completed (J) --J--> Terminated
    Trying     --retransmission--> Trying   (absorbed: nothing to re-send yet)

An input from the peer that the table lacks (an ACK for a non-INVITE, an
ACK before any final response) is absorbed; a response from the TU that the
table lacks (a second final response) is a bug in the TU and raises
``InvalidTransition``.
"""

from __future__ import annotations

from ivr.sip.message import Request, Response, response_to
from ivr.sip.timers import Schedule, TimerName, Timers
from ivr.sip.transaction_outputs import (
    AckReceived,
    InvalidTransition,
    Output,
    Peer,
    RequestReceived,
    Terminated,
    TransactionKey,
    TransactionTimedOut,
    Transmit,
    TransportError,
    _Enum,
)


class ServerState(_Enum):
    TRYING = "trying"  # non-INVITE: with the TU, nothing sent yet
    PROCEEDING = "proceeding"  # a provisional response sent (an INVITE starts here)
    COMPLETED = "completed"  # a final response sent; absorbing retransmissions
    CONFIRMED = "confirmed"  # INVITE: the ACK for a failure came
    ACCEPTED = "accepted"  # INVITE: a 2xx sent; its ACK is the dialog's (RFC 6026)
    TERMINATED = "terminated"


class ServerInput(_Enum):
    REQUEST_RETRANSMITTED = "request_retransmitted"
    ACK_RECEIVED = "ack_received"
    PROVISIONAL_SENT = "provisional_sent"  # 1xx from the TU
    SUCCESS_SENT = "success_sent"  # 2xx from the TU
    FAILURE_SENT = "failure_sent"  # 3xx-6xx from the TU
    TRANSPORT_FAILED = "transport_failed"


class ServerAction(_Enum):
    SEND = "send"  # pass the TU's response to the transport and remember it
    RESEND = "resend"  # the last response, again
    RESEND_AND_BACK_OFF = "resend_and_back_off"  # timer G: again, and re-arm G doubled
    ABSORB = "absorb"  # a retransmission soaked up
    PASS_ACK = "pass_ack"  # to the TU (RFC 6026 §7.1)
    REPORT_TIMEOUT = "report_timeout"
    REPORT_TRANSPORT_ERROR = "report_transport_error"
    EXPIRE = "expire"  # a wait ran out: nothing left to do


ServerTrigger = ServerInput | TimerName
ServerTable = dict[tuple[ServerState, ServerTrigger], tuple[ServerState, ServerAction]]

S, In, Do, T = ServerState, ServerInput, ServerAction, TimerName
INVITE_SERVER: ServerTable = {
    (S.PROCEEDING, In.PROVISIONAL_SENT): (S.PROCEEDING, Do.SEND),
    (S.PROCEEDING, In.SUCCESS_SENT): (S.ACCEPTED, Do.SEND),  # RFC 6026 §7.1
    (S.PROCEEDING, In.FAILURE_SENT): (S.COMPLETED, Do.SEND),
    (S.PROCEEDING, In.REQUEST_RETRANSMITTED): (S.PROCEEDING, Do.RESEND),  # §17.2.1
    (S.PROCEEDING, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.ACCEPTED, In.SUCCESS_SENT): (S.ACCEPTED, Do.SEND),  # the TU's 2xx retransmission, §8.7
    (S.ACCEPTED, In.REQUEST_RETRANSMITTED): (S.ACCEPTED, Do.ABSORB),  # RFC 6026 §7.1
    (S.ACCEPTED, In.ACK_RECEIVED): (S.ACCEPTED, Do.PASS_ACK),  # RFC 6026 §7.1
    # Our choice (RFC 6026 is silent): tell the TU, and stay to absorb INVITEs until L.
    (S.ACCEPTED, In.TRANSPORT_FAILED): (S.ACCEPTED, Do.REPORT_TRANSPORT_ERROR),
    (S.ACCEPTED, T.L): (S.TERMINATED, Do.EXPIRE),
    (S.COMPLETED, In.REQUEST_RETRANSMITTED): (S.COMPLETED, Do.RESEND),
    (S.COMPLETED, T.G): (S.COMPLETED, Do.RESEND_AND_BACK_OFF),
    (S.COMPLETED, In.ACK_RECEIVED): (S.CONFIRMED, Do.ABSORB),
    (S.COMPLETED, T.H): (S.TERMINATED, Do.REPORT_TIMEOUT),
    (S.COMPLETED, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.CONFIRMED, In.ACK_RECEIVED): (S.CONFIRMED, Do.ABSORB),
    (S.CONFIRMED, In.REQUEST_RETRANSMITTED): (S.CONFIRMED, Do.ABSORB),
    (S.CONFIRMED, T.I): (S.TERMINATED, Do.EXPIRE),
}

NON_INVITE_SERVER: ServerTable = {
    (S.TRYING, In.PROVISIONAL_SENT): (S.PROCEEDING, Do.SEND),
    (S.TRYING, In.SUCCESS_SENT): (S.COMPLETED, Do.SEND),
    (S.TRYING, In.FAILURE_SENT): (S.COMPLETED, Do.SEND),
    (S.TRYING, In.REQUEST_RETRANSMITTED): (S.TRYING, Do.ABSORB),  # §17.2.2
    (S.PROCEEDING, In.PROVISIONAL_SENT): (S.PROCEEDING, Do.SEND),
    (S.PROCEEDING, In.SUCCESS_SENT): (S.COMPLETED, Do.SEND),
    (S.PROCEEDING, In.FAILURE_SENT): (S.COMPLETED, Do.SEND),
    (S.PROCEEDING, In.REQUEST_RETRANSMITTED): (S.PROCEEDING, Do.RESEND),
    (S.PROCEEDING, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.REQUEST_RETRANSMITTED): (S.COMPLETED, Do.RESEND),
    (S.COMPLETED, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, T.J): (S.TERMINATED, Do.EXPIRE),
}
del S, In, Do, T


def response_input(response: Response) -> ServerInput:
    """What a response from the TU is, to a server transaction."""
    if response.status < 200:
        return ServerInput.PROVISIONAL_SENT
    if response.status < 300:
        return ServerInput.SUCCESS_SENT
    return ServerInput.FAILURE_SENT


class ServerTransaction:
    """One received request and the responses to it, from creation to Terminated."""

    __slots__ = (
        "_g_interval",
        "_last",
        "_schedule",
        "_table",
        "_timers",
        "destination",
        "invite",
        "key",
        "request",
        "source",
        "state",
    )

    def __init__(
        self,
        *,
        key: TransactionKey,
        request: Request,
        source: Peer,
        destination: Peer,
        timers: Timers,
        schedule: Schedule[TransactionKey, TimerName],
    ) -> None:
        self.key = key
        self.request = request
        self.source = source
        self.destination = destination  # where responses go (RFC 3261 §18.2.2)
        self.invite = request.method == "INVITE"
        self.state = ServerState.PROCEEDING if self.invite else ServerState.TRYING
        self._table = INVITE_SERVER if self.invite else NON_INVITE_SERVER
        self._timers = timers
        self._schedule = schedule
        self._last: Transmit | None = None  # the last response sent, for retransmissions
        self._g_interval = timers.t1

    @property
    def reliable(self) -> bool:
        return self.destination.reliable

    @property
    def last_response(self) -> Response | None:
        return None if self._last is None else self._last.message  # type: ignore[return-value]

    def start(self, *, cancels: TransactionKey | None = None) -> list[Output]:
        """The outputs of a new transaction: for an INVITE a 100 Trying, then the request."""
        outputs: list[Output] = []
        if self.invite:
            # §17.2.1 allows waiting 200 ms for the TU; we never wait, so that the client's
            # timer A stops at once however long the TU takes.
            outputs.append(self._send(response_to(self.request, 100)))
        outputs.append(
            RequestReceived(request=self.request, key=self.key, source=self.source, cancels=cancels)
        )
        return outputs

    def receive(self, request: Request, source: Peer, now: float) -> list[Output]:
        """A request that matched this transaction: a retransmission, or an ACK."""
        is_ack = request.method == "ACK"
        trigger = ServerInput.ACK_RECEIVED if is_ack else ServerInput.REQUEST_RETRANSMITTED
        return self._handle(trigger, now, ack=request, source=source)

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU's response; ``InvalidTransition`` when the state forbids it."""
        trigger = response_input(response)
        if (self.state, trigger) not in self._table:
            raise InvalidTransition(
                f"{response.status} to {self.request.method} in state {self.state.value}"
            )
        return self._handle(trigger, now, response=response)

    def timer_fired(self, timer: TimerName, now: float) -> list[Output]:
        return self._handle(timer, now)

    def transport_failed(self, now: float) -> list[Output]:
        return self._handle(ServerInput.TRANSPORT_FAILED, now)

    # -- the machine ----------------------------------------------------------

    def _handle(
        self,
        trigger: ServerTrigger,
        now: float,
        *,
        response: Response | None = None,
        ack: Request | None = None,
        source: Peer | None = None,
    ) -> list[Output]:
        entry = self._table.get((self.state, trigger))
        if entry is None:
            return []  # the peer's input out of place (an ACK to a non-INVITE…): absorbed
        next_state, action = entry
        outputs: list[Output] = []
        if action is ServerAction.SEND:
            assert response is not None
            outputs.append(self._send(response))
        elif action is ServerAction.RESEND:
            if self._last is not None:
                outputs.append(self._last)
        elif action is ServerAction.RESEND_AND_BACK_OFF:
            assert self._last is not None
            outputs.append(self._last)
            self._g_interval = self._timers.backed_off(self._g_interval)  # §17.2.1
            self._schedule.arm(self.key, TimerName.G, now + self._g_interval)
        elif action is ServerAction.PASS_ACK:
            assert ack is not None and source is not None
            outputs.append(AckReceived(request=ack, source=source, key=self.key))
        elif action is ServerAction.REPORT_TIMEOUT:
            outputs.append(TransactionTimedOut(key=self.key))
        elif action is ServerAction.REPORT_TRANSPORT_ERROR:
            outputs.append(TransportError(key=self.key))
        if next_state is not self.state:
            outputs += self._enter(next_state, now)
        return outputs

    def _send(self, response: Response) -> Transmit:
        self._last = Transmit(message=response, destination=self.destination, key=self.key)
        return self._last

    def _enter(self, state: ServerState, now: float) -> list[Output]:
        self.state = state
        schedule, key = self._schedule, self.key
        if state is ServerState.COMPLETED:
            if not self.invite:
                return self._start(TimerName.J, now)
            if not self.reliable:
                schedule.arm(key, TimerName.G, now + self._g_interval)
            return self._start(TimerName.H, now)
        if state is ServerState.CONFIRMED:
            schedule.cancel(key, TimerName.G)
            schedule.cancel(key, TimerName.H)
            return self._start(TimerName.I, now)
        if state is ServerState.ACCEPTED:
            return self._start(TimerName.L, now)
        if state is ServerState.TERMINATED:
            schedule.cancel_all(key)
            return [Terminated(key=key)]
        return []

    def _start(self, timer: TimerName, now: float) -> list[Output]:
        duration = self._timers.duration(timer, reliable=self.reliable)
        if duration <= 0:
            return self._handle(timer, now)  # I or J on a reliable transport: at once
        self._schedule.arm(self.key, timer, now + duration)
        return []


__all__ = [
    "INVITE_SERVER",
    "NON_INVITE_SERVER",
    "ServerAction",
    "ServerInput",
    "ServerState",
    "ServerTransaction",
    "response_input",
]
