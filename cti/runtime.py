"""The runtime: the one task that owns the routing core.

Theory of operation. Every command from the API, the WebSocket or (later) the
SIP side goes through one bounded ``asyncio.Queue`` to ``run``, which hands it
to ``Engine.handle`` with the wall-clock time and passes the step it produced
to the sinks (the event journal, the metrics, the CTI fan-out), in order and
synchronously: a sink only buffers, so routing never waits for a consumer.
Between commands the same task sleeps until the engine's next deadline and
then calls ``Engine.advance``; timers are data in the engine, not asyncio
handles.

A submitter gets back the step and the highest sequence number it holds; it is
the submitter's business (``Server.execute``) to wait until those events are
durable before it answers its client. ``inspect`` runs a read-only function on
the engine between two commands, so a snapshot is never taken half-way through
a step, and knows which sequence number the state it saw reflects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from acd.commands import Command
from acd.engine import Engine, Step
from acd.errors import CommandRejected
from cti.context import CallOpened

T = TypeVar("T")


class StepSink(Protocol):
    """Something that takes every step in order, without blocking."""

    def accept(self, step: Step, notes: Sequence[CallOpened]) -> None: ...


@dataclass(frozen=True, slots=True)
class Applied:
    """What a command produced: its step, the sequence number reached, and a view after it."""

    step: Step
    seq: int
    view: Any = None


class Clock:
    """Wall-clock seconds that never go backwards (the engine refuses time that does)."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._last = float("-inf")

    def now(self) -> float:
        self._last = max(self._last, self._source())
        return self._last


Guard = Callable[[Engine], None]
"""Checked just before the command, in the same step: raises ``CommandRejected`` to refuse."""


@dataclass(slots=True)
class _Submission:
    command: Command | None
    inspect: Callable[[Engine], Any] | None
    notes: Sequence[CallOpened]
    future: asyncio.Future[Any]
    guard: Guard | None = None
    then: Callable[[Engine], Any] | None = None


class Runtime:
    """Feeds the engine one command at a time and runs its timers."""

    def __init__(
        self,
        engine: Engine,
        sinks: Sequence[StepSink],
        *,
        clock: Clock | None = None,
        last_seq: int = 0,
        queue_size: int = 10_000,
    ) -> None:
        self.engine = engine
        self._sinks = list(sinks)
        self.clock = clock or Clock()
        self.seq = last_seq  # the highest sequence number the engine has emitted
        self._inbox: asyncio.Queue[_Submission] = asyncio.Queue(queue_size)
        self.commands_handled = 0

    def add_sink(self, sink: StepSink) -> None:
        self._sinks.append(sink)

    async def submit(
        self,
        command: Command,
        notes: Sequence[CallOpened] = (),
        *,
        guard: Guard | None = None,
        then: Callable[[Engine], Any] | None = None,
    ) -> Applied:
        """Apply ``command``; raises ``CommandRejected`` when it does not fit the state.

        ``guard`` may refuse it first (authorisation against the live state);
        ``then`` reads the engine right after it, for the reply.
        """
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        await self._inbox.put(_Submission(command, None, notes, future, guard, then))
        return await future

    async def inspect(self, fn: Callable[[Engine], T]) -> tuple[T, int]:
        """``fn(engine)`` between two commands, with the sequence number its view reflects."""
        future: asyncio.Future[tuple[T, int]] = asyncio.get_running_loop().create_future()
        await self._inbox.put(_Submission(None, fn, (), future))
        return await future

    def apply(self, fn: Callable[[Engine, float], Step]) -> Applied:
        """Run an engine call that returns a step (start-up restores) and dispatch it.

        Only for the start-up path, before ``run`` serves anybody: it runs at once.
        """
        step = fn(self.engine, self.clock.now())
        self._dispatch(step, ())
        return Applied(step, self.seq)

    async def run(self) -> None:
        """Serve submissions and timers until cancelled."""
        inbox = self._inbox
        engine = self.engine
        while True:
            deadline = engine.next_deadline()
            if deadline is None:
                submission = await inbox.get()
            else:
                delay = deadline - self.clock.now()
                if delay > 0 and inbox.empty():
                    try:
                        submission = await asyncio.wait_for(inbox.get(), delay)
                    except TimeoutError:
                        self._dispatch(engine.advance(self.clock.now()), ())
                        continue
                elif inbox.empty():
                    self._dispatch(engine.advance(self.clock.now()), ())
                    continue
                else:
                    submission = inbox.get_nowait()
            self._serve(submission)

    def _serve(self, submission: _Submission) -> None:
        future = submission.future
        if future.cancelled() and submission.command is None:
            return  # a cancelled look; a cancelled command is still applied (it was sent)
        now = self.clock.now()
        if submission.inspect is not None:
            try:
                result = submission.inspect(self.engine)
            except Exception as error:  # a bug in a view function must not stop routing
                future.set_exception(error)
                return
            future.set_result((result, self.seq))
            return
        assert submission.command is not None
        try:
            if submission.guard is not None:
                submission.guard(self.engine)
            step = self.engine.handle(submission.command, now)
        except CommandRejected as rejected:
            timers: Step | None = getattr(rejected, "step", None)
            if timers is not None:
                self._dispatch(timers, ())
            if not future.cancelled():
                future.set_exception(rejected)
            return
        except (ValueError, TypeError) as error:  # a configuration the engine refused
            if not future.cancelled():
                future.set_exception(error)
            return
        self._dispatch(step, submission.notes)
        self.commands_handled += 1
        view = None if submission.then is None else submission.then(self.engine)
        if not future.cancelled():
            future.set_result(Applied(step, self.seq, view))

    def _dispatch(self, step: Step, notes: Sequence[CallOpened]) -> None:
        if step.events:
            self.seq = step.events[-1].seq
        if not step.events and not step.actions and not notes:
            return
        for sink in self._sinks:
            sink.accept(step, notes)
