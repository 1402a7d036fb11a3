"""The composition root: every part of the server built and wired by plain constructor calls.

``Server.start`` restores the centre from the database (configuration, agents'
memberships, each customer's last agent), closes the calls a crash left open
as ``interrupted`` (but puts back the callback tasks that were waiting),
continues the event sequence, and then runs the routing runtime and the
journal's writer in one task group; with a SIP port, the switchboard and
what carries its reports to the core run there too (``api.sip_side``).
``execute`` is how the API changes anything: the command goes through the
runtime, and the reply waits until its events are durable.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import yaml

from acd.commands import (
    AgentConfigured,
    Command,
    DisasterModeChanged,
    QueueConfigured,
)
from acd.engine import Engine, Step
from acd.errors import CommandRejected
from acd.events import CallStateChanged, ReservationStateChanged
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.states import CallState
from api import loop_lag
from api.auth import Tokens
from api.call_log import CallLog
from api.heap import Heap, Tended
from api.metrics import KpiCounters, Metrics, live_gauges, media_timing
from api.schemas import AgentBody, CustomerBody, QueueBody, dump
from api.settings import Settings
from api.sinks import JournalSink, Today
from api.sip_side import SipSide, SipSink
from api.store import directory, migrate
from api.store.contacts import LiveLeg
from api.store.database import Database
from api.store.journal import EventJournal
from api.store.known_numbers import KnownNumbers
from cti.context import CallOpened
from cti.hub import Hub, Visibility
from cti.idempotency import Replies
from cti.runtime import Applied, Guard, Runtime
from cti.screenpop import ScreenPops
from cti.softphone import BadCommand
from cti.wire import iso
from ivr.sip.accounts import SipAccount, SipAccounts, ha1_by_name
from ivr.sip.digest import hashed_secrets
from ivr.switchboard import Switchboard

log = logging.getLogger("acd.server")

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")


class Unavailable(Exception):
    """The server cannot do this now (draining, or the database is needed and down)."""

    def __init__(self, error_id: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.message = message

    def __reduce__(self) -> tuple[type[Unavailable], tuple[str, str]]:
        return (type(self), (self.error_id, self.message))  # copy and pickle


class Server:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.key = settings.signing_key()
        self.tokens = Tokens(self.key)
        self.database = Database(settings.database_url)
        # The journal has a connection of its own: screen-pop look-ups and API
        # reads under load must never starve the writer into the spool.
        # It invalidates a connection that fails a write, so no ping before each batch.
        self.journal_database = Database(settings.database_url, pool_size=1, pre_ping=False)
        # Reports read much more than any other request: they get their own small pool
        # and a longer statement timeout, so they never hold up the rest of the API.
        self.report_database = Database(settings.database_url, pool_size=1, command_timeout=120.0)
        self.metrics = Metrics()
        self.visibility = Visibility()
        self.pops = ScreenPops()
        self.known_numbers = KnownNumbers()  # loaded at start
        self.numbers_changing = asyncio.Lock()  # one change of the directory's numbers at a time
        self.sip_accounts = SipAccounts()  # loaded at start
        self.switchboard: Switchboard | None = None  # with --sip-port
        self.replies = Replies(
            settings.idempotency_entries, refusals=(CommandRejected, Unavailable, BadCommand)
        )
        self.queues: dict[QueueId, QueueBody] = {}
        self.agents: dict[AgentId, AgentBody] = {}
        self.disaster: dict[str, Any] = {"active": False, "site": None}
        self.today = Today(self._sl_seconds_of)
        self.kpi_counters = KpiCounters(self._sl_seconds_of, self._service_level_targets)
        self.engine = Engine()
        self.runtime = Runtime(self.engine, [])
        self.hub: Hub = Hub(self.visibility, self.pops.for_offer)
        self.journal = EventJournal(
            self.journal_database,
            settings.spool_path,
            self._durable,
            retry_seconds=1.0,
            commit_interval=settings.journal_commit_interval,
        )
        self.draining = False
        self.started = False
        self._arrivals: dict[CallId, float] = {}
        self._calls = 0

    # == start and stop ==================================================================

    async def start(self, stack: AsyncExitStack) -> None:
        """Restore, then run; everything stops when ``stack`` closes."""
        await migrate.upgrade(self.settings.database_url)
        await self.database.open()
        stack.push_async_callback(self.database.close)
        await self.journal_database.open()
        stack.push_async_callback(self.journal_database.close)
        await self.report_database.open()
        stack.push_async_callback(self.report_database.close)
        last_seq = await self.journal.recover()
        if last_seq:
            self.engine.continue_sequence(last_seq)
        self.runtime.seq = last_seq
        self.hub = Hub(
            self.visibility,
            self.pops.for_offer,
            start_seq=last_seq,
            keep=self.settings.replay_events,
            subscriber_queue=self.settings.ws_queue,
        )
        self.hub.on_published.append(self.pops.forget_ended)
        if last_seq:  # desktops resuming across the restart get a replay, not a resync
            try:
                self.hub.preload(await self.journal.recent_events(self.settings.replay_events))
            except Exception as error:  # the database is down: the spool carried the start
                log.warning("no replay of events from before the start: %s", error)
        sinks = (JournalSink(self.journal), self.metrics, self.today, self.kpi_counters, CallLog())
        for sink in sinks:
            self.runtime.add_sink(sink)
        await self._restore()
        self.metrics.watch(
            live_gauges(
                self.engine,
                self.agents.keys,
                self._members,
                self._ewt,
                lambda: self.hub.connections,
                self.runtime.clock.now,
            )
        )
        self.metrics.registry.register(self.kpi_counters)
        heap = Heap(refresh_seconds=self.settings.heap_refresh_seconds)
        heap.install()  # the configuration is long-lived: keep the collector off it
        group = asyncio.TaskGroup()
        await stack.enter_async_context(group)
        runtime = group.create_task(self.runtime.run(), name="routing runtime")
        writer = group.create_task(self.journal.run(), name="event journal")
        tending = group.create_task(self._tend_heap(heap), name="garbage collector policy")
        lagging = group.create_task(loop_lag.watch(self.metrics.loop_lag), name="loop lag")
        sip_side: list[asyncio.Task[None]] = []
        if self.settings.sip_port is not None:
            sip = SipSide(self)
            self.switchboard = sip.switchboard
            self.runtime.add_sink(SipSink(self.switchboard.calls))
            self.metrics.watch(media_timing(self.switchboard.calls.pacer))
            sip_side.append(group.create_task(self.switchboard.run(), name="SIP switchboard"))
            sip_side.append(group.create_task(sip.phones_to_engine(), name="SIP phones"))
            sip_side.append(group.create_task(sip.calls_to_engine(), name="SIP calls"))
            sip_side.append(group.create_task(sip.messages_to_store(), name="voicemail"))
            await self.switchboard.started.wait()

        async def stop() -> None:
            if sip_side:  # the calls are hung up first, then what they left is filed
                *calls_side, filer = sip_side
                for task in calls_side:
                    task.cancel()
                await asyncio.wait(calls_side)
                await sip.file_left_behind()
                filer.cancel()
            tending.cancel()
            lagging.cancel()
            runtime.cancel()
            await self.journal.close()
            writer.cancel()

        stack.push_async_callback(stop)
        self.started = True

    async def _tend_heap(self, heap: Heap) -> None:
        while True:
            await asyncio.sleep(1.0)
            if heap.tend() is Tended.REFRESHED:
                log.info("heap refreshed: %d objects frozen", gc.get_freeze_count())

    async def _restore(self) -> None:
        config = self._file_config()
        stored_queues = {q["id"]: q for q in await self.database.load_queues()}
        for body in config.get("queues", []):
            stored_queues[body["id"]] = body
        queues = [QueueBody.model_validate(q) for q in stored_queues.values()]
        for body in sorted(queues, key=lambda b: b.id):
            self._apply(QueueConfigured(config=body.to_config()))
            self.queues[QueueId(body.id)] = body
        stored_agents = {a[0]: a[1] for a in await self.database.load_agents()}
        for body in config.get("agents", []):
            stored_agents[body["id"]] = body
        for data in stored_agents.values():
            agent = AgentBody.model_validate(data)
            self._apply(AgentConfigured(config=agent.to_config()))
            self.remember_agent(agent)
        for body in queues:
            await self.database.save_queue(body.id, dump(body))
        for agent_body in self.agents.values():
            await self.database.save_agent(agent_body.id, dump(agent_body), agent_body.name)
        settings = await self.database.load_settings()
        disaster = settings.get("disaster") or config.get("disaster")
        if isinstance(disaster, dict) and disaster.get("active"):
            self._apply(DisasterModeChanged(active=True, site=disaster.get("site")))
            self.disaster = {"active": True, "site": disaster.get("site")}
        for customer in config.get("customers", []):
            body = CustomerBody.model_validate({k: v for k, v in customer.items() if k != "cases"})
            if await directory.get_customer(self.database, body.id) is None:
                await directory.create_customer(self.database, dump(body))
            for case in customer.get("cases", []):
                if await directory.get_case(self.database, case["id"]) is None:
                    await directory.create_case(self.database, body.id, case)
        self.known_numbers.replace(await directory.all_numbers(self.database))
        for agent_id, username, ha1 in await self.database.sip_accounts():
            account = SipAccount(
                agent_id=AgentId(agent_id), username=username, ha1=ha1_by_name(ha1)
            )
            self.sip_accounts.put(account)
        for customer_id, agent_id in (await self.journal.last_agents()).items():
            self.engine.remember_last_agent(CustomerId(customer_id), AgentId(agent_id))
        live = await self.journal.live_legs()
        waiting = [leg.call_id for leg in live if leg.state in _WAITING_CALLBACK]
        numbers = await self.journal.callback_numbers(waiting)
        for leg in live:
            number = numbers.get(leg.call_id)
            if number is not None and leg.enqueued_at is not None:
                try:  # nobody's line died with a waiting callback task: it goes on
                    self.runtime.apply(_put_back(leg, number, leg.enqueued_at))
                    continue
                except CommandRejected as refused:  # (its queue is gone...)
                    log.warning("callback %s not put back: %s", leg.call_id, refused)
            self.runtime.apply(_interrupt(leg))
        if self.runtime.seq:
            await self.journal.wait_durable(self.runtime.seq)

    def _file_config(self) -> dict[str, Any]:
        path = self.settings.config
        if path is None and self.settings.demo:
            path = DEMO_CONFIG
        if path is None:
            return {}
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of queues, agents, customers")
        unknown = set(data) - {"queues", "agents", "customers", "disaster"}
        if unknown:
            raise ValueError(f"{path}: unknown sections {sorted(unknown)}")
        return data

    def _apply(self, command: Command) -> None:
        self.runtime.apply(lambda engine, now: engine.handle(command, now))

    def remember_agent(self, agent: AgentBody) -> None:
        self.agents[AgentId(agent.id)] = agent
        self.visibility.set_agent(
            AgentId(agent.id), agent.teams, [QueueId(q) for q in agent.queues]
        )

    # == commands ========================================================================

    async def execute(
        self,
        command: Command,
        *,
        guard: Guard | None = None,
        then: Callable[[Engine], Any] | None = None,
        notes: Sequence[CallOpened] = (),
    ) -> Applied:
        """Apply ``command``; returns once its events are durable."""
        applied = await self.runtime.submit(command, notes, guard=guard, then=then)
        if applied.step.events:
            await self.journal.wait_durable(applied.step.events[-1].seq)
        return applied

    def new_call_id(self) -> CallId:
        self._calls += 1
        return CallId(f"{int(time.time() * 1000):x}-{self._calls}")

    def note_arrival(self, call_id: CallId) -> None:
        self._arrivals[call_id] = time.perf_counter()

    def _durable(self, items: list[Any]) -> None:
        self.hub.publish(items)
        if self._arrivals:
            for item in items:
                if isinstance(item, ReservationStateChanged) and item.from_state is None:
                    started = self._arrivals.pop(item.call_id, None)
                    if started is not None:
                        self.metrics.offer_latency.observe(time.perf_counter() - started)
                elif isinstance(item, CallStateChanged) and item.to_state is CallState.ENDED:
                    self._arrivals.pop(item.call_id, None)  # ended before any offer

    # == the database, for what is not an event ========================================

    async def _stored(self, what: str, write: Callable[[], Any]) -> None:
        try:
            await write()
        except Exception as error:  # the engine has it; the database will on the next save
            log.warning("could not save %s: %s", what, error)
            raise Unavailable(
                "database_unavailable",
                f"applied, but {what} could not be saved: the database is unreachable",
            ) from None

    async def save_queue(self, body: QueueBody) -> None:
        await self._stored(
            f"queue {body.id}", lambda: self.database.save_queue(body.id, dump(body))
        )

    async def save_agent(self, body: AgentBody) -> None:
        await self._stored(
            f"agent {body.id}", lambda: self.database.save_agent(body.id, dump(body), body.name)
        )

    async def set_sip_account(self, agent_id: AgentId, username: str, password: str) -> SipAccount:
        """Give an agent SIP credentials (hashed here; the password goes no further)."""
        hashes = hashed_secrets(username, self.settings.sip_realm, password)
        account = SipAccount(agent_id=agent_id, username=username, ha1=hashes)
        holder = self.sip_accounts.by_username(username)
        if holder is not None and holder.agent_id != agent_id:
            raise CommandRejected("sip_username_taken", f"{username!r} is another agent's")
        stored = {a.value: h for a, h in hashes.items()}
        await self._stored(
            f"agent {agent_id}'s SIP account",
            lambda: self.database.save_agent_sip(agent_id, username, stored),
        )
        self.sip_accounts.put(account)
        return account

    async def remove_sip_account(self, agent_id: AgentId) -> bool:
        if self.sip_accounts.of_agent(agent_id) is None:
            return False
        await self._stored(
            f"agent {agent_id}'s SIP account", lambda: self.database.delete_agent_sip(agent_id)
        )
        self.sip_accounts.remove(agent_id)
        return True

    async def save_setting(self, key: str, value: Any) -> None:
        await self._stored(f"setting {key}", lambda: self.database.save_setting(key, value))

    async def find_customer(self, customer_id: str | None, ani: str) -> dict[str, Any] | None:
        """The screen pop of the caller: by the id given, else by their number; None if unknown.

        The database being down must not stop a call: the pop is then empty.
        """
        try:
            if customer_id is None and ani in self.known_numbers:  # most callers are not
                customer_id = await directory.customer_id_by_number(self.database, ani)
            if customer_id is None:
                return None
            return await directory.screen_pop(self.database, customer_id)
        except Exception as error:
            log.warning("screen pop look-up failed: %s", error)
            return None

    # == drain ===========================================================================

    def draining_notice(self) -> dict[str, Any]:
        return {
            "seq": None,
            "type": "server.draining",
            "at": iso(self.runtime.clock.now()),
            "data": {"deadline_seconds": self.settings.drain_seconds},
        }

    async def drain(self, seconds: float) -> None:
        """Take no new calls, tell the desktops, let the calls in progress end."""
        self.draining = True
        self.hub.broadcast(self.draining_notice())
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            live, _ = await self.runtime.inspect(lambda engine: sum(1 for _ in engine.call_ids()))
            if live == 0:
                break
            await asyncio.sleep(0.2)
        log.warning(
            "drained; stopping (journal: %d items in %d batches)",
            self.journal.items_written,
            self.journal.batches_written,
        )

    # == read models =====================================================================

    def _members(self) -> dict[QueueId, list[AgentId]]:
        out: dict[QueueId, list[AgentId]] = {}
        for agent in self.agents.values():
            for queue in agent.queues:
                out.setdefault(QueueId(queue), []).append(AgentId(agent.id))
        return out

    def _sl_seconds_of(self, queue_id: QueueId) -> float | None:
        body = self.queues.get(queue_id)
        return None if body is None else body.sl_seconds

    def _service_level_targets(self) -> list[tuple[QueueId, float, float]]:
        return [(q, b.sl_seconds, b.sl_target) for q, b in self.queues.items()]

    def _ewt(self, queue_id: QueueId) -> float | None:
        return self.engine.queue_estimate(queue_id)

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and self.journal.database_up


def _interrupt(leg: LiveLeg) -> Callable[[Engine, float], Step]:
    """Close a call the previous process left live (its last state as the log has it)."""

    def close(engine: Engine, now: float) -> Step:
        return engine.close_interrupted(
            call_id=CallId(leg.call_id),
            queue_id=QueueId(leg.queue_id),
            from_state=CallState(leg.state or "arrived"),
            agent_id=None if leg.agent_id is None else AgentId(leg.agent_id),
            now=now,
        )

    return close


_WAITING_CALLBACK = frozenset({CallState.CALLBACK_QUEUED.value, CallState.CALLBACK_OFFERED.value})


def _put_back(leg: LiveLeg, number: str, enqueued_at: float) -> Callable[[Engine, float], Step]:
    """Put a callback task that was waiting back in its queue, in its place."""

    def restore(engine: Engine, now: float) -> Step:
        return engine.restore_callback(
            call_id=CallId(leg.call_id),
            queue_id=QueueId(leg.queue_id),
            from_state=CallState(leg.state),
            number=number,
            enqueued_at=enqueued_at,
            ani=leg.ani,
            customer_id=None if leg.customer_id is None else CustomerId(leg.customer_id),
            now=now,
        )

    return restore
