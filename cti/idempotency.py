"""Commands carry an id; a repeated id gets the first answer, not a second effect.

A desktop that lost its connection after sending a command cannot know
whether it was applied: it sends it again with the same id. The first
submission runs; every repeat (even while the first is still in flight)
waits for and returns the very same reply, errors included. Ids are kept per
caller, the most recent ``size`` of them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any


class Replies:
    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._replies: OrderedDict[tuple[str, str], asyncio.Future[Any]] = OrderedDict()

    async def once(self, caller: str, command_id: str, run: Callable[[], Awaitable[Any]]) -> Any:
        """``run()``'s reply, computed once per ``(caller, command_id)``."""
        key = (caller, command_id)
        known = self._replies.get(key)
        if known is not None:
            self._replies.move_to_end(key)
            return await asyncio.shield(known)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[key] = future
        while len(self._replies) > self._size:
            self._replies.popitem(last=False)
        try:
            reply = await run()
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                # the caller went away: forget the id, so a retry runs the command
                self._replies.pop(key, None)
                future.cancel()
                raise
            future.set_exception(error)
            future.exception()  # retrieved: a repeat re-raises it, nobody else has to
            raise
        future.set_result(reply)
        return reply
