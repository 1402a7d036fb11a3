"""Overflow to another site over SIP: the caller's leg bridged to a new call to the site's URI.

Theory of operation. When the core sends a caller to a backup centre
(``TransferToSite``) it has already ended the call (outcome ``overflowed``):
from then on the caller is ours alone, and ``SiteCalls`` carries them. We are
a back-to-back user agent: ``send`` places a new INVITE to the site's URI
(``ivr.outbound_legs``) while the caller keeps hearing music on hold
(``DIALLING``); when the site answers, the caller's media and the new leg are
bridged (``BRIDGED``: RTP relayed through us) and either side's BYE ends
both. A site that refuses, cannot be reached, or does not answer within
``ANSWER_SECONDS`` (we CANCEL it) leaves the caller a goodbye prompt, after
which they are hung up (``FAILING``); every such failure is logged with the
site's status. ``SITE_TRANSITIONS`` is the machine.

Bounded and cleaned up: at most ``MAX_SITE_CALLS`` at once (a caller beyond
that is treated as a refusal), each dial has a deadline (time is data:
``next_deadline`` and ``advance``), and ``close_all`` ends every leg when the
server stops. A ``302`` before the caller is answered (``OverflowMode.REDIRECT``)
is decided in ``ivr.answering``; once a caller is answered, overflow is always
this bridge.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from enum import Enum
from types import MappingProxyType

from ivr.caller_legs import CallerInput, CallerLeg, CallerState
from ivr.media import Bridge, Playback, PlaybackResult, Player
from ivr.outbound_legs import (
    LegAnswered,
    LegFailed,
    LegHungUp,
    LegReport,
    OutboundLeg,
    OutboundLegs,
    Unreachable,
)
from ivr.sip.errors import ParseError
from ivr.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

MAX_SITE_CALLS = 500  # overflow calls bridged or dialling at once; more are refused
ANSWER_SECONDS = 30.0  # a site that neither answers nor refuses by then is cancelled
FAILURE_PROMPT = "goodbye"  # "Thank you for calling. Goodbye.", in the caller's language
# The caller's number goes on to the site as our From's user part when it is a plain one.
_PLAIN_NUMBER = re.compile(r"[A-Za-z0-9+*._-]{1,64}")  # RFC 3261 §25.1: no escaping needed


class OverflowMode(Enum):
    """How a caller sent to another site gets there (``ACD_SIP_OVERFLOW``)."""

    BRIDGE = "bridge"  # we call the site and bridge the caller to it
    REDIRECT = "redirect"  # 302 to the site for a caller not answered yet, else bridge


class SiteCallState(Enum):
    __hash__ = object.__hash__

    DIALLING = "dialling"  # our INVITE to the site is out; the caller hears music
    BRIDGED = "bridged"
    FAILING = "failing"  # the site did not take the call: the goodbye plays
    ENDED = "ended"


class SiteInput(Enum):
    __hash__ = object.__hash__

    ANSWERED = "answered"
    FAILED = "failed"  # refused, unreachable, no answer in time, no room
    ENDED = "ended"  # a BYE either way, the prompt over, or the server stopping


S, In = SiteCallState, SiteInput
SITE_TRANSITIONS: Mapping[tuple[SiteCallState, SiteInput], SiteCallState] = MappingProxyType(
    {
        (S.DIALLING, In.ANSWERED): S.BRIDGED,
        (S.DIALLING, In.FAILED): S.FAILING,
        (S.DIALLING, In.ENDED): S.ENDED,
        (S.BRIDGED, In.ENDED): S.ENDED,
        (S.FAILING, In.ENDED): S.ENDED,
    }
)
del S, In


class SiteCall:
    """One caller sent to another site: their leg, ours to the site, and the bridge."""

    __slots__ = ("bridge", "caller", "deadline", "leg", "reason", "site", "state")

    def __init__(self, *, caller: CallerLeg, site: str, reason: str, deadline: float) -> None:
        self.caller = caller
        self.site = site
        self.reason = reason  # the core's: queue_full, wait_over, disaster_mode...
        self.deadline: float | None = deadline  # to answer by, while dialling
        self.leg: OutboundLeg | None = None
        self.bridge: Bridge | None = None
        self.state = SiteCallState.DIALLING

    def move(self, given: SiteInput) -> SiteCallState:
        try:
            self.state = SITE_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for a site call {self.state.value}") from None
        return self.state

    def __repr__(self) -> str:
        return f"SiteCall({self.caller.call_id} to {self.site}, {self.state.value})"


class SiteCalls:
    """Every caller we are carrying to another site, by the caller's leg."""

    def __init__(
        self,
        *,
        legs: OutboundLegs,
        player: Player,
        hang_up_caller: Callable[[CallerLeg], None],
        limit: int = MAX_SITE_CALLS,
        answer_seconds: float = ANSWER_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._legs = legs
        self._player = player
        self._hang_up_caller = hang_up_caller
        self._limit = limit
        self._answer_seconds = answer_seconds
        self._clock = clock
        self._calls: dict[CallerLeg, SiteCall] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def of(self, caller: CallerLeg) -> SiteCall | None:
        return self._calls.get(caller)

    async def send(self, caller: CallerLeg, site: str, reason: str) -> None:
        """Call ``site`` for ``caller`` (answered, out of the core now) and bridge them."""
        caller.move(CallerInput.SENT_AWAY)
        caller.in_core = False
        call = SiteCall(
            caller=caller, site=site, reason=reason, deadline=self._clock() + self._answer_seconds
        )
        self._calls[caller] = call
        log.info("call %s: overflow to %s (%s)", caller.call_id, site, reason)
        if len(self._calls) > self._limit:
            self._failed(call, f"more than {self._limit} overflow calls at once")
            return
        try:
            target = parse_uri(site)
            if not isinstance(target, SipUri):
                raise ParseError(f"not a SIP URI: {site}")
            call.leg = await self._legs.place(
                target,
                report=lambda report: self._leg_report(call, report),
                from_user=caller.ani if _PLAIN_NUMBER.fullmatch(caller.ani) else "anonymous",
                headers=[("Subject", f"overflow of call {caller.call_id} ({reason})")],
            )
        except (ParseError, ValueError, Unreachable) as error:
            self._failed(call, str(error))
            return
        if call.state is SiteCallState.ENDED:  # the caller hung up while we set it up
            self._legs.end(call.leg)

    def _leg_report(self, call: SiteCall, report: LegReport) -> None:
        if call.state is SiteCallState.ENDED:
            return
        if isinstance(report, LegAnswered):
            if call.state is not SiteCallState.DIALLING:
                return
            caller = call.caller
            call.move(SiteInput.ANSWERED)
            call.deadline = None
            if caller.playback is not None:
                caller.playback.stop()
                caller.playback = None
            call.bridge = Bridge(caller.media, report.leg.media)
            log.info("call %s bridged to %s", caller.call_id, call.site)
        elif isinstance(report, LegFailed):
            status = "no answer" if report.status is None else f"status {report.status}"
            self._failed(call, f"the site answered {status}")
        elif isinstance(report, LegHungUp):
            log.info("call %s: %s hung up", call.caller.call_id, call.site)
            self._ended(call)

    def _failed(self, call: SiteCall, why: str) -> None:
        """The site did not take the call: the caller hears goodbye, then is hung up."""
        log.warning("call %s: overflow to %s failed: %s", call.caller.call_id, call.site, why)
        if call.state is not SiteCallState.DIALLING:
            return
        call.move(SiteInput.FAILED)
        call.deadline = None
        caller = call.caller
        if caller.state is CallerState.ENDED:
            self._ended(call)
            return
        prompts = (f"{caller.language}/{FAILURE_PROMPT}",)
        try:
            playback = self._player.play(caller.media, prompts)
        except Exception:  # no such recording, a leg never configured: no goodbye, then
            log.exception("call %s: cannot play %s", caller.call_id, prompts)
            self._ended(call)
            return
        caller.playback = playback
        caller.played.append(prompts)
        playback.done.add_done_callback(
            lambda done: self._prompted(call, playback, None if done.cancelled() else done.result())
        )

    def _prompted(self, call: SiteCall, playback: Playback, result: PlaybackResult | None) -> None:
        if call.caller.playback is playback:
            call.caller.playback = None
        if call.state is SiteCallState.FAILING:
            self._ended(call)

    def caller_left(self, caller: CallerLeg) -> None:
        """The caller hung up (their BYE answered): the site's leg goes too."""
        call = self._calls.get(caller)
        if call is not None:
            self._ended(call)

    def _ended(self, call: SiteCall) -> None:
        if call.state is SiteCallState.ENDED:
            return
        call.move(SiteInput.ENDED)
        self._calls.pop(call.caller, None)
        if call.bridge is not None:
            call.bridge.close()
        if call.leg is not None:
            self._legs.end(call.leg)
        self._hang_up_caller(call.caller)  # harmless once they are gone

    # == time ===========================================================================

    def next_deadline(self) -> float | None:
        return min(
            (c.deadline for c in self._calls.values() if c.deadline is not None), default=None
        )

    def advance(self, now: float) -> None:
        """Sites that neither answered nor refused in time are cancelled."""
        for call in list(self._calls.values()):
            if call.deadline is not None and call.deadline <= now:
                call.deadline = None
                if call.leg is not None:
                    self._legs.end(call.leg)  # CANCEL: its 487 reports nothing more
                self._failed(call, f"no answer within {self._answer_seconds:g} s")

    def close_all(self) -> None:
        """The server stops: every site call ends (CANCEL or BYE to the site, BYE to the caller)."""
        for call in list(self._calls.values()):
            try:
                self._ended(call)
            except Exception:  # stopping anyway: close what can be closed
                log.exception("could not end %r at shutdown", call)
                call.caller.media.close()
