"""Client transactions, INVITE and non-INVITE (RFC 3261 §17.1, amended by RFC 6026 §7.2, §8.4).

Theory of operation
-------------------
A client transaction carries one request of the TU's to one destination: it
sends it, re-sends it on an unreliable transport until a response arrives,
passes responses up, and gives up when nothing comes. Each machine is a
transition table from ``(state, input)`` to ``(next state, action)``; an
input is a response (by class), a timer, or a failure to send. Timers are
armed on entering a state, and a zero duration (D and K on a reliable
transport) fires at once.

INVITE (Figure 5 with RFC 6026's Accepted state)::

    Calling    --A---------> Calling   (re-send; A doubles, unbounded: §17.1.1.2)
    Calling    --B---------> Terminated (the TU is told: timeout)
    Calling    --1xx-------> Proceeding (A and B stop: the server has it)
    Proceeding --B---------> Terminated (B re-armed by our CANCEL: §9.1's 64*T1)
    Calling/Proceeding --2xx--> Accepted (M)   (the ACK for a 2xx is the TU's)
    Calling/Proceeding --3xx-6xx--> Completed (D)   (the transaction sends the ACK)
    Completed  --3xx-6xx---> Completed  (a retransmission: the ACK again, not to the TU)
    Accepted   --2xx-------> Accepted   (to the TU: retransmissions, other forks)

Non-INVITE (Figure 6)::

    Trying     --E---------> Trying      (re-send; E doubles up to T2)
    Proceeding --E---------> Proceeding  (re-send; E is T2)
    Trying/Proceeding --F--> Terminated  (timeout)
    Trying/Proceeding --final--> Completed (K) --K--> Terminated

The ACK for a failure (§17.1.1.3) is built here, from the request and the
response, with the INVITE's branch: it is part of the INVITE transaction. A
CANCEL (§9.1) is a request of its own for the TU to send through a new
client transaction; ``cancel_request`` builds it.
"""

from __future__ import annotations

from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response
from ivr.sip.timers import Schedule, TimerName, Timers
from ivr.sip.transaction_outputs import (
    Output,
    Peer,
    ResponseReceived,
    Terminated,
    TransactionKey,
    TransactionTimedOut,
    Transmit,
    TransportError,
    _Enum,
)

MAX_FORWARDS = "70"  # RFC 3261 §8.1.1.6


class ClientState(_Enum):
    CALLING = "calling"  # INVITE: sent, nothing heard
    TRYING = "trying"  # non-INVITE: sent, nothing heard
    PROCEEDING = "proceeding"  # a provisional response came
    COMPLETED = "completed"  # a final response came (a failure, for an INVITE)
    ACCEPTED = "accepted"  # INVITE: a 2xx came (RFC 6026)
    TERMINATED = "terminated"


class ClientInput(_Enum):
    PROVISIONAL_RECEIVED = "provisional_received"
    SUCCESS_RECEIVED = "success_received"
    FAILURE_RECEIVED = "failure_received"
    TRANSPORT_FAILED = "transport_failed"


class ClientAction(_Enum):
    RETRANSMIT = "retransmit"  # the request, and re-arm its timer backed off
    PASS = "pass"  # the response to the TU
    ACK_AND_PASS = "ack_and_pass"  # §17.1.1.3: ACK the failure, and pass it up
    RESEND_ACK = "resend_ack"  # a retransmitted failure: the same ACK again
    ABSORB = "absorb"
    REPORT_TIMEOUT = "report_timeout"
    REPORT_TRANSPORT_ERROR = "report_transport_error"
    EXPIRE = "expire"


ClientTrigger = ClientInput | TimerName
ClientTable = dict[tuple[ClientState, ClientTrigger], tuple[ClientState, ClientAction]]

S, In, Do, T = ClientState, ClientInput, ClientAction, TimerName
INVITE_CLIENT: ClientTable = {
    (S.CALLING, T.A): (S.CALLING, Do.RETRANSMIT),
    (S.CALLING, T.B): (S.TERMINATED, Do.REPORT_TIMEOUT),
    (S.CALLING, In.PROVISIONAL_RECEIVED): (S.PROCEEDING, Do.PASS),
    (S.CALLING, In.SUCCESS_RECEIVED): (S.ACCEPTED, Do.PASS),  # RFC 6026 §8.4
    (S.CALLING, In.FAILURE_RECEIVED): (S.COMPLETED, Do.ACK_AND_PASS),
    (S.CALLING, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.PROCEEDING, In.PROVISIONAL_RECEIVED): (S.PROCEEDING, Do.PASS),
    (S.PROCEEDING, In.SUCCESS_RECEIVED): (S.ACCEPTED, Do.PASS),
    (S.PROCEEDING, In.FAILURE_RECEIVED): (S.COMPLETED, Do.ACK_AND_PASS),
    # §9.1: no final response 64*T1 after our CANCEL, and the INVITE is given up.
    (S.PROCEEDING, T.B): (S.TERMINATED, Do.REPORT_TIMEOUT),
    (S.COMPLETED, In.FAILURE_RECEIVED): (S.COMPLETED, Do.RESEND_ACK),
    (S.COMPLETED, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, T.D): (S.TERMINATED, Do.EXPIRE),
    (S.ACCEPTED, In.SUCCESS_RECEIVED): (S.ACCEPTED, Do.PASS),  # RFC 6026 §8.4
    (S.ACCEPTED, T.M): (S.TERMINATED, Do.EXPIRE),
}

