"""An agent's phone told of a hold from the desktop: our re-INVITE, a=sendonly then sendrecv.

Theory of operation. The call's hold state is the core's; the phone's dialog
follows it (RFC 3264 §8.4). When the core holds or retrieves a call whose
agent talks on a SIP phone, ``PhoneHold.want(held)`` records what it wants
and ``offer_due`` says whether a re-INVITE must go, and with which
direction: only when that differs from what our last offer agreed with the
phone, and never a hold when the phone holds the call itself (its own
re-INVITE made the hold, so answering it was the change: nothing goes back,
no loop). One re-INVITE of ours at a time (RFC 3261 §14.1); a change the core
makes while one is out is sent when it ends.

How a re-INVITE ends: a 2xx agrees the new direction; a 491 (glare: the
phone re-INVITEd at the same moment) backs off a random 2.1 to 4 s, as the
owner of the Call-ID must (§14.1), then offers again; any other refusal
leaves the session as it was (§14.1) and gives that change up, logged (the
caller still hears the music, only the phone is not told); the next change
from the core tries again. A 408, a 481 or no answer at all ends the dialog
(§14.1): that is for the phone leg to act on, not this machine.

``REINVITE_TRANSITIONS`` is the machine; anything else raises.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

GLARE_BACKOFF = (2.1, 4.0)  # RFC 3261 §14.1, for the owner of the Call-ID: we sent the INVITE


class ReinviteState(Enum):
    __hash__ = object.__hash__

    IDLE = "idle"  # no re-INVITE of ours out
    OFFERING = "offering"  # one sent, no final response yet
    BACKING_OFF = "backing off"  # a 491 came: wait before offering again


class ReinviteInput(Enum):
    __hash__ = object.__hash__

    SENT = "sent"
    AGREED = "agreed"  # a 2xx with an answer we could use
    REFUSED = "refused"  # any other final response but a 491
    GLARED = "glared"  # 491 Request Pending
    RETRY_DUE = "retry due"


S, In = ReinviteState, ReinviteInput
REINVITE_TRANSITIONS: Mapping[tuple[ReinviteState, ReinviteInput], ReinviteState] = (
    MappingProxyType(
        {
            (S.IDLE, In.SENT): S.OFFERING,
            (S.OFFERING, In.AGREED): S.IDLE,
            (S.OFFERING, In.REFUSED): S.IDLE,
            (S.OFFERING, In.GLARED): S.BACKING_OFF,
            (S.BACKING_OFF, In.RETRY_DUE): S.IDLE,
        }
    )
)
del S, In


class PhoneHold:
    """Whether the core wants the phone's dialog held, what it agrees now, and our re-INVITE."""

    __slots__ = ("agreed", "offering", "phone_holds", "retry_at", "state", "wanted")

    def __init__(self) -> None:
        self.wanted = False  # the core's hold state, as last told
        self.agreed = False  # our last agreed offer or answer is a=sendonly: we hold the phone
        self.phone_holds = False  # the phone's own last offer put us on hold
        self.offering: bool | None = None  # the hold the re-INVITE out offers
        self.retry_at: float | None = None
        self.state = ReinviteState.IDLE

    def _move(self, given: ReinviteInput) -> None:
        try:
            self.state = REINVITE_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for a re-INVITE {self.state.value}") from None

    def want(self, held: bool) -> None:
        """The core held (``True``) or retrieved the call."""
        self.wanted = held

    def offer_due(self) -> bool | None:
        """The hold our next re-INVITE must offer (``True``: a=sendonly), or None: none is due."""
        if self.state is not ReinviteState.IDLE or self.wanted == self.agreed:
            return None
        if self.wanted and self.phone_holds:
            return None  # the phone holds the call itself: that is the hold
        return self.wanted

    def sent(self, held: bool) -> None:
        self._move(ReinviteInput.SENT)
        self.offering = held

    def agreed_offer(self) -> None:
        """Our re-INVITE's 2xx came with an answer we used."""
        self._move(ReinviteInput.AGREED)
        assert self.offering is not None
        self.agreed, self.offering = self.offering, None

    def refused(self) -> None:
        """Refused, or answered with SDP we cannot use: the session stays, the change is dropped."""
        self._move(ReinviteInput.REFUSED)
        self.offering = None
        self.wanted = self.agreed

    def glared(self, now: float, rng: random.Random | None = None) -> float:
        """A 491: when to offer again (§14.1: 2.1 to 4 s, in units of 10 ms)."""
        self._move(ReinviteInput.GLARED)
        self.offering = None
        low, high = (round(x * 100) for x in GLARE_BACKOFF)
        self.retry_at = now + (rng or random).randint(low, high) / 100
        return self.retry_at

    def retry(self) -> None:
        """The back-off after a 491 is over: ``offer_due`` may say to offer again."""
        self._move(ReinviteInput.RETRY_DUE)
        self.retry_at = None

    @property
    def offering_now(self) -> bool:
        return self.state is ReinviteState.OFFERING
