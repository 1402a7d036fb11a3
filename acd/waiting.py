"""Waiting calls: relaxation, announcements, wait estimates and overflow, on timers.

Theory of operation. The first time a call waits in a queue its timers are
armed: the next rung of the queue's relaxation ladder, which widens the
call's requirement profile, routes it again and arms the rung after; a review
every announcement period (or every 30 s when an EWT-over overflow rule needs
one), which estimates the wait, then overflows on it or announces position and
EWT; and the earliest wait-over overflow rule whose target can still take
the call. The end of an affinity window hands a call that waited for one agent
to everyone. Each handler checks the call's state first: a ringing call is
looked at again later, a call that has left is ignored.

The estimated wait (EWT): with few ready agents, when each is expected to
free up and how many calls are ahead for them; with many, their releases
averaged into a rate (``acd.estimates``). Either way the ring time is added:
the wait lasts until an agent answers.
"""

from __future__ import annotations

from acd.actions import PlayAnnouncement
from acd.agents import Agent
from acd.calls import Call
from acd.config import OverflowCondition, Target
from acd.estimates import estimate_from_releases, estimate_wait
from acd.ledger import CALLBACK_WAITING, IN_QUEUE, WAITING
from acd.queues import QueueRuntime
from acd.routing import Routing
from acd.states import AgentState, AgentStatus, CallState, Trigger
from acd.timers import TimerKind

_DEFAULT_REVIEW_SECONDS = 30.0
_OVERFLOW_RETRY_SECONDS = 10.0
# Up to this many ready agents, EWT looks at when each is expected to free up;
# above it, their releases average out into a rate.
_AGENT_LEVEL_EWT_UP_TO = 64


