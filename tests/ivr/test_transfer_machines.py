"""The transfer pieces' state machines, and how a REFER's target is read (RFC 3515)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import pytest

from acd.ids import AgentId, QueueId
from ivr.caller_legs import CALLER_TRANSITIONS, CallerInput, CallerState
from ivr.outbound_legs import OUTBOUND_TRANSITIONS, OutboundInput, OutboundState
from ivr.referrals import (
    REFERRAL_TRANSITIONS,
    ReferralInput,
    ReferralState,
    ReferRefused,
    ReferTarget,
    refer_target,
    refusal_status,
)
from ivr.sip import Request, parse_message
from ivr.site_calls import SITE_TRANSITIONS, SiteCallState, SiteInput

MACHINES: list[tuple[Mapping[Any, Any], type[Enum], type[Enum], Enum]] = [
    (OUTBOUND_TRANSITIONS, OutboundState, OutboundInput, OutboundState.ENDED),
    (SITE_TRANSITIONS, SiteCallState, SiteInput, SiteCallState.ENDED),
    (REFERRAL_TRANSITIONS, ReferralState, ReferralInput, ReferralState.DONE),
    (CALLER_TRANSITIONS, CallerState, CallerInput, CallerState.ENDED),
]


@pytest.mark.parametrize("table, states, inputs, final", MACHINES)
def test_every_move_lands_in_a_state_and_the_final_state_takes_no_input(
    table: Mapping[Any, Any], states: type[Enum], inputs: type[Enum], final: Enum
) -> None:
    for (state, given), to in table.items():
        assert isinstance(state, states) and isinstance(given, inputs) and isinstance(to, states)
    assert not [key for key in table if key[0] is final]
    reachable = {final}
    while True:  # every state can still reach the end
        more = {state for (state, _), to in table.items() if to in reachable} - reachable
        if not more:
            break
        reachable |= more
    assert reachable == set(states)


def refer(*refer_to: str) -> Request:
    fields = "".join(f"Refer-To: {value}\r\n" for value in refer_to)
    message = parse_message(
        (
            "REFER sip:acd@127.0.0.1:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-r1\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:ann@127.0.0.1>;tag=a1\r\nTo: <sip:acd@127.0.0.1>;tag=b2\r\n"
            "Call-ID: c1@127.0.0.1\r\nCSeq: 7 REFER\r\n"
            f"{fields}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


AGENTS: Callable[[str], AgentId | None] = {"bob": AgentId("bob"), "bob-desk": AgentId("bob")}.get


def target(request: Request) -> ReferTarget | ReferRefused:
    return refer_target(request, hosts={"127.0.0.1"}, queues={"support"}, find_agent=AGENTS)


@pytest.mark.parametrize(
    "refer_to, expected",
    [
        (("<sip:support@127.0.0.1>",), ReferTarget(queue_id=QueueId("support"))),
        (("sip:bob-desk@127.0.0.1",), ReferTarget(agent_id=AgentId("bob"))),
        (("<sip:bob@127.0.0.1;transport=udp>",), ReferTarget(agent_id=AgentId("bob"))),
        (("<sip:nobody@127.0.0.1>",), ReferRefused(status=404, reason="No such queue or agent")),
        ((), ReferRefused(status=400, reason="Exactly one Refer-To is required")),
        (
            ("<sip:support@127.0.0.1>", "<sip:bob@127.0.0.1>"),
            ReferRefused(status=400, reason="Exactly one Refer-To is required"),
        ),
        (
            ("<sip:127.0.0.1>",),
            ReferRefused(status=400, reason="Refer-To must name a queue or an agent"),
        ),
        (
            ("<tel:+15551234>",),
            ReferRefused(status=400, reason="Refer-To must name a queue or an agent"),
        ),
        (
            ("<sip:support@elsewhere.example>",),
            ReferRefused(status=403, reason="Transfer outside the centre is not supported"),
        ),
    ],
)
def test_a_refer_to_names_a_queue_or_an_agent_of_ours_or_is_refused_with_a_reason(
    refer_to: tuple[str, ...], expected: ReferTarget | ReferRefused
) -> None:
    assert target(refer(*refer_to)) == expected


def test_the_cores_refusals_are_reported_as_the_status_a_phone_understands() -> None:
    assert refusal_status("agent_unavailable") == (480, "Temporarily Unavailable")
    assert refusal_status("queue_full") == (486, "Busy Here")
    assert refusal_status("wrong_state") == (403, "Forbidden")
