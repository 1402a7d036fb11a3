"""How late the event loop runs what is due: the server's own share of every delay.

Every socket the server reads (HTTP, the CTI WebSockets, SIP, RTP) waits for
the one event loop. While a callback runs long (a burst of commands, a
garbage collection, a pacer tick for many legs), whatever arrives meanwhile
waits too: an RTP packet that reached the socket is read only when the loop
comes back to it. So the loop's lag is the part of a packet's or a
request's delay that is ours, apart from the network and the sender's own
timing. The probe asks to sleep one 20 ms period (one RTP packet time) at a
time and observes how much later than asked it woke up, into
``acd_event_loop_lag_seconds``; 20 ms or more means a relayed packet could
have been held a whole packet time. Fifty wake-ups a second cost nothing
measurable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

PERIOD = 0.02  # seconds: one RTP packet time


class Observer(Protocol):
    def observe(self, amount: float) -> None: ...


async def watch(
    lag: Observer, *, period: float = PERIOD, clock: Callable[[], float] = time.monotonic
) -> None:
    """Observe the loop's lag every ``period`` until cancelled."""
    while True:
        due = clock() + period
        await asyncio.sleep(period)
        lag.observe(max(0.0, clock() - due))
