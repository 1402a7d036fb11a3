"""The transaction and dialog machines as data, and random traffic against the whole layer."""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ivr.sip.client_transactions import INVITE_CLIENT, NON_INVITE_CLIENT, ClientState
from ivr.sip.dialogs import DIALOG_TRANSITIONS, Dialog, Dialogs, DialogState
from ivr.sip.fields import NameAddress
from ivr.sip.message import Request, Response, parse_message, response_to
from ivr.sip.server_transactions import (
    INVITE_SERVER,
    NON_INVITE_SERVER,
    ServerInput,
    ServerState,
    response_input,
)
from ivr.sip.transactions import (
    InvalidTransition,
    Output,
    Peer,
    RequestReceived,
    Terminated,
    TransactionKey,
    TransactionLayer,
    Transmit,
    client_key,
)
from ivr.sip.uri import parse_uri

TABLES: list[tuple[str, dict[Any, Any], Enum, Enum]] = [
    ("INVITE server", INVITE_SERVER, ServerState.PROCEEDING, ServerState.TERMINATED),
    ("non-INVITE server", NON_INVITE_SERVER, ServerState.TRYING, ServerState.TERMINATED),
    ("INVITE client", INVITE_CLIENT, ClientState.CALLING, ClientState.TERMINATED),
    ("non-INVITE client", NON_INVITE_CLIENT, ClientState.TRYING, ClientState.TERMINATED),
    ("dialog", DIALOG_TRANSITIONS, DialogState.EARLY, DialogState.TERMINATED),
]


def _graph(table: dict[Any, Any]) -> dict[Enum, set[Enum]]:
    edges: dict[Enum, set[Enum]] = {}
    for (state, _), target in table.items():
        next_state = target[0] if isinstance(target, tuple) else target
        edges.setdefault(state, set()).add(next_state)
    return edges


@pytest.mark.parametrize(("name", "table", "start", "end"), TABLES, ids=[t[0] for t in TABLES])
def test_every_state_of_a_machine_is_reachable_and_can_reach_its_end(
    name: str,
    table: dict[Any, Any],
    start: Enum,
    end: Enum,
) -> None:
    edges = _graph(table)
    reached, queue = {start}, deque([start])
    while queue:
        for following in edges.get(queue.popleft(), ()):
            if following not in reached:
                reached.add(following)
                queue.append(following)
    assert end in reached and end not in edges  # the end is final
    for state in reached - {end}:
        seen, todo = {state}, [state]
        while todo:
            for following in edges.get(todo.pop(), ()):
                if following not in seen:
                    seen.add(following)
                    todo.append(following)
        assert end in seen, f"{name}: {state} can never end"


def test_after_a_final_response_the_tu_may_only_re_send_a_2xx() -> None:
    from_tu = {ServerInput.PROVISIONAL_SENT, ServerInput.SUCCESS_SENT, ServerInput.FAILURE_SENT}
    for table in (INVITE_SERVER, NON_INVITE_SERVER):
        for state, trigger in table:
            if trigger in from_tu and state not in (ServerState.TRYING, ServerState.PROCEEDING):
                assert (state, trigger) == (ServerState.ACCEPTED, ServerInput.SUCCESS_SENT)


# -- random traffic ------------------------------------------------------------------

CAP = 6
HOSTS = ("192.0.2.10", "192.0.2.11")
BRANCHES = ("z9hG4bKa", "z9hG4bKb", "z9hG4bKc", None)  # None: an RFC 2543 request
METHODS = ("INVITE", "OPTIONS", "BYE", "ACK", "CANCEL", "INFO")


