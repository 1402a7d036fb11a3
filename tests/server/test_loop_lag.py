"""The loop-lag probe sees the loop held up: the server's own share of a delay."""

from __future__ import annotations

import asyncio
import time

from api import loop_lag


class Observations(list[float]):
    def observe(self, amount: float) -> None:
        self.append(amount)


async def test_a_loop_held_for_thirty_ms_is_observed_as_that_much_lag() -> None:
    lags = Observations()
    watching = asyncio.create_task(loop_lag.watch(lags, period=0.005))
    while len(lags) < 2:
        await asyncio.sleep(0.001)
    time.sleep(0.03)  # a callback that holds the loop
    while len(lags) < 4:
        await asyncio.sleep(0.001)
    watching.cancel()
    assert max(lags) >= 0.02  # the wake-up due during the hold came at least 20 ms late