class Waiting(Routing):
    """The timers of waiting calls, and the estimated wait."""

    def __init__(self) -> None:
        super().__init__()
        self._timer_handlers[TimerKind.AFFINITY_END] = self._affinity_window_ended
        self._timer_handlers[TimerKind.RELAX] = self._relax
        self._timer_handlers[TimerKind.REVIEW] = self._review_timer
        self._timer_handlers[TimerKind.WAIT_OVERFLOW] = self._wait_limit_reached

    # == arming ========================================================================

    def _arm_queue_timers(self, call: Call, now: float) -> None:
        config = call.queue.config
        self._arm_relax(call)
        if call.state in CALLBACK_WAITING:
            return  # nobody on the line to announce to or to send elsewhere
        self._arm_wait_limit(call, now)
        every = config.announce_every_seconds
        if every is None and any(r.when is OverflowCondition.EWT_OVER for r in config.overflow):
            every = _DEFAULT_REVIEW_SECONDS
        if every is not None:
            call.timers[TimerKind.REVIEW] = self._timers.set(
                now + every, TimerKind.REVIEW, call, call.rank()
            )

    def _arm_wait_limit(self, call: Call, now: float, retry_at: float | None = None) -> None:
        """Arm the earliest wait-over rule whose target the call can still go to.

        With ``retry_at``, the rules already due were refused by their targets
        just now: they are looked at again then, later rules at their own time.
        """
        assert call.enqueued_at is not None
        deadlines = []
        for rule in call.queue.config.overflow:
            if rule.when is OverflowCondition.WAIT_OVER and (
                rule.target.site is not None or self._can_move_to(call, rule.target.queue)
            ):
                due = call.enqueued_at + rule.seconds
                if retry_at is not None and due <= now:
                    due = retry_at
                deadlines.append(max(now, due))
        if deadlines:
            call.timers[TimerKind.WAIT_OVERFLOW] = self._timers.set(
                min(deadlines), TimerKind.WAIT_OVERFLOW, call, call.rank()
            )

    def _arm_relax(self, call: Call) -> None:
        relaxation = call.queue.config.relaxation
        if call.relax_level < len(relaxation):
            assert call.enqueued_at is not None
            deadline = call.enqueued_at + relaxation[call.relax_level].after_seconds
            call.timers[TimerKind.RELAX] = self._timers.set(
                deadline, TimerKind.RELAX, call, call.rank()
            )

    def _requeue_for_new_config(self, queue: QueueRuntime, now: float) -> None:
        """A queue's configuration was replaced: its calls take the new requirements,
        relaxation steps and overflow rules, from their original enqueue time."""
        calls = [c for c in self._calls.values() if c.queue is queue and c.state in WAITING]
        for call in sorted(calls, key=Call.rank):
            waiting = call.entry is not None  # (one waiting for an agent is let go too)
            self._unwait(call)
            call.cancel_timers()
            call.armed = False  # armed again, by the new rules, when it waits again
            call.profile = None
            self._catch_up(call, now)
            if waiting:
                self._route(call, now)

    # == relaxation ====================================================================

    def _relax(self, call: Call, now: float) -> None:
        if call.state not in WAITING:  # (callback tasks relax too)
            return
        waiting_in_profile = call.entry is not None and call.affinity_agent is None
        if waiting_in_profile:
            assert call.profile is not None and call.entry is not None
            call.profile.remove_waiting(call.entry)
            call.entry = None
        # (a ringing or affinity-waiting call uses the new profile when it waits again)
        self._catch_up(call, now)
        self._arm_relax(call)
        if waiting_in_profile:
            self._route(call, now)

    # == review: estimate, overflow on it, announce ====================================

    def _review_timer(self, call: Call, now: float) -> None:
        if call.state not in IN_QUEUE:
            return
        config = call.queue.config
        every = config.announce_every_seconds or _DEFAULT_REVIEW_SECONDS
        call.timers[TimerKind.REVIEW] = self._timers.set(
            now + every, TimerKind.REVIEW, call, call.rank()
        )
        if call.state is CallState.QUEUED and call.affinity_agent is None:
            self._review(call, now)

    def _review(self, call: Call, now: float) -> None:
        """Estimate the caller's wait; overflow on it, or announce it."""
        position, ewt = self.estimate(call)
        config = call.queue.config
        if ewt is not None:
            for rule in config.overflow:
                if (
                    rule.when is OverflowCondition.EWT_OVER
                    and ewt > rule.seconds
                    and self._overflow(call, rule.target, now, "ewt_over")
                ):
                    return
        if config.announce_every_seconds is None:
            return
        if ewt is not None:
            if call.announced_ewt is not None:
                ewt = min(ewt, call.announced_ewt)  # never announce a wait that grows
            call.announced_ewt = ewt
        over = config.callback_offer_over_seconds
        self._actions.append(
            PlayAnnouncement(
                call_id=call.id,
                position=position,
                ewt_seconds=ewt,
                offer_callback=over is not None and ewt is not None and ewt > over,
            )
        )

    def estimate(self, call: Call) -> tuple[int, float | None]:
        """A waiting caller's position (1 is next) and estimated remaining wait."""
        profile = call.profile
        entry = call.entry
        assert profile is not None and entry is not None
        position = profile.position(entry) + 1
        aht = call.queue.aht.mean
        if profile.ready == 0 or aht is None:
            return position, None  # nobody who could answer is in, or no history yet
        aht = max(aht, 1.0)
        reneging = call.queue.reneging.per_second
        ring = call.queue.ring.mean or 0.0  # the wait lasts until the agent answers
        if profile.ready > _AGENT_LEVEL_EWT_UP_TO:  # many agents: their releases average out
            measured = profile.service.per_second
            rate = measured if measured is not None else profile.ready / aht
            return position, ring + estimate_wait(position - 1, rate, reneging)
        # Few agents: who will free up when, and every call ahead of this one for
        # them, in this profile or in others that share some of these agents.
        releases = [r for a in profile.members if (r := self._release_in(a, aht)) is not None]
        if not releases:  # all of them are about to leave (pending not ready or logout)
            return position, None
        ahead = round(profile.calls_ahead(entry))
        return position, ring + estimate_from_releases(ahead, releases, aht, reneging)

    def _release_in(self, agent: Agent, aht: float) -> float | None:
        """Seconds until a ready agent is expected to be free; None for others."""
        if agent.status is not AgentStatus.READY or agent.pending is not None:
            return None
        state = agent.state
        if state is AgentState.IDLE:
            return 0.0
        if state is AgentState.NOT_RESPONDING:
            return None
        queue = agent.leg_queue
        if agent.call is None or queue is None:  # ringing: a whole call ahead of them
            return aht
        remaining = queue.aht.remaining(self._now - agent.leg_started_at)
        return aht if remaining is None else remaining

    # == overflow ======================================================================

    def _wait_limit_reached(self, call: Call, now: float) -> None:
        if call.state is CallState.OFFERED:
            return  # ringing: if it comes back to wait, ``_wait`` arms this again at once
        if call.state is not CallState.QUEUED:
            return
        assert call.enqueued_at is not None
        since = call.enqueued_at
        for rule in sorted(call.queue.config.overflow, key=lambda r: r.seconds):
            if (
                rule.when is OverflowCondition.WAIT_OVER
                and since + rule.seconds <= now  # the very sum the timer was set for
                and self._overflow(call, rule.target, now, "wait_over")
            ):
                return
        # Every target refused (full, or nobody staffed there): look again later.
        self._arm_wait_limit(call, now, retry_at=now + _OVERFLOW_RETRY_SECONDS)

    def _overflow(self, call: Call, target: Target, now: float, reason: str) -> bool:
        """Move a waiting call to the target; False when the target can't take it."""
        if target.site is not None:
            self._send_to_site(call, target.site, now, reason)
            return True
        if not self._can_move_to(call, target.queue):
            return False
        assert target.queue is not None
        queue = self._queues[target.queue]
        if self._refusal(call, queue) is not None:
            return False
        self._unwait(call)
        call.cancel_timers()
        call.armed = False
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=True)
        self._place(call, queue, now, Trigger.REQUEUE, f"{reason}:{call.queue.id}")
        self._route(call, now)
        return True

    # == affinity ======================================================================

    def _affinity_window_ended(self, call: Call, now: float) -> None:
        agent = call.affinity_agent
        if agent is None or call.entry is None:
            return
        agent.affinity_waiting.remove(call.entry)
        self._fall_back(call, now)