NON_INVITE_CLIENT: ClientTable = {
    (S.TRYING, T.E): (S.TRYING, Do.RETRANSMIT),
    (S.TRYING, T.F): (S.TERMINATED, Do.REPORT_TIMEOUT),
    (S.TRYING, In.PROVISIONAL_RECEIVED): (S.PROCEEDING, Do.PASS),
    (S.TRYING, In.SUCCESS_RECEIVED): (S.COMPLETED, Do.PASS),
    (S.TRYING, In.FAILURE_RECEIVED): (S.COMPLETED, Do.PASS),
    (S.TRYING, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.PROCEEDING, T.E): (S.PROCEEDING, Do.RETRANSMIT),
    (S.PROCEEDING, T.F): (S.TERMINATED, Do.REPORT_TIMEOUT),
    (S.PROCEEDING, In.PROVISIONAL_RECEIVED): (S.PROCEEDING, Do.PASS),
    (S.PROCEEDING, In.SUCCESS_RECEIVED): (S.COMPLETED, Do.PASS),
    (S.PROCEEDING, In.FAILURE_RECEIVED): (S.COMPLETED, Do.PASS),
    (S.PROCEEDING, In.TRANSPORT_FAILED): (S.TERMINATED, Do.REPORT_TRANSPORT_ERROR),
    (S.COMPLETED, In.PROVISIONAL_RECEIVED): (S.COMPLETED, Do.ABSORB),
    (S.COMPLETED, In.SUCCESS_RECEIVED): (S.COMPLETED, Do.ABSORB),
    (S.COMPLETED, In.FAILURE_RECEIVED): (S.COMPLETED, Do.ABSORB),
    (S.COMPLETED, T.K): (S.TERMINATED, Do.EXPIRE),
}
del S, In, Do, T


def response_input(response: Response) -> ClientInput:
    """What a response is, to a client transaction."""
    if response.status < 200:
        return ClientInput.PROVISIONAL_RECEIVED
    if response.status < 300:
        return ClientInput.SUCCESS_RECEIVED
    return ClientInput.FAILURE_RECEIVED


def _copied(request: Request, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, value) for name in names for value in request.headers.get_all(name)]


def failure_ack(request: Request, response: Response) -> Request:
    """The ACK for a 3xx-6xx to ``request`` (RFC 3261 §17.1.1.3).

    Request-URI, Call-ID, From and the top Via (so the branch) come from the
    INVITE, To from the response (its tag), the CSeq number with method ACK,
    and the INVITE's Route set.
    """
    cseq = request.cseq
    vias = request.headers.get_all("Via")
    assert cseq is not None and vias, "a client transaction's request has Via and CSeq"
    fields = [
        ("Via", vias[0]),
        ("Max-Forwards", request.headers.get("Max-Forwards") or MAX_FORWARDS),
        *_copied(request, ("Route",)),
        *_copied(request, ("From",)),
        ("To", response.headers.get("To") or request.headers.first("To")),
        *_copied(request, ("Call-ID",)),
        ("CSeq", f"{cseq.number} ACK"),
    ]
    return Request(method="ACK", uri=request.uri, headers=Headers(fields))


def cancel_request(invite: Request) -> Request:
    """The CANCEL of ``invite`` (RFC 3261 §9.1), to send in a client transaction of its own.

    It copies the INVITE's Request-URI, Call-ID, To, From, CSeq number, top
    Via (the same branch: the server matches it to the INVITE by that) and
    Route set. §9.1 asks the TU to wait for a provisional response before
    sending it, and not to cancel anything but an INVITE.
    """
    if invite.method != "INVITE":
        raise ValueError("only an INVITE is cancelled")
    cseq = invite.cseq
    vias = invite.headers.get_all("Via")
    if cseq is None or not vias:
        raise ValueError("an INVITE without Via or CSeq")
    fields = [
        ("Via", vias[0]),
        ("Max-Forwards", MAX_FORWARDS),
        *_copied(invite, ("Route", "From", "To", "Call-ID")),
        ("CSeq", f"{cseq.number} CANCEL"),
    ]
    return Request(method="CANCEL", uri=invite.uri, headers=Headers(fields))


