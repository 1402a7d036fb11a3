"""Erlang C staffing: how many agents an interval needs to meet a service level.

The offered traffic of an interval, in Erlangs, is ``A = calls × AHT / interval``
(the average number of calls in progress if every call were answered at once).
With ``N`` agents and calls arriving at random (Poisson) and waiting in one
queue (M/M/N), the Erlang C formula gives the probability that a call waits.

Erlang C is computed here through the Erlang B recurrence, which needs no
factorials or powers and so neither overflows nor loses precision for thousands
of agents::

    B(0) = 1
    B(k) = A·B(k−1) / (k + A·B(k−1))
    C    = N·B(N) / (N − A·(1 − B(N)))

From ``C`` follow the figures a planner looks at:

* average speed of answer: ``ASA = C·AHT / (N − A)``;
* service level, the fraction answered within ``t`` seconds:
  ``SL(t) = 1 − C·exp(−(N − A)·t / AHT)``;
* occupancy, the fraction of agents' time spent on calls: ``A / N``.

When ``N <= A`` the queue is unstable (it grows without bound): every call
waits, ASA is infinite, the service level is 0 and the agents are fully
occupied. With no traffic at all nobody waits, whatever the staffing.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass

__all__ = ["Staffing", "agents_needed", "erlang_c", "evaluate", "traffic_erlangs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Staffing:
    """Erlang C figures for one interval and one number of agents."""

    agents: int
    traffic_erlangs: float
    p_wait: float  # probability a call waits, 0..1
    asa_seconds: float  # average speed of answer
    service_level: float  # fraction answered within sl_seconds, 0..1
    occupancy: float  # 0..1

    def as_dict(self) -> dict[str, float | int]:
        """The figures as a plain dict, e.g. for JSON."""
        return {
            "agents": self.agents,
            "traffic_erlangs": self.traffic_erlangs,
            "p_wait": self.p_wait,
            "asa_seconds": self.asa_seconds,
            "service_level": self.service_level,
            "occupancy": self.occupancy,
        }


def traffic_erlangs(calls: float, interval_seconds: float, aht_seconds: float) -> float:
    """Offered traffic in Erlangs: ``calls × aht_seconds / interval_seconds``."""
    _check_finite("calls", calls)
    _check_finite("interval_seconds", interval_seconds)
    _check_finite("aht_seconds", aht_seconds)
    if calls < 0:
        raise ValueError(f"calls must be >= 0, got {calls!r}")
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval_seconds!r}")
    if aht_seconds <= 0:
        raise ValueError(f"aht_seconds must be > 0, got {aht_seconds!r}")
    traffic = calls * aht_seconds / interval_seconds
    if not math.isfinite(traffic):
        raise ValueError(
            f"traffic is not finite for calls={calls!r}, "
            f"interval_seconds={interval_seconds!r}, aht_seconds={aht_seconds!r}"
        )
    return float(traffic)


def erlang_c(traffic: float, agents: int) -> float:
    """Probability that a call waits with ``traffic`` Erlangs on ``agents`` agents.

    1.0 when ``agents <= traffic`` (unstable queue), 0.0 when there is no traffic.
    """
    traffic = _check_traffic(traffic)
    agents = _check_agents(agents)
    if traffic == 0.0:
        return 0.0
    if agents <= traffic:
        return 1.0
    return _erlang_c_from_b(traffic, agents, _erlang_b(traffic, agents))


def evaluate(
    *,
    calls: float,
    interval_seconds: float,
    aht_seconds: float,
    sl_seconds: float,
    agents: int,
) -> Staffing:
    """Erlang C figures for ``agents`` agents taking ``calls`` calls in one interval.

    ``sl_seconds`` is the service-level threshold: the service level is the
    fraction of calls answered within that many seconds.
    """
    traffic = traffic_erlangs(calls, interval_seconds, aht_seconds)
    _check_sl_seconds(sl_seconds)
    agents = _check_agents(agents)
    if traffic == 0.0:
        return _no_traffic(agents)
    if agents <= traffic:
        return _unstable(traffic, agents)
    return _figures(traffic, agents, _erlang_b(traffic, agents), aht_seconds, sl_seconds)


def agents_needed(
    *,
    calls: float,
    interval_seconds: float,
    aht_seconds: float,
    sl_seconds: float,
    sl_target: float,
    max_agents: int = 100_000,
) -> Staffing:
    """The smallest staffing whose service level meets ``sl_target``.

    ``sl_target`` is a fraction in (0, 1): 0.8 with ``sl_seconds=20`` is the
    usual "80/20" target. Returns the figures for the smallest ``N`` greater
    than the traffic with ``service_level >= sl_target`` (``N = 0`` when there
    is no traffic). Raises ``ValueError`` if no ``N <= max_agents`` does.
    """
    traffic = traffic_erlangs(calls, interval_seconds, aht_seconds)
    _check_sl_seconds(sl_seconds)
    _check_finite("sl_target", sl_target)
    if not 0.0 < sl_target < 1.0:
        raise ValueError(
            f"sl_target must be a fraction strictly between 0 and 1, got {sl_target!r}"
        )
    max_agents = _check_agents(max_agents, name="max_agents")
    if traffic == 0.0:
        return _no_traffic(0)
    # One pass of the Erlang B recurrence serves every candidate N in turn.
    b = 1.0
    for n in range(1, max_agents + 1):
        b = traffic * b / (n + traffic * b)
        if n <= traffic:
            continue
        staffing = _figures(traffic, n, b, aht_seconds, sl_seconds)
        if staffing.service_level >= sl_target:
            return staffing
    raise ValueError(
        f"no staffing up to max_agents={max_agents} reaches a service level of "
        f"{sl_target!r} within {sl_seconds!r} s for {traffic!r} Erlangs"
    )


def _erlang_b(traffic: float, agents: int) -> float:
    """Erlang B (blocking probability) by the stable recurrence."""
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def _erlang_c_from_b(traffic: float, agents: int, b: float) -> float:
    """Erlang C from Erlang B for the same traffic and ``agents > traffic``."""
    c = agents * b / (agents - traffic * (1.0 - b))
    return min(1.0, max(0.0, c))


def _figures(traffic: float, agents: int, b: float, aht: float, sl_seconds: float) -> Staffing:
    """All the figures for a stable queue (``agents > traffic > 0``)."""
    c = _erlang_c_from_b(traffic, agents, b)
    spare = agents - traffic
    service_level = 1.0 - c * math.exp(-spare * sl_seconds / aht)
    return Staffing(
        agents=agents,
        traffic_erlangs=traffic,
        p_wait=c,
        asa_seconds=c * aht / spare,
        service_level=min(1.0, max(0.0, service_level)),
        occupancy=min(1.0, traffic / agents),
    )


def _unstable(traffic: float, agents: int) -> Staffing:
    return Staffing(
        agents=agents,
        traffic_erlangs=traffic,
        p_wait=1.0,
        asa_seconds=math.inf,
        service_level=0.0,
        occupancy=1.0,
    )


def _no_traffic(agents: int) -> Staffing:
    return Staffing(
        agents=agents,
        traffic_erlangs=0.0,
        p_wait=0.0,
        asa_seconds=0.0,
        service_level=1.0,
        occupancy=0.0,
    )


def _check_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _check_traffic(traffic: float) -> float:
    _check_finite("traffic", traffic)
    if traffic < 0:
        raise ValueError(f"traffic must be >= 0 Erlangs, got {traffic!r}")
    return float(traffic)


def _check_agents(agents: int, *, name: str = "agents") -> int:
    if isinstance(agents, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(agents)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(agents).__name__}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _check_sl_seconds(sl_seconds: float) -> None:
    _check_finite("sl_seconds", sl_seconds)
    if sl_seconds < 0:
        raise ValueError(f"sl_seconds must be >= 0, got {sl_seconds!r}")
