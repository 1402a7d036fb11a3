"""What a simulation run reports: KPIs, wait-estimate errors, and a table for people."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acd.ids import QueueId
from acd.kpis import CallKpis, KpiTotals


@dataclass(frozen=True, slots=True, kw_only=True)
class EwtError:
    """Mean absolute error of announced waits against the waits callers really had left.

    Only announcements with an estimate, to callers who were later answered,
    count: for the others there is no true remaining wait to compare with.
    """

    announcements: int
    acd_mae_seconds: float | None  # ours (acd.estimates, via the engine)
    asterisk_mae_seconds: float | None  # app_queue's baseline at the same moments
    acd_bias_seconds: float | None = None  # mean of (estimate - actual): > 0 overestimates
    asterisk_bias_seconds: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "acd": self.acd_mae_seconds,
            "asterisk": self.asterisk_mae_seconds,
            "announcements": self.announcements,
            "acd_bias": self.acd_bias_seconds,
            "asterisk_bias": self.asterisk_bias_seconds,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationReport:
    """The outcome of ``simulate(scenario, seed)``: the same inputs always give an equal report."""

    scenario: str
    seed: int
    calls: int  # calls generated
    unfinished: int  # calls still in the centre when nothing more could happen
    simulated_seconds: float  # the virtual clock at the end
    events: int
    kpis: KpiTotals
    ewt: EwtError
    ewt_per_queue: Mapping[QueueId, EwtError]
    announcements: int  # every PlayAnnouncement, with or without an estimate
    without_estimate: int  # those without (no handled call or nobody in yet): in no MAE
    callbacks_offered: int
    callbacks_taken: int
    sent_away: Mapping[str, int]  # "overflowed:<reason>" and "blocked:<reason>" counts

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON (``acd simulate --json``)."""
        totals = self.kpis.as_dict()
        per_queue = {
            str(queue): kpis.as_dict() | {"ewt_mae_seconds": self._queue_ewt(queue)}
            for queue, kpis in self.kpis.per_queue.items()
        }
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "calls": self.calls,
            "unfinished": self.unfinished,
            "simulated_hours": self.simulated_seconds / 3600.0,
            "events": self.events,
            "kpis": totals["overall"],
            "ewt_mae_seconds": self.ewt.as_dict(),
            "announcements": {
                "played": self.announcements,
                "without_estimate": self.without_estimate,
                "callbacks_offered": self.callbacks_offered,
                "callbacks_taken": self.callbacks_taken,
            },
            "sent_away": dict(self.sent_away),
            "per_queue": per_queue,
            "agents": totals["agents"],
            "per_agent": totals["per_agent"],
        }

    def _queue_ewt(self, queue: QueueId) -> dict[str, float | int | None]:
        error = self.ewt_per_queue.get(queue)
        return (
            error.as_dict()
            if error is not None
            else EwtError(
                announcements=0, acd_mae_seconds=None, asterisk_mae_seconds=None
            ).as_dict()
        )

    def format_text(self) -> str:
        """A table for a human: one row per queue and one for the whole centre."""
        hours = self.simulated_seconds / 3600.0
        lines = [
            f"Scenario {self.scenario} (seed {self.seed}): {self.calls:,} calls, "
            f"{hours:.1f} h simulated, {self.unfinished} unfinished",
            "",
            _HEADER,
            "-" * len(_HEADER),
        ]
        for queue, kpis in self.kpis.per_queue.items():
            lines.append(_row(str(queue), kpis))
        lines.append("-" * len(_HEADER))
        lines.append(_row("all", self.kpis.overall))
        agents = self.kpis.agents
        ewt = self.ewt
        lines += [
            "",
            f"Agents: {len(self.kpis.per_agent)}, occupancy {_pct(agents.occupancy)}, "
            f"avg talk {_sec(self.kpis.overall.avg_talk_seconds)}, "
            f"hold {_sec(self.kpis.overall.avg_hold_seconds)}, "
            f"after-call work {_sec(self.kpis.overall.avg_acw_seconds)}",
            f"Estimated wait, mean absolute error over {ewt.announcements:,} announcements: "
            f"acd {_sec(ewt.acd_mae_seconds)}, asterisk {_sec(ewt.asterisk_mae_seconds)} "
            f"(mean signed error: acd {_sec(ewt.acd_bias_seconds)}, "
            f"asterisk {_sec(ewt.asterisk_bias_seconds)})",
            f"Announcements {self.announcements:,} ({self.without_estimate:,} without an "
            f"estimate); callbacks offered "
            f"{self.callbacks_offered:,}, taken {self.callbacks_taken:,}",
        ]
        if self.sent_away:
            reasons = ", ".join(f"{why} {n:,}" for why, n in self.sent_away.items())
            lines.append(f"Sent away: {reasons}")
        return "\n".join(lines)


_COLUMNS = (
    ("queue", 14),
    ("offered", 8),
    ("answered", 9),
    ("abandon", 8),
    ("short", 6),
    ("overfl", 7),
    ("blocked", 8),
    ("self", 5),
    ("SL", 7),
    ("ASA", 8),
    ("to-aband", 9),
    ("AHT", 8),
    ("aband%", 7),
)
_HEADER = " ".join(
    name.ljust(width) if i == 0 else name.rjust(width) for i, (name, width) in enumerate(_COLUMNS)
)


def _row(name: str, k: CallKpis) -> str:
    cells = [
        name,
        f"{k.offered:,}",
        f"{k.answered:,}",
        f"{k.abandoned:,}",
        f"{k.short_abandoned:,}",
        f"{k.overflowed:,}",
        f"{k.blocked:,}",
        f"{k.self_served:,}",
        _pct(k.service_level),
        _sec(k.asa_seconds),
        _sec(k.avg_abandon_seconds),
        _sec(k.aht_seconds),
        _pct(k.abandon_rate),
    ]
    return " ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _sec(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
