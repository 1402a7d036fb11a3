"""Command ids: a repeat gets the first reply, errors included, whatever happens in between."""

from __future__ import annotations

import asyncio

import pytest

from acd.errors import CommandRejected
from cti.idempotency import Replies


async def test_a_repeat_gets_the_first_reply_without_running_again() -> None:
    replies, runs = Replies(), []

    async def run() -> dict[str, object]:
        runs.append(1)
        await asyncio.sleep(0.01)
        return {"seq": len(runs), "events": [{"type": "agent.state_changed"}]}

    both = await asyncio.gather(replies.once("ann", "c-1", run), replies.once("ann", "c-1", run))
    later = await replies.once("ann", "c-1", run)
    assert both[0] == both[1] == later == {"seq": 1, "events": [{"type": "agent.state_changed"}]}
    assert runs == [1]
    assert await replies.once("bob", "c-1", run) == {
        "seq": 2,
        "events": [{"type": "agent.state_changed"}],
    }


async def test_a_repeated_refusal_is_the_same_refusal_and_keeps_no_frames() -> None:
    replies = Replies(refusals=(CommandRejected,))

    async def refuse() -> None:
        raise CommandRejected("logged_out", "log in first", "logged_out")

    for _ in range(2):
        with pytest.raises(CommandRejected) as raised:
            await replies.once("ann", "c-2", refuse)
        assert (raised.value.error_id, raised.value.state) == ("logged_out", "logged_out")
    kept = replies._done[("ann", "c-2")]
    assert isinstance(kept, CommandRejected) and kept.__traceback__ is None


async def test_a_command_whose_submitter_went_away_finishes_and_its_retry_gets_the_reply() -> None:
    replies, runs = Replies(), []
    release = asyncio.Event()

    async def accept() -> dict[str, int]:
        runs.append(1)
        await release.wait()
        return {"seq": 7}

    first = asyncio.create_task(replies.once("ann", "c-3", accept))
    await asyncio.sleep(0)
    first.cancel()  # the desktop's connection dropped
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    assert await replies.once("ann", "c-3", accept) == {"seq": 7}
    assert runs == [1]


async def test_only_the_most_recent_ids_are_kept() -> None:
    replies = Replies(size=2)

    async def reply() -> int:
        return 1

    for n in range(5):
        await replies.once("ann", f"c-{n}", reply)
    assert len(replies) == 2
