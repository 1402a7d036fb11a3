"""The SIP side of the server: the switchboard built from the settings, its reports for the core.

``SipSide`` builds the ``Switchboard`` (registrations, the IVR flow, voicemail,
overflow mode, call backs) and runs, in the server's task group, what turns
its reports into the core's commands: phones registered or gone
(``phones_to_engine``), what the calls report (``calls_to_engine``: callers
queued with their screen pop, offers answered, hang-ups, transfers) and the
messages left in the IVR (``messages_to_store``). ``SipSink`` hands the
core's steps back to the calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from acd.commands import (
    AgentDeviceLost,
    AgentDeviceRestored,
    AgentHungUp,
    CallArrived,
    CallTransferred,
    Command,
)
from acd.engine import Step
from acd.errors import CommandRejected
from acd.events import CallStateChanged
from acd.ids import AgentId, CustomerId
from acd.states import CallState
from api import audit
from api.store import voicemails
from cti.context import CallOpened
from cti.wire import iso
from ivr.agent_phones import PhoneUnanswered
from ivr.calls import Calls
from ivr.flow_config import load_flow
from ivr.messages import MessageLeft
from ivr.notices_and_jobs import (
    CallEnded,
    CallKept,
    CallOnHold,
    CallRequeued,
    QueueEntry,
    TransferRefused,
)
from ivr.registrations import PhoneNotice, PhoneRegistered, Registrations
from ivr.sip.digest import Algorithm
from ivr.site_calls import OverflowMode
from ivr.switchboard import Switchboard

if TYPE_CHECKING:
    from api.server import Server

log = logging.getLogger("acd.server")

DEMO_IVR = Path(__file__).parent.parent / "ivr" / "demo_ivr.yaml"


class SipSide:
    """The switchboard, and the loops that carry what it reports to the core and the store."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._phone_notices: asyncio.Queue[PhoneNotice] = asyncio.Queue()
        self.switchboard = self._build_switchboard()

    def _build_switchboard(self) -> Switchboard:
        server, settings = self._server, self._server.settings
        # The nonce key is derived from the signing key, so challenges survive a restart.
        secret = hashlib.sha256(f"sip-nonces:{server.key}".encode()).digest()
        algorithms = [Algorithm.from_token(t.strip()) for t in settings.sip_digest.split(",")]
        if not algorithms or None in algorithms:
            raise ValueError(f"ACD_SIP_DIGEST: unknown algorithm in {settings.sip_digest!r}")
        registrations = Registrations(
            server.sip_accounts,
            realm=settings.sip_realm,
            secret=secret,
            algorithms=[a for a in algorithms if a is not None],
        )
        flow_path = settings.ivr_flow
        if flow_path is None and settings.demo:
            flow_path = DEMO_IVR
        return Switchboard(
            host=settings.host,
            port=settings.sip_port or 0,
            registrations=registrations,
            on_phone=self._phone_notices.put_nowait,
            taking_calls=lambda: server.ready,
            has_account=lambda agent_id: server.sip_accounts.of_agent(agent_id) is not None,
            queues=lambda: server.queues.keys(),
            new_call_id=server.new_call_id,
            flow=None if flow_path is None else load_flow(flow_path),
            voicemail_dir=settings.voicemail_directory(),
            find_agent=self._agent_named,
            overflow=OverflowMode(settings.sip_overflow),
            on_refused=audit.register_refused,
            callback_uri=settings.sip_callback_uri,
            callback_ring_seconds=settings.sip_callback_ring_seconds,
        )

    def _agent_named(self, name: str) -> AgentId | None:
        """An agent by id, else by SIP username: the target of a REFER."""
        if AgentId(name) in self._server.agents:
            return AgentId(name)
        account = self._server.sip_accounts.by_username(name)
        return None if account is None else account.agent_id

    async def phones_to_engine(self) -> None:
        """An agent's phone registered or went away: their device, for the core."""
        while True:
            notice = await self._phone_notices.get()
            command: Command
            if isinstance(notice, PhoneRegistered):
                command = AgentDeviceRestored(agent_id=notice.agent_id)
            else:
                command = AgentDeviceLost(agent_id=notice.agent_id)
            try:
                await self._server.execute(command)
            except CommandRejected as refused:  # not in a state it applies to (on a call...)
                log.debug(
                    "%s for %s: %s",
                    type(command).__name__,
                    notice.agent_id,
                    refused,
                    extra={"agent_id": notice.agent_id},
                )
            log.info(
                "agent %s's phone: %s",
                notice.agent_id,
                type(notice).__name__,
                extra={"agent_id": notice.agent_id},
            )

    async def calls_to_engine(self) -> None:
        """What the SIP calls report, for the core: callers queued, offers answered, hang-ups."""
        calls = self.switchboard.calls
        while True:
            notice = await calls.notices.get()
            try:
                if isinstance(notice, QueueEntry):
                    await self._sip_call_arrived(notice)
                elif isinstance(notice, PhoneUnanswered):
                    await self._phone_unanswered(notice)
                else:
                    await self._server.execute(notice)
            except CommandRejected as refused:  # the core moved on (the offer expired...)
                log.info(
                    "%s refused by the core: %s",
                    type(notice).__name__,
                    refused,
                    extra={"call_id": getattr(notice, "call_id", None)},
                )
                if isinstance(notice, QueueEntry) and notice.callback_number is None:
                    calls.act(CallEnded(call_id=notice.call_id))
                elif isinstance(notice, CallTransferred):  # asked by REFER: the phone is told
                    calls.act(TransferRefused(call_id=notice.call_id, error_id=refused.error_id))

    async def messages_to_store(self) -> None:
        """Messages callers left in the IVR, filed in the store (retried while it is down).

        The file is complete on disk before the notice comes; filing is
        idempotent on its path, so a retry after a lost commit files it once.
        A message the database refuses while it answers is logged and left
        as a file only (a retry would be refused the same way).
        """
        messages = self.switchboard.calls.messages
        assert messages is not None
        while True:
            left = await messages.left.get()
            try:
                await self._file(left)
            finally:
                messages.left.task_done()

    async def file_left_behind(self, seconds: float = 5.0) -> None:
        """At stop, once every call is hung up: wait until what they left is filed.

        A caller still speaking when the server stops keeps their message, as
        one who hangs up does; ``seconds`` bounds the wait for the database.
        """
        messages = self.switchboard.calls.messages
        if messages is None:
            return
        for _ in range(10):  # the recordings close with their legs, a few callbacks later
            await asyncio.sleep(0)
        try:
            async with asyncio.timeout(seconds):
                await messages.left.join()
        except TimeoutError:
            log.error("messages not filed at stop (their files are kept)")

    async def _file(self, left: MessageLeft) -> None:
        row = {
            "mailbox": left.mailbox,
            "call_id": left.call_id,
            "ani": left.ani,
            "dnis": left.dnis,
            "language": left.language,
            "data": dict(left.data),
            "path": left.path,
            "seconds": round(left.seconds, 3),
        }
        filed = None
        while filed is None:
            try:
                filed = await voicemails.file_message(self._server.database, row, at=left.at)
            except Exception as error:
                # The database answers: not an outage, retrying would not help.
                if await self._server.database.ping():
                    log.error(
                        "message %s could not be filed: %s",
                        left.path,
                        error,
                        extra={"call_id": left.call_id},
                    )
                    return
                log.warning(
                    "message %s not filed yet: %s",
                    left.path,
                    error,
                    extra={"call_id": left.call_id},
                )
                await asyncio.sleep(1.0)
        self._server.hub.notify_staff(
            {
                "seq": None,
                "type": "voicemail.left",
                "at": iso(left.at),
                "data": {k: v for k, v in filed.items() if k != "path"},
            }
        )

    async def _phone_unanswered(self, notice: PhoneUnanswered) -> None:
        """Accepted on the desktop, but the agent's phone never took the call: back to the queue.

        The core is connected already (the desktop's accept), so this is no
        rejected offer: the caller is sent back to the queue they were in, as
        a blind transfer would (a fresh wait; the agent's leg ends), rather
        than left on music on hold with nobody on the line. Should the queue
        refuse them (full), the call ends: better a clear end than endless music.
        """
        view = self._server.engine.call(notice.call_id)
        if view is None or view.agent_id != notice.agent_id:
            return  # the call moved on meanwhile (hung up, transferred)
        note = "the agent's phone did not answer"
        try:
            await self._server.execute(
                CallTransferred(call_id=notice.call_id, queue_id=view.queue_id, note=note)
            )
        except CommandRejected as refused:
            log.warning("call %s could not go back to its queue: %s", notice.call_id, refused)
            await self._server.execute(AgentHungUp(call_id=notice.call_id))

    async def _sip_call_arrived(self, entry: QueueEntry) -> None:
        """A SIP caller enters a queue (or books a callback in the IVR): ``CallArrived``
        with its screen pop, as over REST."""
        found = await self._server.find_customer(None, entry.ani)
        customer = (found or {}).get("customer") or {}
        customer_id = customer.get("id")
        dedicated = customer.get("dedicated_agent_id")
        context = CallOpened(
            call_id=entry.call_id,
            queue_id=entry.queue_id,
            at=self._server.runtime.clock.now(),
            ani=entry.ani,
            dnis=entry.dnis,
            customer_id=None if customer_id is None else CustomerId(customer_id),
            data=dict(entry.data),
        )
        command = CallArrived(
            call_id=entry.call_id,
            queue_id=entry.queue_id,
            ani=entry.ani,
            dnis=entry.dnis,
            language=entry.language,
            skills=dict(entry.skills),
            priority=entry.priority,
            customer_id=context.customer_id,
            dedicated_agent=None if dedicated is None else AgentId(dedicated),
            data=dict(entry.data),
            callback_number=entry.callback_number,
        )
        self._server.pops.open(context, found)
        self._server.note_arrival(entry.call_id)
        try:
            await self._server.execute(command, notes=[context])
        except BaseException:
            self._server.pops.forget(entry.call_id)
            raise


class SipSink:
    """Hands the SIP calls the core's actions and the end of each call, in order, at once.

    A call entering a queue goes first, before the step's actions: a new call
    kept (``CallKept``: a caller still ringing is answered before any offer
    rings a phone for them) or a talking call sent back by a blind transfer
    (``CallRequeued``: the transferring agent's phone is let go before the
    next agent's rings).
    """

    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None:
        for event in step.events:
            if isinstance(event, CallStateChanged) and event.to_state is CallState.QUEUED:
                if event.from_state is CallState.ARRIVED:
                    self._calls.act(CallKept(call_id=event.call_id))
                elif event.from_state in (CallState.CONNECTED, CallState.HELD):
                    self._calls.act(CallRequeued(call_id=event.call_id))
        for action in step.actions:
            self._calls.act(action)
        for event in step.events:
            if not isinstance(event, CallStateChanged):
                continue
            if event.to_state is CallState.ENDED:
                self._calls.act(CallEnded(call_id=event.call_id))
            elif event.to_state is CallState.HELD:
                self._calls.act(CallOnHold(call_id=event.call_id, held=True))
            elif event.from_state is CallState.HELD and event.to_state is CallState.CONNECTED:
                self._calls.act(CallOnHold(call_id=event.call_id, held=False))
