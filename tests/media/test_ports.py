"""RTP ports: even ports of a range, handed out in turn, back in the pool when the socket closes."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from ivr.media import MediaLeg, Pacer, PortPool, PortsExhausted
from ivr.media.testing import until

BASE = 24100  # a range of its own, so other test modules' pools don't collide


def test_the_pool_holds_only_the_even_ports_of_its_range() -> None:
    pool = PortPool(host="127.0.0.1", first=BASE + 1, last=BASE + 9)
    assert pool.capacity == 4  # BASE+2, +4, +6, +8
    with pytest.raises(ValueError, match="no even port"):
        PortPool(first=BASE + 1, last=BASE + 1)


async def test_legs_get_even_ports_in_turn_and_a_released_port_goes_to_the_back() -> None:
    pool = PortPool(host="127.0.0.1", first=BASE, last=BASE + 5)
    pacer = Pacer()
    first = await MediaLeg.open(ports=pool, pacer=pacer)
    second = await MediaLeg.open(ports=pool, pacer=pacer)
    assert (first.port, second.port) == (BASE, BASE + 2)
    assert first.local_address == ("127.0.0.1", BASE)
    assert pool.in_use == 2

    first.close()
    await until(lambda: pool.in_use == 1)  # returned once the socket has really closed
    third = await MediaLeg.open(ports=pool, pacer=pacer)
    fourth = await MediaLeg.open(ports=pool, pacer=pacer)
    assert (third.port, fourth.port) == (BASE + 4, BASE)
    for leg in (second, third, fourth):
        leg.close()
    await until(lambda: pool.in_use == 0)
    assert pool.available == 3


async def test_an_exhausted_pool_says_so() -> None:
    pool = PortPool(host="127.0.0.1", first=BASE + 10, last=BASE + 12)
    pacer = Pacer()
    legs = [await MediaLeg.open(ports=pool, pacer=pacer) for _ in range(2)]
    with pytest.raises(PortsExhausted, match="no free RTP port"):
        await MediaLeg.open(ports=pool, pacer=pacer)
    for leg in legs:
        leg.close()
    await asyncio.sleep(0)


async def test_a_port_another_process_holds_is_skipped() -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", BASE + 20))
    try:
        pool = PortPool(host="127.0.0.1", first=BASE + 20, last=BASE + 23)
        pacer = Pacer()
        leg = await MediaLeg.open(ports=pool, pacer=pacer)
        assert leg.port == BASE + 22
        with pytest.raises(PortsExhausted, match="1 held by other processes"):
            await MediaLeg.open(ports=pool, pacer=pacer)
        leg.close()
        await until(lambda: pool.in_use == 0)
    finally:
        squatter.close()


def test_on_uvloop_too_a_port_another_process_holds_is_skipped() -> None:
    """uvloop reports the failed bind differently from asyncio's own loop; the server runs on it."""
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", BASE + 30))

    async def open_and_close() -> int:
        pool = PortPool(host="127.0.0.1", first=BASE + 30, last=BASE + 33)
        leg = await MediaLeg.open(ports=pool, pacer=Pacer())
        leg.close()
        await until(lambda: pool.in_use == 0)
        return leg.port

    try:
        assert uvloop.run(open_and_close()) == BASE + 32
    finally:
        squatter.close()
