"""Commands carry an id; a repeated id gets the first answer, not a second effect.

A desktop that lost its connection after sending a command cannot know
whether it was applied: it sends it again with the same id. The first
submission runs; every repeat (even while the first is still in flight)
waits for and returns the very same reply, errors included. Ids are kept per
caller, the most recent ``size`` of them.

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
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            reply = await run()
        except BaseException as error:
            del self._running[key]
            if isinstance(error, asyncio.CancelledError):
                # the caller went away: forget the id, so a retry runs the command
                future.cancel()
                raise
            future.set_exception(error)
            future.exception()  # retrieved: a repeat re-raises it, nobody else has to
            self._keep(key, copy.copy(error) if isinstance(error, self._refusals) else error)
            raise
        del self._running[key]
        future.set_result(reply)
        self._keep(key, json.dumps(reply, separators=(",", ":")))
        return reply

    def _keep(self, key: Key, outcome: str | BaseException) -> None:
        self._done[key] = outcome
        while len(self._done) > self._size:
            self._done.popitem(last=False)

    def __len__(self) -> int:
        return len(self._done) + len(self._running)
