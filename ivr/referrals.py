"""Blind transfer by REFER from an agent's phone (RFC 3515): its target, and the NOTIFYs.

Theory of operation. An agent's phone in a call sends REFER with a
``Refer-To`` naming where the caller should go. ``refer_target`` reads it:
exactly one Refer-To (§2.4.1, else 400), a SIP URI at our host whose user
part is a queue id, an agent id or an agent's SIP username (a queue wins a
tie), else 404 (our hosts: the address we listen on and the name the REFER's
Request-URI reached us by); a URI at another host is refused 403 (sending a talking
caller out of the centre is not done: the core has no "transferred out"
outcome for a connected call, and ``TransferToSite`` is for callers not yet
answered). A target we know becomes the core's ``CallTransferred``; the REFER
is answered 202 and the implicit subscription (§2.4.4) reports with NOTIFYs
whose bodies are ``message/sipfrag`` status lines: ``100 Trying`` at once,
then ``200 OK`` once the core has sent the caller on (the phone's leg is
then hung up with a BYE) or the failure the core's refusal maps to
(``refusal_status``: the agent busy is 480, the queue full or unstaffed 486,
anything else 403), with ``Subscription-State: terminated``; the phone keeps
the caller then. ``Referral`` is one REFER's subscription, from the 202 to
its last NOTIFY (``REFERRAL_TRANSITIONS``).

Not done: RFC 3892 Referred-By, RFC 4488 norefersub, REFER outside a dialog,
attended transfer (``Replaces``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from acd.ids import AgentId, CallId, QueueId
from ivr.agent_legs import AgentLeg
from ivr.sip.dialogs import Dialog
from ivr.sip.errors import ParseError
from ivr.sip.fields import parse_name_address
from ivr.sip.message import Request
from ivr.sip.uri import SipUri

SIPFRAG = "message/sipfrag;version=2.0"
SUBSCRIPTION_SECONDS = 60  # how long the implicit subscription lasts at most (§2.4.4)

# The core's refusals of a transfer, as the status line the phone reads in the NOTIFY.
_REFUSALS: Mapping[str, tuple[int, str]] = MappingProxyType(
    {
        "agent_unavailable": (480, "Temporarily Unavailable"),
        "queue_full": (486, "Busy Here"),
        "unstaffed": (486, "Busy Here"),
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferTarget:
    """Where a REFER sends the caller: one queue or one agent."""

    queue_id: QueueId | None = None
    agent_id: AgentId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferRefused:
    """A REFER we answer with a failure at once."""

    status: int
    reason: str


def refer_target(
    request: Request,
    *,
    hosts: Collection[str],
    queues: Collection[str],
    find_agent: Callable[[str], AgentId | None],
) -> ReferTarget | ReferRefused:
    """Read the REFER's ``Refer-To``: a queue or an agent of ours, or why not."""
    values = request.headers.get_all("Refer-To")
    if len(values) != 1:
        return ReferRefused(status=400, reason="Exactly one Refer-To is required")
    try:
        uri = parse_name_address(values[0]).uri
    except ParseError:
        return ReferRefused(status=400, reason="Bad Refer-To")
    if not isinstance(uri, SipUri) or not uri.user:
        return ReferRefused(status=400, reason="Refer-To must name a queue or an agent")
    if uri.host not in hosts:
        return ReferRefused(status=403, reason="Transfer outside the centre is not supported")
    if uri.user in queues:
        return ReferTarget(queue_id=QueueId(uri.user))
    agent_id = find_agent(uri.user)
    if agent_id is not None:
        return ReferTarget(agent_id=agent_id)
    return ReferRefused(status=404, reason="No such queue or agent")


def refusal_status(error_id: str) -> tuple[int, str]:
    """The final status a transfer the core refused is reported with."""
    return _REFUSALS.get(error_id, (403, "Forbidden"))


class ReferralState(Enum):
    __hash__ = object.__hash__

    TRYING = "trying"  # 202 and NOTIFY 100 sent; the core has the transfer
    DONE = "done"  # the last NOTIFY sent (or the dialog gone)


class ReferralInput(Enum):
    __hash__ = object.__hash__

    SETTLED = "settled"  # the core moved the caller, or refused


REFERRAL_TRANSITIONS: Mapping[tuple[ReferralState, ReferralInput], ReferralState] = (
    MappingProxyType({(ReferralState.TRYING, ReferralInput.SETTLED): ReferralState.DONE})
)


class Referral:
    """One REFER's implicit subscription: the phone leg it came on and its event id."""

    __slots__ = ("call_id", "event_id", "leg", "state", "target")

    def __init__(self, *, leg: AgentLeg, event_id: int, target: ReferTarget) -> None:
        self.leg = leg
        self.call_id: CallId = leg.call_id
        self.event_id = event_id  # the REFER's CSeq number: the NOTIFYs' Event id (§2.4.6)
        self.target = target
        self.state = ReferralState.TRYING

    def move(self, given: ReferralInput) -> ReferralState:
        try:
            self.state = REFERRAL_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for a referral {self.state.value}") from None
        return self.state

    def __repr__(self) -> str:
        return f"Referral({self.call_id}, {self.state.value})"


def notify(dialog: Dialog, referral: Referral, status: int, reason: str) -> Request:
    """The NOTIFY reporting ``status`` on the referral; a final status ends the subscription."""
    final = status >= 200
    state = "terminated;reason=noresource" if final else f"active;expires={SUBSCRIPTION_SECONDS}"
    return dialog.request(
        "NOTIFY",
        headers=[
            ("Event", f"refer;id={referral.event_id}"),
            ("Subscription-State", state),
            ("Content-Type", SIPFRAG),
        ],
        body=f"SIP/2.0 {status} {reason}\r\n".encode(),
    )
