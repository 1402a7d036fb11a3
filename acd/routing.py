"""Routing: a call from arrival to an offer, and a freed agent to their next call.

Theory of operation. Routing order for a call (docs/ARCHITECTURE.md): admission
(disaster mode, full, unstaffed) → affinity (last or dedicated agent,
optionally waiting a window for them) → the best available agent of its
requirement profile → wait, with relaxation steps, announcements and overflow
timers (``acd.waiting``). A call refused admission goes where its queue says
(another queue, another site) or is rejected. An admitted call is placed at the
relaxation level its wait so far has earned. For a freed agent: calls waiting
for them in particular, then the best waiting call of all their profiles
(priority, then enqueue time, then queue weight); with none, they are indexed
as available in their profiles.

An offer reserves the call and the agent until the agent accepts, rejects or
lets it ring out; unless the caller left, a withdrawn offer sends the call
back through routing. (An offer that is a consultation, ``acd.transfers``,
leaves the call with its agent: its answer and its end go to that layer.) A
call that leaves the queue without reaching an agent (abandoned, self-served,
sent to another site) takes its offer and its place in the waiting lists with
it. A call that was answered before (then sent back to a queue by a transfer)
keeps the outcome ANSWERED however it leaves.

A callback task (``CallState.CALLBACK_QUEUED``, booked with
``CallArrived.callback_number`` or requested by a waiting caller in
``acd.engine``) is routed like a call: its offer and its ``ConnectCall``
carry the number; accepted, it is DIALING until the customer answers. A
booking can't go to another site (nobody is on the line): it is blocked.
"""

from __future__ import annotations

import re
from bisect import insort

from acd.actions import ConnectCall, OfferCall, RejectCall, RetractOffer, TransferToSite
from acd.agents import Agent
from acd.calls import Call
from acd.commands import CallArrived, OfferAccepted, OfferRejected
from acd.config import AffinityMode, Target, WhenUnstaffed
from acd.errors import CommandRejected
from acd.ids import AgentId, QueueId, ReservationId
from acd.ledger import IN_QUEUE, Ledger
from acd.offers import Reservation
from acd.queues import QueueRuntime
from acd.states import AgentState, AgentStatus, CallState, Outcome, ReservationState, Trigger
from acd.timers import TimerKind

_CALLABLE = re.compile(r"\+?[0-9]{3,20}")  # a number we can dial (and put in a SIP URI)


def check_callback_number(number: str) -> None:
    """Refuse a callback number that is not 3-20 digits (an optional leading +)."""
    if not _CALLABLE.fullmatch(number):
        raise CommandRejected(
            "invalid_number", f"callback number {number!r}: 3-20 digits, an optional leading +"
        )


