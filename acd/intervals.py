"""Report intervals: half hours, days, weeks and months on a time zone's wall clock.

Theory of operation: an ``Intervals`` turns an epoch time into the start of
the interval holding it (``start``) and steps from one start to the next
(``following``). Boundaries are those of the local wall clock (a half hour
starts at :00 or :30 local time, a day at local midnight, a week on Monday,
a month on the 1st), so a day with a daylight-saving change lasts 23 or 25
hours and an autumn night has two distinct half hours labelled 01:00 (told
apart by their UTC offsets). Intervals are keyed by their start in epoch
seconds, which is never ambiguous.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_HALF_HOUR = 1800.0
MAX_HALF_HOURS = 20_000  # a little over a year of half-hour rows per queue, agent or team
MAX_RANGE_SECONDS = 3 * 366 * 86_400.0
LATEST = 4_102_444_800.0  # 2100-01-01 UTC


class Interval(Enum):
    HALFHOUR = "halfhour"
    DAY = "day"
    WEEK = "week"  # Monday to Sunday (ISO 8601)
    MONTH = "month"


class Intervals:
    """Interval boundaries of one kind in one time zone."""

    __slots__ = ("interval", "zone")

    def __init__(self, interval: Interval, zone: ZoneInfo) -> None:
        self.interval = interval
        self.zone = zone

    def start(self, at: float) -> float:
        """The start of the interval that holds ``at``."""
        if self.interval is Interval.HALFHOUR:
            offset = self._local(at).utcoffset()
            shift = offset.total_seconds() if offset is not None else 0.0
            return at - (at + shift) % _HALF_HOUR
        return self._midnight(self._first_day(self._local(at).date()))

    def following(self, start: float) -> float:
        """The start of the interval after the one starting at ``start``."""
        if self.interval is Interval.HALFHOUR:
            after = start + _HALF_HOUR
            aligned = self.start(after)  # the same unless the offset changes off the half hour
            return aligned if aligned > start else after
        day = self._local(start).date()
        if self.interval is Interval.DAY:
            return self._midnight(day + timedelta(days=1))
        if self.interval is Interval.WEEK:
            return self._midnight(day + timedelta(days=7))
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return self._midnight(date(year, month, 1))

    def between(self, since: float, until: float) -> Iterator[float]:
        """The starts of every interval that overlaps [since, until)."""
        at = self.start(since)
        while at < until:
            yield at
            at = self.following(at)

    def label(self, start: float) -> str:
        """The start as ISO 8601 local time with its offset: ``2026-12-01T09:30:00+01:00``."""
        return self._local(start).isoformat()

    def _local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, self.zone)

    def _first_day(self, day: date) -> date:
        if self.interval is Interval.WEEK:
            return day - timedelta(days=day.weekday())
        if self.interval is Interval.MONTH:
            return day.replace(day=1)
        return day

    def _midnight(self, day: date) -> float:
        return datetime.combine(day, time(), self.zone).timestamp()


def parse_time(text: str, zone: ZoneInfo) -> float:
    """ISO 8601 date or date-time to epoch seconds; without an offset, on ``zone``'s clock."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def parse_range(
    since: str, until: str, zone_name: str, interval: Interval
) -> tuple[Intervals, float, float]:
    """A report's intervals and range from what a user typed; ``ValueError`` says what is wrong."""
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"no time zone {zone_name!r}") from None
    try:
        start, end = parse_time(since, zone), parse_time(until, zone)
    except (OverflowError, OSError) as error:
        raise ValueError(str(error)) from None
    if not start < end:
        raise ValueError("from must come before to")
    if start < 0 or end > LATEST:
        raise ValueError("from and to must lie between 1970 and 2100")
    if end - start > MAX_RANGE_SECONDS:
        raise ValueError("a report covers at most three years")
    if interval is Interval.HALFHOUR and (end - start) / _HALF_HOUR > MAX_HALF_HOURS:
        raise ValueError(f"at most {MAX_HALF_HOURS} half hours: ask for days instead")
    return Intervals(interval, zone), start, end
