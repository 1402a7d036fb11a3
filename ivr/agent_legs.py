"""An agent's phone leg: our INVITE for an offer, from ringing to the end of the talk.

Theory of operation. ``OfferCall`` for an agent whose phone is registered
sends an INVITE with our SDP offer (``INVITING``). A provisional response
means it rings (``RINGING``); a 2xx is acknowledged and reported to the core
as ``OfferAccepted`` (``ANSWERED``); a failure or a timeout is
``OfferRejected`` (``ENDED``). The core retracting the offer (ring-no-answer,
the caller gone, the desktop answered instead) cancels the INVITE
(``CANCELLING``, RFC 3261 §9.1): a CANCEL may only follow a provisional
response, so one retracted before any is sent when the first arrives, and a
2xx that crosses the CANCEL is acknowledged and then ended with a BYE
(§9.1 allows the race). ``ConnectCall`` bridges it (``BRIDGED``); either BYE
ends it. ``AGENT_TRANSITIONS`` is the machine; anything else raises.

A leg rung with ``auto_answer`` is the second INVITE for an offer the agent
accepted on the desktop while the first rang (``ivr.agent_phones``): the core
is connected already, so its answer is bridged at once and its failure is no
rejected offer. ``hold`` is the phone dialog's hold by desktop
(``ivr.phone_hold``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from acd.ids import AgentId, CallId
from ivr.media import MediaLeg
from ivr.phone_hold import PhoneHold
from ivr.sdp import LocalSession
from ivr.sip.dialogs import Dialog
from ivr.sip.message import Request
from ivr.sip.transaction_outputs import Peer, TransactionKey


class AgentLegState(Enum):
    __hash__ = object.__hash__

    INVITING = "inviting"  # INVITE sent, nothing heard yet
    RINGING = "ringing"  # a provisional response came
    CANCELLING = "cancelling"  # the offer was retracted: CANCEL sent or owed
    ANSWERED = "answered"  # 2xx acknowledged; the core told
    BRIDGED = "bridged"
    ENDED = "ended"


class AgentInput(Enum):
    __hash__ = object.__hash__

    PROVISIONAL = "provisional"
    ACCEPTED = "accepted"  # a 2xx
    REFUSED = "refused"  # a final failure, or no answer at all (timer B)
    RETRACTED = "retracted"
    CONNECTED = "connected"
    ENDED = "ended"  # a BYE either way


S, In = AgentLegState, AgentInput
AGENT_TRANSITIONS: Mapping[tuple[AgentLegState, AgentInput], AgentLegState] = MappingProxyType(
    {
        (S.INVITING, In.PROVISIONAL): S.RINGING,
        (S.RINGING, In.PROVISIONAL): S.RINGING,
        (S.INVITING, In.ACCEPTED): S.ANSWERED,
        (S.RINGING, In.ACCEPTED): S.ANSWERED,
        (S.INVITING, In.REFUSED): S.ENDED,
        (S.RINGING, In.REFUSED): S.ENDED,
        (S.INVITING, In.RETRACTED): S.CANCELLING,
        (S.RINGING, In.RETRACTED): S.CANCELLING,
        (S.CANCELLING, In.PROVISIONAL): S.CANCELLING,
        (S.CANCELLING, In.RETRACTED): S.CANCELLING,
        (S.CANCELLING, In.REFUSED): S.ENDED,  # the 487, or a failure that crossed the CANCEL
        (S.CANCELLING, In.ACCEPTED): S.ENDED,  # a 2xx that crossed it: ACK, then BYE
        (S.ANSWERED, In.CONNECTED): S.BRIDGED,
        (S.ANSWERED, In.ENDED): S.ENDED,
        (S.BRIDGED, In.ENDED): S.ENDED,
        (S.ANSWERED, In.RETRACTED): S.ENDED,  # answered after the core gave up: BYE
    }
)
del S, In


class AgentLeg:
    """Our INVITE to one agent's phone for one call, its dialog and its media."""

    __slots__ = (
        "agent_id",
        "answer_by",
        "auto_answer",
        "call_id",
        "destination",
        "dialog",
        "hold",
        "invite",
        "key",
        "media",
        "reinvite",
        "ring_seconds",
        "session",
        "state",
    )

    def __init__(
        self,
        *,
        agent_id: AgentId,
        call_id: CallId,
        invite: Request,
        key: TransactionKey,
        destination: Peer,
        media: MediaLeg,
        session: LocalSession,
        ring_seconds: float,
        auto_answer: bool = False,
        answer_by: float | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.call_id = call_id
        self.invite = invite
        self.key = key  # the INVITE's client transaction, for CANCEL and its responses
        self.destination = destination  # where the phone registered from (RFC 5626 §5.3 in spirit)
        self.media = media
        self.session = session
        self.ring_seconds = (
            ring_seconds  # how long the offer rang for: again after a desktop accept
        )
        self.auto_answer = auto_answer  # accepted on the desktop: the INVITE asks for auto-answer
        self.answer_by = answer_by  # an auto-answer INVITE's own ring timeout (the core's is over)
        self.dialog: Dialog | None = None
        self.hold = PhoneHold()
        self.reinvite: Request | None = None  # our re-INVITE out, for the hold
        self.state = AgentLegState.INVITING

    def move(self, given: AgentInput) -> AgentLegState:
        try:
            self.state = AGENT_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for an agent leg {self.state.value}") from None
        return self.state

    @property
    def ringing(self) -> bool:
        return self.state in (AgentLegState.INVITING, AgentLegState.RINGING)

    @property
    def talking(self) -> bool:
        return self.state in (AgentLegState.ANSWERED, AgentLegState.BRIDGED)

    def __repr__(self) -> str:
        return f"AgentLeg({self.agent_id} for {self.call_id}, {self.state.value})"
