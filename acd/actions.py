"""Outputs for adapters: what the outside world must now do, named as imperatives."""

from __future__ import annotations

from dataclasses import dataclass

from acd.ids import AgentId, CallId, ReservationId


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferCall:
    """Ring ``agent_id`` with ``call_id`` (or a consultation about it) until ``deadline``."""

    reservation_id: ReservationId
    call_id: CallId
    agent_id: AgentId
    deadline: float
    consult_from: AgentId | None = None  # None: the caller; else the agent who consults
    callback_number: str | None = None  # a callback task: nobody waits, call this number


@dataclass(frozen=True, slots=True, kw_only=True)
class RetractOffer:
    """Stop ringing the agent: the offer timed out or the caller hung up."""

    reservation_id: ReservationId
    call_id: CallId
    agent_id: AgentId


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectCall:
    """Bridge the caller to the agent who accepted, or who took the caller over.

    For a callback task (``callback_number`` set) there is no caller yet: call the
    number and bridge the agent to whoever answers, then say ``CallbackAnswered``
    (or ``CallbackFailed``).
    """

    call_id: CallId
    agent_id: AgentId
    callback_number: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayAnnouncement:
    """Tell a waiting caller their position and estimated wait (None: not enough data)."""

    call_id: CallId
    position: int  # 1 is next
    ewt_seconds: float | None
    offer_callback: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferToSite:
    """Send the call to another centre (a backup site or answering service) by SIP URI."""

    call_id: CallId
    site: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectCall:
    """Refuse the call (busy): it never reached a queue."""

    call_id: CallId
    reason: str


Action = OfferCall | RetractOffer | ConnectCall | PlayAnnouncement | TransferToSite | RejectCall
