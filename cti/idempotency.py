"""Commands carry an id; a repeated id gets the first answer, not a second effect.

A desktop that lost its connection after sending a command cannot know
whether it was applied: it sends it again with the same id. The first
submission runs; every repeat (even while the first is still in flight)
waits for and returns the very same reply, errors included. Ids are kept per
caller, the most recent ``size`` of them.

A command runs to its end even when its submitter goes away (a dropped
connection), and its reply is kept for the retry.

A finished reply is kept as its JSON text, not as the dicts it was made of:
tens of thousands of kept replies would otherwise be hundreds of thousands
of objects for the garbage collector to walk at every full collection (a
pause of a few hundred milliseconds on a busy server), while a string is not
tracked at all. A repeat, which is rare, pays for parsing it again.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

Key = tuple[str, str]


class Replies:
    """The replies of the most recent ``size`` command ids.

    ``refusals`` are the errors a client is told about as a reply (a refused
    command, a malformed one): a copy of each is kept, without the traceback
    whose frames would otherwise live as long as the entry (they must survive
    ``copy.copy``). Any other error (a bug) is kept as it is.
    """

    def __init__(
        self, size: int = 50_000, *, refusals: tuple[type[BaseException], ...] = ()
    ) -> None:
        self._size = size
        self._refusals = refusals
        self._done: OrderedDict[Key, str | BaseException] = OrderedDict()
        self._running: dict[Key, asyncio.Future[Any]] = {}

    async def once(self, caller: str, command_id: str, run: Callable[[], Awaitable[Any]]) -> Any:
        """``run()``'s reply, computed once per ``(caller, command_id)``; it must be JSON-ready."""
        key = (caller, command_id)
        done = self._done.get(key)
        if done is not None:
            self._done.move_to_end(key)
            if isinstance(done, BaseException):
                raise copy.copy(done) if isinstance(done, self._refusals) else done
            return json.loads(done)
        running = self._running.get(key)
        if running is None:
            # The command runs in a task of its own, so that it finishes, and its reply is
            # kept, even if the submitter goes away meanwhile (a dropped connection): the
            # retry then gets that reply instead of applying the command a second time.
            running = self._running[key] = asyncio.ensure_future(run())
            running.add_done_callback(lambda task: self._settle(key, task))
        return await asyncio.shield(running)

    def _settle(self, key: Key, task: asyncio.Future[Any]) -> None:
        del self._running[key]
        if task.cancelled():  # the server is stopping: nothing to remember
            return
        error = task.exception()
        if error is not None:
            self._keep(key, copy.copy(error) if isinstance(error, self._refusals) else error)
        else:
            self._keep(key, json.dumps(task.result(), separators=(",", ":")))

    def _keep(self, key: Key, outcome: str | BaseException) -> None:
        self._done[key] = outcome
        while len(self._done) > self._size:
            self._done.popitem(last=False)

    def __len__(self) -> int:
        return len(self._done) + len(self._running)