def _request(method: str, branch: str | None, host: str, transport: str, cseq: int) -> Request:
    via = f"SIP/2.0/{transport.upper()} {host}:5060" + (f";branch={branch}" if branch else "")
    text = (
        f"{method} sip:ivr@198.51.100.1 SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n"
        f"From: <sip:a@{host}>;tag=x\r\nTo: <sip:ivr@198.51.100.1>\r\n"
        f"Call-ID: c@{host}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


class LayerUnderRandomTraffic(RuleBasedStateMachine):
    """Peers and a TU doing anything in any order; the layer must keep its promises."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = TransactionLayer(max_server_transactions=CAP)
        self.now = 0.0
        self.live: dict[TransactionKey, Request] = {}  # what the TU was given, not yet over
        self.ours: dict[TransactionKey, Request] = {}  # client transactions started
        self.sent = 0

    def _take(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, RequestReceived):
                assert output.key not in self.live, "a retransmission reached the TU"
                self.live[output.key] = output.request
            elif isinstance(output, Terminated):
                self.live.pop(output.key, None)
                self.ours.pop(output.key, None)
            elif isinstance(output, Transmit):
                assert output.data  # serialized, ready to send

    @rule(
        method=st.sampled_from(METHODS),
        branch=st.sampled_from(BRANCHES),
        host=st.sampled_from(HOSTS),
        transport=st.sampled_from(("udp", "tcp")),
        cseq=st.integers(1, 3),
    )
    def a_peer_sends_a_request(
        self, method: str, branch: str | None, host: str, transport: str, cseq: int
    ) -> None:
        source = Peer(host=host, port=5060, transport="tcp" if transport == "tcp" else "udp")
        request = _request(method, branch, host, transport, cseq)
        self._take(self.layer.receive(request, source, self.now))

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), status=st.sampled_from((180, 200, 486, 603)))
    def the_tu_responds(self, data: st.DataObject, status: int) -> None:
        key = data.draw(st.sampled_from(list(self.live)))
        request = self.live[key]
        state = self.layer.state(key)
        assert state is not None
        response = response_to(request, status, to_tag="tu")
        table = INVITE_SERVER if key.method == "INVITE" else NON_INVITE_SERVER
        if (state, response_input(response)) in table:
            self._take(self.layer.respond(key, response, self.now))
        else:
            with pytest.raises(InvalidTransition):
                self.layer.respond(key, response, self.now)

    @rule(method=st.sampled_from(("INVITE", "OPTIONS", "BYE")), tcp=st.booleans())
    def the_tu_sends_a_request(self, method: str, tcp: bool) -> None:
        transport = "tcp" if tcp else "udp"
        self.sent += 1  # a branch of ours, numbered so that a failing example replays
        request = _request(method, f"z9hG4bKtu{self.sent}", "198.51.100.1", transport, 1)
        destination = Peer(host=HOSTS[0], port=5060, transport="tcp" if tcp else "udp")
        outputs = self.layer.request(request, destination, self.now)
        key = client_key(request)
        assert key is not None
        self.ours[key] = request
        self._take(outputs)

    @precondition(lambda self: bool(self.ours))
    @rule(data=st.data(), status=st.sampled_from((100, 180, 200, 486)))
    def a_peer_answers_us(self, data: st.DataObject, status: int) -> None:
        request = self.ours[data.draw(st.sampled_from(list(self.ours)))]
        response = response_to(request, status, to_tag=None if status == 100 else "peer")
        self._take(self.layer.receive(response, Peer(host=HOSTS[0], port=5060), self.now))

    @rule(data=st.data())
    def a_send_fails(self, data: st.DataObject) -> None:
        known = [*self.live, *self.ours]
        if known:
            self._take(self.layer.transport_failed(data.draw(st.sampled_from(known)), self.now))

    @rule(seconds=st.floats(0.0, 40.0, allow_nan=False))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self._take(self.layer.advance(self.now))

    @rule()
    def everything_is_answered_and_every_timer_runs_out(self) -> None:
        for key in list(self.live):
            state = self.layer.state(key)
            if state in (ServerState.TRYING, ServerState.PROCEEDING):
                final = 486 if key.method == "INVITE" else 200
                self._take(self.layer.respond(key, response_to(self.live[key], final), self.now))
        for _ in range(1000):
            deadline = self.layer.next_deadline()
            if deadline is None:
                break
            self.now = max(self.now, deadline)
            self._take(self.layer.advance(self.now))
        # Client INVITEs in Proceeding wait for the TU to CANCEL: that is all that may be left.
        left = [k for k in self.ours if self.layer.state(k) is not ClientState.PROCEEDING]
        assert left == [] and not self.live
        assert len(self.layer) == len(self.ours)

    @invariant()
    def the_layer_stays_bounded(self) -> None:
        statistics = self.layer.statistics()
        assert statistics.server_transactions <= CAP
        assert statistics.server_transactions == len(self.live)
        assert all(self.layer.state(key) is not None for key in self.live)
        assert statistics.timer_entries <= 2 * statistics.timers + 64 + 1


TestLayerUnderRandomTraffic = LayerUnderRandomTraffic.TestCase
TestLayerUnderRandomTraffic.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)


# -- dialogs under random in-dialog traffic -----------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(("INFO", "ACK", "INVITE", "BYE", "UPDATE")), st.integers(1, 9)),
        max_size=20,
    )
)
def test_in_dialog_requests_in_any_order_never_lower_the_remote_cseq(
    sequence: list[tuple[str, int]],
) -> None:
    dialogs = Dialogs()
    invite = _request("INVITE", "z9hG4bKa", HOSTS[0], "udp", 1)
    invite.headers.add("Contact", "<sip:a@192.0.2.10>")
    dialog = dialogs.create_uas(
        invite, contact=NameAddress(uri=parse_uri("sip:ivr@198.51.100.1")), local_tag="t"
    )
    dialog.answer(invite, 200, 0.0)
    highest = 1
    for method, cseq in sequence:
        request = _request(method, "z9hG4bKr", HOSTS[0], "udp", cseq)
        request.headers.replace("To", "<sip:ivr@198.51.100.1>;tag=t")
        outcome = dialogs.apply_request(request, 1.0)
        if dialog.state is DialogState.TERMINATED:
            assert len(dialogs) == 0
            continue
        if isinstance(outcome, Response):
            assert outcome.status == 500 and cseq < highest
        else:
            assert isinstance(outcome, Dialog)
            if method != "ACK":
                highest = cseq
        assert dialog.remote_seq == highest