class ClientTransaction:
    """One request of the TU's, sent to one destination, until Terminated."""

    __slots__ = (
        "_ack",
        "_interval",
        "_schedule",
        "_sent",
        "_table",
        "_timers",
        "destination",
        "invite",
        "key",
        "request",
        "state",
    )

    def __init__(
        self,
        *,
        key: TransactionKey,
        request: Request,
        destination: Peer,
        timers: Timers,
        schedule: Schedule[TransactionKey, TimerName],
    ) -> None:
        self.key = key
        self.request = request
        self.destination = destination
        self.invite = request.method == "INVITE"
        self.state = ClientState.CALLING if self.invite else ClientState.TRYING
        self._table = INVITE_CLIENT if self.invite else NON_INVITE_CLIENT
        self._timers = timers
        self._schedule = schedule
        self._sent = Transmit(message=request, destination=destination, key=key)
        self._ack: Transmit | None = None
        self._interval = timers.t1  # of the retransmission timer, A or E

    @property
    def reliable(self) -> bool:
        return self.destination.reliable

    def start(self, now: float) -> list[Output]:
        """Send the request and arm the timers of the first state (§17.1.1.2, §17.1.2.2)."""
        retransmission, timeout = (
            (TimerName.A, TimerName.B) if self.invite else (TimerName.E, TimerName.F)
        )
        if not self.reliable:
            self._schedule.arm(self.key, retransmission, now + self._interval)
        self._schedule.arm(self.key, timeout, now + self._timers.timeout)
        return [self._sent]

    def receive(self, response: Response, now: float) -> list[Output]:
        """A response whose top Via branch and CSeq method match this transaction."""
        return self._handle(response_input(response), now, response)

    def cancelled(self, now: float) -> None:
        """Our CANCEL of this INVITE is on its way: give up 64*T1 from now without a final
        response (§9.1), timer B re-armed for the purpose."""
        if self.invite and self.state is ClientState.PROCEEDING:
            self._schedule.arm(self.key, TimerName.B, now + self._timers.timeout)

    def timer_fired(self, timer: TimerName, now: float) -> list[Output]:
        return self._handle(timer, now, None)

    def transport_failed(self, now: float) -> list[Output]:
        return self._handle(ClientInput.TRANSPORT_FAILED, now, None)

    # -- the machine ----------------------------------------------------------

    def _handle(
        self, trigger: ClientTrigger, now: float, response: Response | None
    ) -> list[Output]:
        entry = self._table.get((self.state, trigger))
        if entry is None:
            return []  # a response the state does not expect (a 1xx after a 2xx): absorbed
        next_state, action = entry
        outputs: list[Output] = []
        if action is ClientAction.RETRANSMIT:
            assert isinstance(trigger, TimerName)
            outputs.append(self._sent)
            self._interval = self._next_interval(trigger)
            self._schedule.arm(self.key, trigger, now + self._interval)
        elif action is ClientAction.PASS:
            assert response is not None
            outputs.append(ResponseReceived(response=response, key=self.key))
        elif action is ClientAction.ACK_AND_PASS:
            assert response is not None
            ack = failure_ack(self.request, response)
            self._ack = Transmit(message=ack, destination=self.destination, key=self.key)
            outputs += (self._ack, ResponseReceived(response=response, key=self.key))
        elif action is ClientAction.RESEND_ACK:
            assert self._ack is not None
            outputs.append(self._ack)  # §17.1.1.2: and not passed up
        elif action is ClientAction.REPORT_TIMEOUT:
            outputs.append(TransactionTimedOut(key=self.key))
        elif action is ClientAction.REPORT_TRANSPORT_ERROR:
            outputs.append(TransportError(key=self.key))
        if next_state is not self.state:
            outputs += self._enter(next_state, now)
        return outputs

    def _next_interval(self, trigger: ClientTrigger) -> float:
        if trigger is TimerName.A:
            return self._timers.backed_off(self._interval, cap=False)  # §17.1.1.2
        if self.state is ClientState.PROCEEDING:
            return self._timers.t2  # §17.1.2.2: a provisional response came, so T2
        return self._timers.backed_off(self._interval)  # min(2E, T2)

    def _enter(self, state: ClientState, now: float) -> list[Output]:
        self.state = state
        schedule, key = self._schedule, self.key
        if state is ClientState.PROCEEDING:
            if self.invite:  # §17.1.1.2: no more retransmissions, and B is Calling's alone
                schedule.cancel(key, TimerName.A)
                schedule.cancel(key, TimerName.B)
            return []
        if state is ClientState.COMPLETED:
            schedule.cancel_all(key)
            return self._start(TimerName.D if self.invite else TimerName.K, now)
        if state is ClientState.ACCEPTED:
            schedule.cancel_all(key)
            return self._start(TimerName.M, now)
        if state is ClientState.TERMINATED:
            schedule.cancel_all(key)
            return [Terminated(key=key)]
        return []

    def _start(self, timer: TimerName, now: float) -> list[Output]:
        duration = self._timers.duration(timer, reliable=self.reliable)
        if duration <= 0:
            return self._handle(timer, now, None)  # D or K on a reliable transport: at once
        self._schedule.arm(self.key, timer, now + duration)
        return []


__all__ = [
    "INVITE_CLIENT",
    "NON_INVITE_CLIENT",
    "ClientAction",
    "ClientInput",
    "ClientState",
    "ClientTransaction",
    "cancel_request",
    "failure_ack",
    "response_input",
]
