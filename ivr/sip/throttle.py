"""Brute-force throttling: a per-source limit on failed authentications.

Theory of operation
-------------------
A password guesser shows up as one source failing digest checks again and
again. Each source's recent failures are counted in a sliding window; the
one that brings the count to ``max_failures`` within ``window`` seconds bans
the source for ``ban`` seconds, during which its requests are refused before
any authentication work is done, whatever credentials they carry. When the
ban ends the source starts again from zero. Other sources are unaffected, and
a success never wipes a source's failures: otherwise a guesser holding one
valid account could reset its own count between guesses at another.

How to refuse is the adapter's call; this module only decides. RFC 3261 sets
no rule for it. Common practice (fail2ban's firewall DROP, and SIP scanner
mitigations generally) is silence for UDP: an answer to a spoofed source turns
the server into a reflector, and silence tells a scanner nothing. Over
TCP/TLS/WebSocket the handshake proves the source, so a 403 Forbidden
("authorization will not help", RFC 3261 §21.4.4) and closing the connection
is the kinder choice: a misconfigured phone shows an error instead of timing
out.

Sources are keyed by IP address, with IPv6 grouped by prefix (/64 unless
configured): one subscriber holds at least a /64 (RFC 6177 recommends /48 to
/56 per site; SLAAC needs a /64 per link) and can draw fresh addresses from
it at will (RFC 8981 temporary addresses), so counting per address would let
one machine walk away from its own failures. Trusted networks (the office NAT
all agents share, a trunk provider) can be exempted: a ban there would take
down every phone behind it.

Memory is bounded twice over: at most ``max_sources`` sources with failures on
record (the least recently failing is forgotten first) and at most as many
bans (the oldest goes first). Keeping bans apart means a flood of one-off
failures from many addresses cannot push a banned source out; only a flood of
``max_failures`` failures per address can, which costs the attacker that much
more. Time is a number passed in; nothing here reads the clock.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from enum import Enum


class Admission(Enum):
    """Whether a source's request may go on to authentication."""

    ADMIT = "admit"
    REFUSE = "refuse"  # drop it (UDP) or answer 403 and close (TCP, TLS, WS): see the module doc


def source_key(address: str, *, ipv6_prefix: int = 64) -> str:
    """The key failures are counted under: the IPv4 address, or the IPv6 prefix holding it.

    Brackets and an IPv6 zone are ignored; an IPv4-mapped IPv6 address counts
    as its IPv4 address. A string that is not an IP address is its own key.
    """
    parsed = _parse_ip(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    network = ipaddress.IPv6Network((int(parsed), 128), strict=False).supernet(
        new_prefix=ipv6_prefix
    )
    return str(network)


def _parse_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = address.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]  # the zone of a link-local address
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


class FailureThrottle:
    """Counts authentication failures per source and bans a source that fails too often."""

    __slots__ = (
        "_ban",
        "_bans",
        "_exempt",
        "_failures",
        "_ipv6_prefix",
        "_max_failures",
        "_max_sources",
        "_window",
    )

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        ban: float | None = None,
        max_sources: int = 10_000,
        ipv6_prefix: int = 64,
        exempt: Iterable[str] = (),
    ) -> None:
        """``ban`` defaults to ``window``; ``exempt`` networks ("10.1.0.0/16") are never banned."""
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        if not (window > 0 and math.isfinite(window)):
            raise ValueError("window must be a positive number of seconds")
        ban = window if ban is None else ban
        if not ban > 0:
            raise ValueError("ban must be a positive number of seconds")
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        if not 1 <= ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be between 1 and 128")
        self._max_failures = max_failures
        self._window = float(window)
        self._ban = float(ban)
        self._max_sources = max_sources
        self._ipv6_prefix = ipv6_prefix
        self._exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        # Oldest first: by latest failure, and by ban start (so by ban end, as bans are equal).
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._bans: OrderedDict[str, float] = OrderedDict()

    def check(self, source: str, now: float) -> Admission:
        """Whether a request from ``source`` (an IP address, no port) may be authenticated."""
        key = self._key(source)
        if key is None:
            return Admission.ADMIT
        until = self._bans.get(key)
        if until is None:
            return Admission.ADMIT
        if now < until:
            return Admission.REFUSE
        del self._bans[key]
        return Admission.ADMIT

    def record_failure(self, source: str, now: float) -> Admission:
        """Count a failed authentication from ``source``; REFUSE if it is now (or was) banned."""
        key = self._key(source)
        if key is None:
            return Admission.ADMIT
        self._forget_old(now)
        if key in self._bans:
            return Admission.REFUSE
        failures = self._failures.pop(key, None)
        if failures is None:
            failures = deque(maxlen=self._max_failures)
        failures.append(now)
        while now - failures[0] >= self._window:
            failures.popleft()
        if len(failures) >= self._max_failures:
            self._bans[key] = now + self._ban
            while len(self._bans) > self._max_sources:
                self._bans.popitem(last=False)
            return Admission.REFUSE
        self._failures[key] = failures  # to the back: the most recent failure
        while len(self._failures) > self._max_sources:
            self._failures.popitem(last=False)
        return Admission.ADMIT

    def banned_until(self, source: str, now: float) -> float | None:
        """When the ban on ``source`` ends (for a Retry-After, say), or None if there is none."""
        key = self._key(source)
        until = None if key is None else self._bans.get(key)
        return until if until is not None and now < until else None

    def pardon(self, source: str) -> None:
        """Lift a ban and forget the failures (an operator unlocking a phone)."""
        key = self._key(source)
        if key is not None:
            self._bans.pop(key, None)
            self._failures.pop(key, None)

    @property
    def tracked_sources(self) -> int:
        """How many sources have failures or a ban on record."""
        return len(self._failures) + len(self._bans)

    def _key(self, source: str) -> str | None:
        """The source's key, or None when it is exempt."""
        if self._exempt:
            parsed = _parse_ip(source)
            if parsed is not None and any(parsed in network for network in self._exempt):
                return None
        return source_key(source, ipv6_prefix=self._ipv6_prefix)

    def _forget_old(self, now: float) -> None:
        while self._bans:
            key, until = next(iter(self._bans.items()))
            if now < until:
                break
            del self._bans[key]
        while self._failures:
            key, failures = next(iter(self._failures.items()))
            if now - failures[-1] < self._window:
                break
            del self._failures[key]
