"""Simulation scenarios: YAML in, frozen and validated dataclasses out.

A scenario is a day (or any span) of a contact centre: the queues as the
engine sees them (``acd.config.QueueConfig``), groups of agents with their
shifts and phone habits, and streams of callers with their arrival rates,
talk times and patience. The schema is documented for users in
``scenarios/README.md``; every mistake is a ``ValueError`` whose message
starts with the path of the bad field (``queues[1].overflow[0].when: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from acd.config import (
    AffinityMode,
    AgentConfig,
    OverflowCondition,
    OverflowRule,
    QueueConfig,
    RelaxStep,
    Strategy,
    Target,
    WhenUnstaffed,
)
from acd.ids import AgentId, Language, QueueId, Skill
from acd.sim.distributions import Constant, Distribution, Exponential, LogNormal, Uniform

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


# --- the scenario ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A share of calls put on hold once, in the middle of the talk, for ``duration``."""

    share: float
    duration: Distribution


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentGroup:
    """``count`` alike agents on the same shift, with ids ``<prefix>001``, ``<prefix>002``…"""

    prefix: str
    count: int
    skills: Mapping[Skill, int]
    languages: Mapping[Language, int]
    teams: frozenset[str]
    queues: frozenset[QueueId]
    shift_start_hours: float
    shift_end_hours: float | None  # None: logged in until the last call has ended
    answer_delay: Distribution  # seconds from the ring to the answer
    miss_probability: float  # an offer this agent lets ring out
    ready_again_after_seconds: float  # back to ready after the engine set them not ready

    def agent_ids(self) -> tuple[AgentId, ...]:
        width = max(3, len(str(self.count)))
        return tuple(AgentId(f"{self.prefix}{i:0{width}d}") for i in range(1, self.count + 1))

    def configs(self) -> tuple[AgentConfig, ...]:
        return tuple(
            AgentConfig(
                id=agent_id,
                skills=self.skills,
                languages=self.languages,
                teams=self.teams,
                queues=self.queues,
            )
            for agent_id in self.agent_ids()
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficStream:
    """Callers for one queue: Poisson arrivals at a rate constant within each interval."""

    name: str
    queue: QueueId
    language: Language | None  # None: the queue's
    skills: Mapping[Skill, int]  # on top of the queue's
    priority: int | None  # None: the queue's
    calls_per_interval: tuple[float, ...]  # one per interval of the scenario
    talk: Distribution
    hold: Hold | None
    wrap_up: Distribution | None  # None: the queue's wrap_up_seconds timer ends wrap-up
    patience: Distribution | None  # None: callers never hang up while waiting
    known_customer_share: float  # callers with a customer id (last-agent affinity applies)
    customer_population: int  # distinct known customers, drawn uniformly
    callback_accept_share: float  # callers who take a callback when the engine offers one


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One simulated span of a centre: queues, agents and callers."""

    name: str
    description: str
    duration_hours: float
    interval_minutes: float
    max_calls: int | None  # stop generating arrivals after that many calls
    queues: tuple[QueueConfig, ...]
    agents: tuple[AgentGroup, ...]
    traffic: tuple[TrafficStream, ...]

    @property
    def interval_seconds(self) -> float:
        return self.interval_minutes * 60.0

    @property
    def intervals(self) -> int:
        return round(self.duration_hours * 60.0 / self.interval_minutes)

    @property
    def horizon_seconds(self) -> float:
        """When arrivals stop (unless ``max_calls`` stops them earlier)."""
        return self.duration_hours * 3600.0


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_scenario(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def parse_scenario(data: object) -> Scenario:
    """Validate already-parsed YAML (a mapping) into a ``Scenario``."""
    top = _fields(
        data,
        "scenario",
        required={"name", "duration_hours", "queues", "agents", "traffic"},
        optional={"description", "interval_minutes", "max_calls"},
    )
    duration = _number(top, "duration_hours", "", minimum=0.0, exclusive=True)
    interval = _number(top, "interval_minutes", "", minimum=0.0, exclusive=True, default=30.0)
    intervals = duration * 60.0 / interval
    if abs(intervals - round(intervals)) > 1e-9:
        raise ValueError(
            f"duration_hours: {duration} h is not a whole number of {interval}-minute intervals"
        )
    max_calls = top.get("max_calls")
    if max_calls is not None:
        max_calls = int(_number(top, "max_calls", "", minimum=1.0, integer=True))
    queues = tuple(_queue(item, f"queues[{i}]") for i, item in enumerate(_list(top, "queues", "")))
    queue_ids = {q.id for q in queues}
    _check_unique([q.id for q in queues], "queues", "id")
    for i, queue in enumerate(queues):
        targets = [(f"queues[{i}].when_full", queue.when_full)]
        targets += [
            (f"queues[{i}].overflow[{j}].target", r.target) for j, r in enumerate(queue.overflow)
        ]
        for where, target in targets:
            if target is not None and target.queue is not None and target.queue not in queue_ids:
                raise ValueError(f"{where}.queue: no queue {target.queue!r} in this scenario")
    agents = tuple(
        _agent_group(item, f"agents[{i}]", queue_ids)
        for i, item in enumerate(_list(top, "agents", ""))
    )
    _check_unique([a.prefix for a in agents], "agents", "prefix")
    seen: set[AgentId] = set()
    for i, group in enumerate(agents):
        ids = set(group.agent_ids())
        if ids & seen:
            raise ValueError(f"agents[{i}].prefix: its agent ids clash with another group's")
        seen |= ids
    traffic = tuple(
        _stream(item, i, queue_ids, round(intervals))
        for i, item in enumerate(_list(top, "traffic", ""))
    )
    _check_unique([s.name for s in traffic], "traffic", "name")
    return Scenario(
        name=_text(top, "name", ""),
        description=_text(top, "description", "", default=""),
        duration_hours=duration,
        interval_minutes=interval,
        max_calls=max_calls,
        queues=queues,
        agents=agents,
        traffic=traffic,
    )


# --- sections ----------------------------------------------------------------------------------

# Numeric queue fields: (minimum, exclusive, whole number).
_QUEUE_NUMBERS: dict[str, tuple[float, bool, bool]] = {
    "language_level": (1.0, False, True),
    "priority": (-math.inf, False, True),
    "weight": (-math.inf, False, True),
    "max_misses": (1.0, False, True),
    "sl_seconds": (0.0, False, False),
    "affinity_window_seconds": (0.0, False, False),
    "wrap_up_seconds": (0.0, False, False),
    "ring_timeout_seconds": (0.0, True, False),
    "short_abandon_seconds": (0.0, False, False),
}
# Fields where null means "never": no size limit, no announcements, no callback offers.
_QUEUE_NULLABLE: dict[str, tuple[float, bool, bool]] = {
    "max_size": (0.0, False, True),
    "announce_every_seconds": (0.0, True, False),
    "callback_offer_over_seconds": (0.0, False, False),
}


def _queue(data: object, path: str) -> QueueConfig:
    m = _fields(
        data,
        path,
        required={"id"},
        optional={
            "skills", "language", "language_level", "priority", "weight", "sl_seconds",
            "sl_target", "max_size", "when_unstaffed", "when_full", "strategy", "affinity",
            "affinity_window_seconds", "relaxation", "overflow", "wrap_up_seconds",
            "ring_timeout_seconds", "max_misses", "announce_every_seconds",
            "callback_offer_over_seconds", "short_abandon_seconds",
        },
    )  # fmt: skip
    kwargs: dict[str, Any] = {"id": QueueId(_text(m, "id", path))}
    if "skills" in m:
        kwargs["skills"] = _levels(m, "skills", path, Skill)
    if m.get("language") is not None:
        kwargs["language"] = Language(_text(m, "language", path))
    for key, (minimum, exclusive, whole) in (_QUEUE_NUMBERS | _QUEUE_NULLABLE).items():
        if key not in m:
            continue
        if m[key] is None and key in _QUEUE_NULLABLE:
            kwargs[key] = None
            continue
        value = _number(m, key, path, minimum=minimum, exclusive=exclusive, integer=whole)
        kwargs[key] = int(value) if whole else value
    if "sl_target" in m:
        kwargs["sl_target"] = _share(m, "sl_target", path)
    for key, enum in (
        ("when_unstaffed", WhenUnstaffed),
        ("strategy", Strategy),
        ("affinity", AffinityMode),
    ):
        if key in m:
            kwargs[key] = _choice(m, key, path, enum)
    if m.get("when_full") is not None:
        kwargs["when_full"] = _target(m["when_full"], f"{path}.when_full")
    if "relaxation" in m:
        kwargs["relaxation"] = tuple(
            _relax_step(item, f"{path}.relaxation[{i}]")
            for i, item in enumerate(_list(m, "relaxation", path, empty_ok=True))
        )
    if "overflow" in m:
        kwargs["overflow"] = tuple(
            _overflow_rule(item, f"{path}.overflow[{i}]")
            for i, item in enumerate(_list(m, "overflow", path, empty_ok=True))
        )
    try:
        return QueueConfig(**kwargs)
    except ValueError as exc:  # the engine's own checks, e.g. relaxation order
        raise ValueError(f"{path}: {exc}") from exc


def _relax_step(data: object, path: str) -> RelaxStep:
    m = _fields(
        data, path, required={"after_seconds"}, optional={"lower_levels_by", "any_language"}
    )
    return RelaxStep(
        after_seconds=_number(m, "after_seconds", path, minimum=0.0, exclusive=True),
        lower_levels_by=int(
            _number(m, "lower_levels_by", path, minimum=0, integer=True, default=0)
        ),
        any_language=_flag(m, "any_language", path, default=False),
    )


def _overflow_rule(data: object, path: str) -> OverflowRule:
    m = _fields(data, path, required={"when", "seconds", "target"})
    return OverflowRule(
        when=_choice(m, "when", path, OverflowCondition),
        seconds=_number(m, "seconds", path, minimum=0.0),
        target=_target(m["target"], f"{path}.target"),
    )


def _target(data: object, path: str) -> Target:
    m = _fields(data, path, optional={"queue", "site"})
    if len(m) != 1:
        raise ValueError(f"{path}: give exactly one of queue or site")
    if "queue" in m:
        return Target(queue=QueueId(_text(m, "queue", path)))
    site = _text(m, "site", path)
    if not site.startswith(("sip:", "sips:", "tel:")):
        raise ValueError(f"{path}.site: expected a SIP URI (sip:backup@example.net), got {site!r}")
    return Target(site=site)


def _agent_group(data: object, path: str, queue_ids: set[QueueId]) -> AgentGroup:
    m = _fields(
        data,
        path,
        required={"prefix", "count", "queues"},
        optional={
            "skills", "languages", "teams", "shift_start_hours", "shift_end_hours",
            "answer_delay", "miss_probability", "ready_again_after_seconds",
        },
    )  # fmt: skip
    queues = frozenset(QueueId(q) for q in _strings(m, "queues", path))
    if not queues:
        raise ValueError(f"{path}.queues: an agent must serve at least one queue")
    for queue in sorted(queues):
        if queue not in queue_ids:
            raise ValueError(f"{path}.queues: no queue {queue!r} in this scenario")
    start = _number(m, "shift_start_hours", path, minimum=0.0, default=0.0)
    end = None
    if m.get("shift_end_hours") is not None:
        end = _number(m, "shift_end_hours", path, minimum=0.0)
        if end <= start:
            raise ValueError(f"{path}.shift_end_hours: {end} is not after the start, {start}")
    delay: Distribution = Constant(value=0.0)
    if "answer_delay" in m:
        delay = _distribution(m["answer_delay"], f"{path}.answer_delay")
    return AgentGroup(
        prefix=_text(m, "prefix", path),
        count=int(_number(m, "count", path, minimum=1.0, integer=True)),
        skills=_levels(m, "skills", path, Skill),
        languages=_levels(m, "languages", path, Language),
        teams=frozenset(_strings(m, "teams", path)),
        queues=queues,
        shift_start_hours=start,
        shift_end_hours=end,
        answer_delay=delay,
        miss_probability=_share(m, "miss_probability", path, default=0.0),
        ready_again_after_seconds=_number(
            m, "ready_again_after_seconds", path, minimum=0.0, default=60.0
        ),
    )


def _stream(data: object, index: int, queue_ids: set[QueueId], intervals: int) -> TrafficStream:
    path = f"traffic[{index}]"
    m = _fields(
        data,
        path,
        required={"queue", "calls_per_interval", "talk"},
        optional={
            "name", "language", "skills", "priority", "hold", "wrap_up", "patience",
            "known_customer_share", "customer_population", "callback_accept_share",
        },
    )  # fmt: skip
    queue = QueueId(_text(m, "queue", path))
    if queue not in queue_ids:
        raise ValueError(f"{path}.queue: no queue {queue!r} in this scenario")
    rates = m["calls_per_interval"]
    if isinstance(rates, list):
        if len(rates) != intervals:
            raise ValueError(
                f"{path}.calls_per_interval: the scenario has {intervals} intervals, "
                f"the list gives {len(rates)} (or give one number for all)"
            )
        per_interval = tuple(
            _number({"x": r}, "x", f"{path}.calls_per_interval[{i}]", minimum=0.0, bare=True)
            for i, r in enumerate(rates)
        )
    else:
        per_interval = (_number(m, "calls_per_interval", path, minimum=0.0),) * intervals
    hold = None
    if m.get("hold") is not None:
        h = _fields(m["hold"], f"{path}.hold", required={"share", "duration"})
        hold = Hold(
            share=_share(h, "share", f"{path}.hold"),
            duration=_distribution(h["duration"], f"{path}.hold.duration"),
        )
    priority = m.get("priority")
    return TrafficStream(
        name=_text(m, "name", path, default=f"{queue}-{index}"),
        queue=queue,
        language=Language(_text(m, "language", path)) if m.get("language") is not None else None,
        skills=_levels(m, "skills", path, Skill),
        priority=None if priority is None else int(_number(m, "priority", path, integer=True)),
        calls_per_interval=per_interval,
        talk=_distribution(m["talk"], f"{path}.talk"),
        hold=hold,
        wrap_up=_optional_distribution(m, "wrap_up", path),
        patience=_optional_distribution(m, "patience", path),
        known_customer_share=_share(m, "known_customer_share", path, default=0.0),
        customer_population=int(
            _number(m, "customer_population", path, minimum=1.0, integer=True, default=1000)
        ),
        callback_accept_share=_share(m, "callback_accept_share", path, default=0.0),
    )


def _optional_distribution(m: Mapping[str, Any], key: str, path: str) -> Distribution | None:
    value = m.get(key)
    return None if value is None else _distribution(value, f"{path}.{key}")


def _distribution(data: object, path: str) -> Distribution:
    kinds = "exponential, lognormal, uniform or constant"
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"{path}: expected one of {kinds} as a one-key mapping, got {data!r}")
    ((kind, value),) = data.items()
    where = f"{path}.{kind}"
    if kind == "exponential":
        return Exponential(mean=_number({"x": value}, "x", where, minimum=0.0, bare=True))
    if kind == "constant":
        return Constant(value=_number({"x": value}, "x", where, minimum=0.0, bare=True))
    if kind == "lognormal":
        m = _fields(value, where, required={"mean", "sd"})
        return LogNormal(
            mean=_number(m, "mean", where, minimum=0.0, exclusive=True),
            sd=_number(m, "sd", where, minimum=0.0),
        )
    if kind == "uniform":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(f"{where}: expected [low, high], got {value!r}")
        low, high = (
            _number({"x": v}, "x", f"{where}[{i}]", minimum=0.0, bare=True)
            for i, v in enumerate(value)
        )
        if high < low:
            raise ValueError(f"{where}: high {high} is below low {low}")
        return Uniform(low=low, high=high)
    raise ValueError(f"{path}: unknown distribution {kind!r}; expected {kinds}")


# --- field readers: each names the path of what it rejects -------------------------------------


def _fields(
    data: object,
    path: str,
    *,
    required: AbstractSet[str] = frozenset(),
    optional: AbstractSet[str] = frozenset(),
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in required and key not in optional:
            known = ", ".join(sorted(required | optional))
            raise ValueError(f"{_join(path, str(key))}: unknown field (known: {known})")
    for key in sorted(required):
        if key not in data:
            raise ValueError(f"{_join(path, key)}: missing")
    return data


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and path != "scenario" else key


def _number(
    m: Mapping[str, Any],
    key: str,
    path: str,
    *,
    minimum: float | None = None,
    exclusive: bool = False,
    integer: bool = False,
    default: float | None = None,
    bare: bool = False,
) -> float:
    where = path if bare else _join(path, key)
    if key not in m or m[key] is None:
        if default is None:
            raise ValueError(f"{where}: missing")
        return default
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    if integer and value != int(value):
        raise ValueError(f"{where}: expected a whole number, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{where}: must be {'>' if exclusive else '>='} {minimum}, got {value!r}")
    return float(value)


def _share(m: Mapping[str, Any], key: str, path: str, *, default: float | None = None) -> float:
    value = _number(m, key, path, minimum=0.0, default=default)
    if value > 1.0:
        raise ValueError(f"{_join(path, key)}: a share is between 0 and 1, got {value!r}")
    return value


def _text(m: Mapping[str, Any], key: str, path: str, *, default: str | None = None) -> str:
    value = m.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"{_join(path, key)}: missing")
        return default
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise ValueError(f"{_join(path, key)}: expected a non-empty string, got {value!r}")
    return str(value)


def _flag(m: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool:
    value = m.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{_join(path, key)}: expected true or false, got {value!r}")
    return value


def _list(m: Mapping[str, Any], key: str, path: str, *, empty_ok: bool = False) -> list[Any]:
    value = m.get(key)
    if not isinstance(value, list) or (not value and not empty_ok):
        raise ValueError(f"{_join(path, key)}: expected a non-empty list, got {value!r}")
    return value


def _strings(m: Mapping[str, Any], key: str, path: str) -> list[str]:
    value = m.get(key, [])
    if isinstance(value, str) or not isinstance(value, list):
        raise ValueError(f"{_join(path, key)}: expected a list of names, got {value!r}")
    return [_text({"x": v}, "x", f"{_join(path, key)}[{i}]") for i, v in enumerate(value)]


def _levels(m: Mapping[str, Any], key: str, path: str, kind: Callable[[str], T]) -> Mapping[T, int]:
    value = m.get(key) or {}
    where = _join(path, key)
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of name to level 1-10, got {value!r}")
    levels: dict[T, int] = {}
    for name, level in value.items():
        number = _number(value, name, where, minimum=1.0, integer=True)
        if number > 10:
            raise ValueError(f"{where}.{name}: level {level!r} is outside 1-10")
        levels[kind(str(name))] = int(number)
    return MappingProxyType(levels)


def _choice(m: Mapping[str, Any], key: str, path: str, enum: type[E]) -> E:
    value = m.get(key)
    try:
        return enum(value)
    except ValueError:
        options = ", ".join(e.value for e in enum)
        raise ValueError(f"{_join(path, key)}: expected one of {options}, got {value!r}") from None


def _check_unique(values: list[Any], section: str, key: str) -> None:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{section}[{i}].{key}: {value!r} is used twice")
        seen.add(value)