class Routing(Ledger):
    """Admission, routing decisions, offers, and leaving the queue."""

    def __init__(self) -> None:
        super().__init__()
        self._timer_handlers[TimerKind.RING_TIMEOUT] = self._ring_timed_out

    # == calls: arrival and admission ==================================================

    def _call_arrived(self, cmd: CallArrived, now: float) -> None:
        queue = self._require_queue(cmd.queue_id)
        if cmd.call_id in self._calls:
            raise CommandRejected("duplicate_call", f"call {cmd.call_id} is already here")
        for skill, level in cmd.skills.items():
            if not 1 <= level <= 10:
                raise CommandRejected(
                    "invalid_call", f"skill {skill}: level {level} is outside 1-10"
                )
        if cmd.callback_number is not None:
            check_callback_number(cmd.callback_number)
        call = Call(
            call_id=cmd.call_id,
            queue=queue,
            order=next(self._call_order),
            now=now,
            ani=cmd.ani,
            dnis=cmd.dnis,
            language=cmd.language,
            skills=dict(cmd.skills) if cmd.skills else None,
            priority=cmd.priority,
            customer_id=cmd.customer_id,
            dedicated_agent=cmd.dedicated_agent,
            data=cmd.data,
        )
        call.callback_number = cmd.callback_number
        self._calls[call.id] = call
        self._call_event(call, None, now)
        if self._disaster_site is not None:
            self._send_away(call, self._disaster_site, now, "disaster_mode")
            return
        self._admit(call, queue, now)

    def _admit(self, call: Call, queue: QueueRuntime, now: float) -> None:
        """Let a new call into ``queue``, or send it where the queue says when it can't take it."""
        call.queue = queue
        call.visited.add(queue.id)
        refusal = self._refusal(call, queue)
        if refusal is not None:
            reason, target = refusal
            if target is not None and target.site is not None:
                self._send_away(call, target.site, now, reason)
            elif target is not None and self._can_move_to(call, target.queue):
                assert target.queue is not None
                self._admit(call, self._queues[target.queue], now)
            else:
                self._actions.append(RejectCall(call_id=call.id, reason=reason))
                self._end_call(call, Outcome.BLOCKED, now, reason)
            return
        call.enqueued_at = now
        if call.callback_number is None:
            self._place(call, queue, now, Trigger.ADMIT, None)
        else:  # a booking from the IVR menu: a callback task from the start
            self._place(call, queue, now, Trigger.CALLBACK, "callback_booked", call.callback_number)
        self._route(call, now, affinity=True)

    def _send_away(self, call: Call, site: str, now: float, reason: str) -> None:
        """A new call goes to another site; a callback booking can't (nobody is on the
        line to transfer), so it is refused instead, counted as blocked."""
        if call.callback_number is None:
            self._send_to_site(call, site, now, reason)
        else:
            self._actions.append(RejectCall(call_id=call.id, reason=reason))
            self._end_call(call, Outcome.BLOCKED, now, reason)

    def _refusal(self, call: Call, queue: QueueRuntime) -> tuple[str, Target | None] | None:
        config = queue.config
        if config.max_size is not None and queue.size >= config.max_size:
            return "queue_full", config.when_full
        if config.when_unstaffed is not WhenUnstaffed.QUEUE:
            profile = queue.profile(queue.needs(call.skills, call.language, 0))
            if profile.staffed == 0:
                target = (
                    config.when_full if config.when_unstaffed is WhenUnstaffed.OVERFLOW else None
                )
                return "unstaffed", target
        return None

    def _can_move_to(self, call: Call, queue_id: QueueId | None) -> bool:
        return queue_id is not None and queue_id in self._queues and queue_id not in call.visited

    def _place(
        self,
        call: Call,
        queue: QueueRuntime,
        now: float,
        trigger: Trigger,
        reason: str | None,
        callback_number: str | None = None,
    ) -> None:
        """Put the call in ``queue`` at the relaxation level its wait so far has earned,
        with the queue's priority unless the call came with its own."""
        assert call.enqueued_at is not None
        call.queue = queue
        if call.asked_priority is None:
            call.priority = queue.config.priority
        call.visited.add(queue.id)
        call.entered_queue_at = now
        call.profile = None
        self._catch_up(call, now)
        queue.size += 1
        self._call_event(call, trigger, now, reason=reason, callback_number=callback_number)

    def _catch_up(self, call: Call, now: float) -> None:
        """Bring the call's requirements to the relaxation level its wait so far has earned.

        Steps are compared as ``enqueued_at + after_seconds <= now``: the very sum
        a relaxation timer is set for, so a firing timer always counts its step.
        """
        assert call.enqueued_at is not None
        queue = call.queue
        relaxation = queue.config.relaxation
        level = 0
        if relaxation:
            since = call.enqueued_at
            level = sum(1 for step in relaxation if since + step.after_seconds <= now)
        if call.profile is None or level != call.relax_level:
            call.relax_level = level
            call.profile = queue.profile(queue.needs(call.skills, call.language, level))

    # == routing =======================================================================

    def _route(self, call: Call, now: float, *, affinity: bool = False) -> None:
        """Offer a queued call to the best available agent, or make it wait."""
        if call.queue.config.relaxation:
            self._catch_up(call, now)  # it may have been ringing when a step came due
        profile = call.profile
        assert profile is not None
        if affinity and call.queue.config.affinity is not AffinityMode.OFF:
            preferred = self._preferred_agents(call)
            for candidate in preferred:
                if candidate.available:
                    self._offer(call, candidate, now)
                    return
            window = call.queue.config.affinity_window_seconds
            if window > 0:
                for candidate in preferred:
                    if (
                        candidate.status is AgentStatus.READY
                        and candidate.state is not AgentState.NOT_RESPONDING
                        and candidate.pending is None
                    ):
                        self._wait_for(call, candidate, now, window)
                        return
        agent = profile.best_available()
        if agent is not None:
            self._offer(call, agent, now)
        else:
            self._wait(call, now)

    def _preferred_agents(self, call: Call) -> list[Agent]:
        """The dedicated and/or last agent the queue's affinity mode asks for, in that
        order, if they are logged in and eligible for the call."""
        mode = call.queue.config.affinity
        candidates: list[AgentId] = []
        if (
            mode in (AffinityMode.DEDICATED, AffinityMode.DEDICATED_OR_LAST)
            and call.dedicated_agent
        ):
            candidates.append(call.dedicated_agent)
        if mode in (AffinityMode.LAST_AGENT, AffinityMode.DEDICATED_OR_LAST) and call.customer_id:
            last = self._last_agent.get(call.customer_id)
            if last is not None:
                candidates.append(last)
        assert call.profile is not None
        members = call.profile.members
        agents = (self._agents.get(agent_id) for agent_id in candidates)
        # Never back to the agent who just sent the caller away by a transfer.
        away = call.transferred_by
        return [
            a for a in agents if a is not None and a.logged_in and a in members and a is not away
        ]

    def _serve_agent(self, agent: Agent, now: float) -> None:
        """An agent became available: give them the call that should go next, or index them."""
        if agent.affinity_waiting:
            call = agent.affinity_waiting.pop(0)[4]
            call.affinity_agent = None
            call.entry = None
            timer = call.timers.pop(TimerKind.AFFINITY_END, None)
            if timer is not None:
                timer.cancel()
            self._offer(call, agent, now)
            return
        best = None
        best_profile = None
        for profile in agent.profiles:
            if profile.waiting:
                head = profile.waiting[0]
                if best is None or head < best:
                    best, best_profile = head, profile
        if best is not None:
            assert best_profile is not None
            call = best_profile.take_head(now)
            call.entry = None
            self._offer(call, agent, now)
            return
        for profile in agent.profiles:
            profile.add_available(agent)

    def _wait(self, call: Call, now: float) -> None:
        assert call.profile is not None
        entry = call.wait_entry()
        call.entry = entry
        call.profile.add_waiting(entry, now)
        if not call.armed:  # first wait in this queue
            call.armed = True
            self._arm_queue_timers(call, now)
            if call.state is CallState.QUEUED:  # (a callback task has nobody to tell)
                self._review(call, now)
        elif call.state is CallState.QUEUED and TimerKind.WAIT_OVERFLOW not in call.timers:
            self._arm_wait_limit(call, now)  # a limit that passed while it rang is due now

    def _wait_for(self, call: Call, agent: Agent, now: float, window: float) -> None:
        """Hold the call for one agent until the affinity window ends."""
        entry = call.wait_entry()
        call.entry = entry
        call.affinity_agent = agent
        insort(agent.affinity_waiting, entry)
        call.timers[TimerKind.AFFINITY_END] = self._timers.set(
            now + window, TimerKind.AFFINITY_END, call
        )
        if not call.armed:  # its relaxation and overflow limits run during the window too
            call.armed = True
            self._arm_queue_timers(call, now)

    def _unwait(self, call: Call) -> None:
        """Take the call out of whichever waiting list holds it."""
        entry = call.entry
        if entry is None:
            return
        call.entry = None
        if call.affinity_agent is not None:
            call.affinity_agent.affinity_waiting.remove(entry)
            call.affinity_agent = None
        else:
            assert call.profile is not None
            call.profile.remove_waiting(entry)

    def _release_affinity(self, agent: Agent, now: float) -> None:
        """The agent won't come back soon: calls waiting for them go to everyone."""
        while agent.affinity_waiting:
            call = agent.affinity_waiting.pop(0)[4]
            self._fall_back(call, now)

    def _fall_back(self, call: Call, now: float) -> None:
        call.affinity_agent = None
        call.entry = None
        timer = call.timers.pop(TimerKind.AFFINITY_END, None)
        if timer is not None:
            timer.cancel()
        self._route(call, now)

    # == offers ========================================================================

    def _offer(self, call: Call, agent: Agent, now: float) -> None:
        deadline = now + call.queue.config.ring_timeout_seconds
        order = next(self._offer_order)
        number = call.callback_number if call.state is CallState.CALLBACK_QUEUED else None
        res = Reservation(
            ReservationId(f"r{order}"), call, agent, now, deadline, callback_number=number
        )
        res.timer = self._timers.set(deadline, TimerKind.RING_TIMEOUT, res)
        call.reservation = res
        agent.reservation = res
        agent.last_offer_order = order
        self._reservation_event(res, None, now)
        self._call_event(call, Trigger.OFFER, now, reason=res.id)
        self._agent_event(agent, now, state=Trigger.OFFER, call_id=call.id)
        self._actions.append(
            OfferCall(
                reservation_id=res.id,
                call_id=call.id,
                agent_id=agent.id,
                deadline=deadline,
                callback_number=number,
            )
        )

    def _offer_accepted(self, cmd: OfferAccepted, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        res = self._require_offer(agent, cmd.call_id)
        if res.consult is not None:
            self._answer_consult(res, now)
            return
        call = res.call
        assert res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        call.reservation = None
        self._reservation_event(res, Trigger.ACCEPT, now)
        call.agent = agent
        call.connected_at = now
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=False)
        call.queue.ring.add(now - res.offered_at)
        call.cancel_timers()
        self._call_event(call, Trigger.ACCEPT, now)
        agent.call = call
        agent.leg_started_at = now
        agent.leg_queue = call.queue
        agent.misses = 0
        agent.calls_answered += 1
        self._agent_event(agent, now, state=Trigger.ACCEPT, call_id=call.id)
        if call.customer_id is not None:
            self._last_agent[call.customer_id] = agent.id
        self._actions.append(
            ConnectCall(call_id=call.id, agent_id=agent.id, callback_number=res.callback_number)
        )

    def _offer_rejected(self, cmd: OfferRejected, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        res = self._require_offer(agent, cmd.call_id)
        self._withdraw_offer(res, Trigger.REJECT, now)

    def _ring_timed_out(self, res: Reservation, now: float) -> None:
        if res.state is ReservationState.PENDING:
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=res.call.id, agent_id=res.agent.id)
            )
            self._withdraw_offer(res, Trigger.TIME_OUT, now)

    def _withdraw_offer(self, res: Reservation, trigger: Trigger, now: float) -> None:
        """End a pending offer; unless the caller left, the call goes back to its place."""
        if res.consult is not None:
            self._withdraw_consult(res, trigger, now)
            return
        call, agent = res.call, res.agent
        assert res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        call.reservation = None
        agent.last_missed_call = call.id
        self._reservation_event(res, trigger, now)
        if trigger is not Trigger.CANCEL:
            self._call_event(call, trigger, now, reason=res.id)
        if trigger is not Trigger.CANCEL:
            # The call first, while the agent is still reserved: another free agent
            # gets it before it can bounce straight back to the one who let it go.
            self._route(call, now)
        self._free_offered_agent(res, trigger, now)

    def _free_offered_agent(self, res: Reservation, trigger: Trigger, now: float) -> None:
        """The agent of an unanswered offer is free again; a ring-no-answer is their miss."""
        call, agent = res.call, res.agent
        status = None
        reason = None
        if trigger is Trigger.TIME_OUT:
            agent.misses += 1
            if agent.misses >= call.queue.config.max_misses and agent.pending is None:
                status, reason = Trigger.NOT_READY, "no_answer"  # never a silent logout
        self._agent_event(agent, now, state=trigger, status=status, reason=reason, call_id=call.id)
        if agent.status is not AgentStatus.READY:
            self._release_affinity(agent, now)  # calls waiting for them go to everyone

    # == leaving the queue =============================================================

    def _leave_queue(self, call: Call, outcome: Outcome, now: float, reason: str) -> None:
        """A waiting or ringing call leaves the centre without reaching an agent (again)."""
        res = call.reservation
        if res is not None:
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=call.id, agent_id=res.agent.id)
            )
            self._withdraw_offer(res, Trigger.CANCEL, now)
        self._unwait(call)
        call.queue.size -= 1
        call.queue.reneging.left_queue(now - call.entered_queue_at, gave_up=True)
        if call.connected_at is not None:
            # Answered, then sent back to a queue by a transfer: it reached an agent,
            # and a call has one outcome (KPIS.md counts it answered, once).
            outcome = Outcome.ANSWERED
        self._end_call(call, outcome, now, reason)

    def _end_call(self, call: Call, outcome: Outcome, now: float, reason: str) -> None:
        call.cancel_timers()
        call.ended_at = now
        del self._calls[call.id]
        self._call_event(call, Trigger.LEAVE, now, outcome=outcome, reason=reason)

    def _send_to_site(self, call: Call, site: str, now: float, reason: str) -> None:
        self._actions.append(TransferToSite(call_id=call.id, site=site, reason=reason))
        if call.state in IN_QUEUE:
            self._leave_queue(call, Outcome.OVERFLOWED, now, reason)
        else:
            self._end_call(call, Outcome.OVERFLOWED, now, reason)

    # == defined by a later layer ======================================================

    def _answer_consult(self, res: Reservation, now: float) -> None:
        """The consulted agent answered the consultation offered to them (acd.transfers)."""
        raise NotImplementedError

    def _withdraw_consult(self, res: Reservation, trigger: Trigger, now: float) -> None:
        """End a consultation's offer that was not answered (acd.transfers)."""
        raise NotImplementedError

    def _arm_queue_timers(self, call: Call, now: float) -> None:
        """Arm the timers of a call's first wait in its queue (acd.waiting)."""
        raise NotImplementedError

    def _review(self, call: Call, now: float) -> None:
        """Estimate the caller's wait; overflow on it, or announce it (acd.waiting)."""
        raise NotImplementedError

    def _arm_wait_limit(self, call: Call, now: float, retry_at: float | None = None) -> None:
        """Arm the earliest wait-over overflow rule still possible (acd.waiting)."""
        raise NotImplementedError
