"""Transfers over SIP: a phone's REFER, a blind transfer's requeue, a caller sent to a site.

Theory of operation. A blind transfer, from the desktop or by the phone's REFER
(``ivr.referrals``: 202, then NOTIFYs with ``message/sipfrag``), reaches the
core as ``CallTransferred``; when the core sends the call back to a queue
the server's sink hands us ``CallRequeued`` before the step's actions
(``requeue``): the REFER's last NOTIFY goes out, the transferring phone gets
a BYE, the caller hears music on hold until the next phone answers; a
transfer the core refuses is ``TransferRefused``, the REFER's last NOTIFY
saying why (``settle_referral``). Callers already answered (through the IVR,
or overflowing later on a wait rule) are bridged to the site in either
``OverflowMode`` (``to_site``, ``ivr.site_calls``); the ``302`` for a caller
not answered yet is ``ivr.answering``'s.

Not done: a REFER to a URI outside the centre (403), consultations and
attended transfer over SIP (``Replaces``; a consultation's offer rings no phone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from acd.actions import TransferToSite
from acd.commands import CallTransferred
from acd.ids import AgentId, CallId
from ivr.agent_legs import AgentLeg, AgentLegState
from ivr.agent_phones import AgentPhones
from ivr.caller_legs import CallerInput, CallerLeg, Callers, CallerState
from ivr.connections import Connections
from ivr.notices_and_jobs import Notice
from ivr.referrals import Referral, ReferralInput, ReferRefused, notify, refer_target
from ivr.sip.dialogs import DialogState
from ivr.sip.fields import NameAddress
from ivr.sip.message import Request, Response, response_to
from ivr.sip.transaction_outputs import Peer, RequestReceived, TransactionKey
from ivr.sip.transactions import Output
from ivr.sip.uri import SipUri
from ivr.site_calls import SiteCalls

log = logging.getLogger(__name__)


class Transfers:
    """REFERs the core has not settled yet, blind transfers carried out, callers sent to a site."""

    def __init__(
        self,
        *,
        host: str,
        contact: Callable[[], NameAddress],
        queues: Callable[[], Collection[str]],
        find_agent: Callable[[str], AgentId | None],
        callers: Callers,
        phones: AgentPhones,
        connections: Connections,
        sites: SiteCalls,
        hold_music: Callable[[CallerLeg], None],
        respond: Callable[[TransactionKey, Response], None],
        request: Callable[[Request, Peer], list[Output]],
        report: Callable[[Notice], None],
        end_call: Callable[[CallId], None],
        wake: Callable[[], None],
    ) -> None:
        self._host = host
        self._contact = contact
        self._queues = queues
        self._find_agent = find_agent  # by agent id or SIP username, for REFER
        self._callers = callers
        self._phones = phones
        self._connections = connections
        self._sites = sites
        self._hold = hold_music
        self._respond = respond
        self._request = request
        self._report = report
        self._end_call = end_call
        self._wake = wake
        self._referrals: dict[CallId, Referral] = {}  # REFERs the core has not settled yet

    def referred(self, received: RequestReceived, leg: AgentLeg) -> None:
        """An agent's phone asks to send its caller elsewhere (RFC 3515; ``ivr.referrals``)."""
        request = received.request
        if leg.state is not AgentLegState.BRIDGED:
            self._respond(received.key, response_to(request, 403, "No call to transfer"))
            return
        if leg.call_id in self._referrals:
            self._respond(received.key, response_to(request, 491, "A transfer is in progress"))
            return
        # Ours: the host we listen on, or whatever name the phone reached us by.
        hosts = {self._host} | ({request.uri.host} if isinstance(request.uri, SipUri) else set())
        found = refer_target(
            request, hosts=hosts, queues=self._queues(), find_agent=self._find_agent
        )
        if isinstance(found, ReferRefused):
            self._respond(received.key, response_to(request, found.status, found.reason))
            return
        cseq = request.cseq
        assert cseq is not None  # checked on arrival
        accepted = response_to(request, 202, headers=[("Contact", str(self._contact()))])
        self._respond(received.key, accepted)
        referral = Referral(leg=leg, event_id=cseq.number, target=found)
        self._referrals[leg.call_id] = referral
        self._notify(referral, 100, "Trying")
        log.info("call %s: %s's phone transfers it to %s", leg.call_id, leg.agent_id, found)
        self._report(
            CallTransferred(call_id=leg.call_id, queue_id=found.queue_id, agent_id=found.agent_id)
        )

    def _notify(self, referral: Referral, status: int, reason: str) -> None:
        dialog = referral.leg.dialog
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            self._request(notify(dialog, referral, status, reason), referral.leg.destination)

    def settle_referral(self, call_id: CallId, status: int, reason: str) -> None:
        """The core moved the caller (200) or refused: the referral's last NOTIFY."""
        referral = self._referrals.pop(call_id, None)
        if referral is None:
            return
        referral.move(ReferralInput.SETTLED)
        self._notify(referral, status, reason)
        if status >= 300:
            log.info("call %s: transfer refused (%d %s)", call_id, status, reason)

    def forget(self, call_id: CallId) -> None:
        """The call ended: a REFER still unsettled is dropped (the phone's dialog goes too)."""
        self._referrals.pop(call_id, None)

    def requeue(self, call_id: CallId) -> None:
        """A blind transfer (REFER or the API): the agent's phone is let go, the caller waits."""
        self.settle_referral(call_id, 200, "OK")  # before the BYE ends the dialog
        self._connections.released(call_id)
        self._phones.end_call(call_id)  # BYE to the transferring agent's phone
        caller = self._callers.get(call_id)
        if caller is None or caller.state is not CallerState.BRIDGED:
            return
        if caller.bridge is not None:
            caller.bridge.close()
            caller.bridge = None
        caller.move(CallerInput.REQUEUED)
        self._hold(caller)
        log.info("call %s: transferred, back to music on hold", call_id)

    async def to_site(self, job: TransferToSite) -> None:
        """The core sends the caller to another centre: we call it and bridge them."""
        caller = self._callers.get(job.call_id)
        if caller is None or caller.state not in (CallerState.QUEUED, CallerState.CALLBACK_MENU):
            log.info("call %s: nothing of ours to send to %s", job.call_id, job.site)
            self._end_call(job.call_id)
            return
        caller.flow = None  # (overflowed while in the callback menu: that is over)
        await self._sites.send(caller, job.site, job.reason)
        self._wake()  # a new answer deadline
