"""Transfers and consultations: a connected caller sent on, blind or after a word with a colleague.

Theory of operation. An agent's part in a call is their *leg*, from their
answer to the end of their wrap-up (``Agent.call``, ``leg_started_at``,
``leg_queue``); ``_end_leg`` ends it as a hang-up does: wrap-up when the queue
they served has it, else idle, with the leg's handle time counted in that
queue. Legs end without the call ending when the caller moves on:

* A *blind transfer* (``CallTransferred``) sends a connected or held caller
  to a queue, or to one ready and idle agent, at once. The call goes back to
  QUEUED (``Trigger.TRANSFER``, reason ``blind_transfer``, in the target
  queue) for a fresh wait: enqueued now, with the target queue's priority,
  relaxation, overflow and announcements, as if it had just arrived, except
  that affinity never offers it back to the agent who sent it away (plain
  routing may, as for a rejected call, if they serve that queue and are the
  first one free). To a queue, it is routed as usual; to an agent, it is
  offered to them (the queue's ring timeout) and, if they don't answer,
  routed in its queue. A target queue that is full (or would block the call
  unstaffed) refuses the transfer instead of losing the caller; disaster mode
  does not apply (the caller is in the centre already). The transferring
  agent's leg ends.
* A *consultation* (``ConsultStarted``) puts the caller on hold and rings a
  second agent with a reservation of its own (``Reservation.consult``): the
  call keeps its agent and stays HELD, and neither answer nor refusal sends
  it anywhere. Answered, the two agents talk. From there the consulting
  agent hands the caller over (``TransferCompleted``: the consulted agent
  becomes the call's agent, ``Trigger.HAND_OVER``, reason
  ``consult_transfer``, and the consulting agent's leg ends), brings the
  caller in (``ConferenceStarted``: the call is CONNECTED to both, reason
  ``conference``; a hold by its main agent turns it back into a
  consultation), or gives up (``ConsultCancelled``: the consulted agent is
  idle again, no wrap-up, reason ``consult_cancelled``). Either agent leaves a
  conference with ``AgentLeftConference``: the main agent's leaving hands the
  caller over (reason ``conference_transfer``), the consulted agent's ends
  their leg (reason ``conference_left``). A hang-up ends the call and every
  leg (``_end_consult``).

A consultation's state (``ConsultState``) moves only through
``CONSULT_TRANSITIONS``; it has no events of its own, as each move comes with
the reservation, agent or call event that reports it. An agent who takes a
caller over by a warm transfer counts as answering them: their calls
answered, the customer's last agent, and a ``ConnectCall``.
"""

from __future__ import annotations

from acd.actions import ConnectCall, OfferCall, RetractOffer
from acd.agents import Agent
from acd.calls import Call
from acd.commands import (
    AgentLeftConference,
    CallTransferred,
    ConferenceStarted,
    ConsultCancelled,
    ConsultStarted,
    TransferCompleted,
)
from acd.consults import Consult
from acd.errors import CommandRejected
from acd.ids import AgentId, ReservationId
from acd.offers import Reservation
from acd.states import (
    CONSULT_TRANSITIONS,
    AgentStatus,
    CallState,
    ConsultState,
    Trigger,
    next_state,
)
from acd.timers import TimerKind
from acd.waiting import Waiting

_TALKING = frozenset({CallState.CONNECTED, CallState.HELD})


class Transfers(Waiting):
    """Blind transfers, consultations and conferences; the end of an agent's leg."""

    # == legs ==========================================================================

    def _end_leg(self, agent: Agent, now: float, reason: str | None) -> None:
        """The agent's part in their call ends as on a hang-up: wrap-up if the queue
        they served has it, else idle (the call itself may live on)."""
        call, queue = agent.call, agent.leg_queue
        assert call is not None and queue is not None
        wrap = queue.config.wrap_up_seconds
        if wrap > 0:
            agent.wrap_up_timer = self._timers.set(now + wrap, TimerKind.WRAP_UP_END, agent)
            self._agent_event(agent, now, state=Trigger.END, reason=reason, call_id=call.id)
        else:
            queue.aht.add(now - agent.leg_started_at)
            agent.call = None
            self._agent_event(
                agent, now, state=Trigger.END_WITHOUT_WRAP_UP, reason=reason, call_id=call.id
            )

    def _drop_consulted(self, agent: Agent, now: float, reason: str) -> None:
        """A consulted agent who never had the caller leaves: idle, no wrap-up, no handle time."""
        call = agent.call
        assert call is not None
        agent.call = None
        self._agent_event(
            agent, now, state=Trigger.END_WITHOUT_WRAP_UP, reason=reason, call_id=call.id
        )

    def _hand_over(self, call: Call, agent: Agent, now: float, reason: str) -> None:
        """The consulted agent takes the caller over, as if they had answered them."""
        call.agent = agent
        agent.calls_answered += 1
        if call.customer_id is not None:
            self._last_agent[call.customer_id] = agent.id
        self._call_event(call, Trigger.HAND_OVER, now, reason=reason)

    # == blind transfer ================================================================

    def _call_transferred(self, cmd: CallTransferred, now: float) -> None:
        if (cmd.queue_id is None) == (cmd.agent_id is None):
            raise CommandRejected("bad_target", "a transfer names exactly one queue or one agent")
        call = self._require_call(cmd.call_id)
        agent = self._require_own_agent(call)
        target: Agent | None = None
        if cmd.queue_id is not None:
            queue = self._require_queue(cmd.queue_id)
            refusal = self._refusal(call, queue)
            if refusal is not None:  # refused, rather than lose the caller
                raise CommandRejected(
                    refusal[0], f"queue {queue.id} can't take call {call.id}: {refusal[0]}"
                )
        else:
            assert cmd.agent_id is not None
            queue = call.queue
            target = self._require_free_agent(cmd.agent_id, agent)
        # A fresh wait: the timers, overflow targets and announcements start over.
        call.enqueued_at = now
        call.visited = set()
        call.armed = False
        call.announced_ewt = None
        call.transferred_by = agent
        call.transfer_note = cmd.note
        self._place(call, queue, now, Trigger.TRANSFER, "blind_transfer")  # says who sent it
        call.agent = None
        self._end_leg(agent, now, "blind_transfer")
        if target is None:
            self._route(call, now, affinity=True)
        else:
            self._offer(call, target, now)

    # == consultation: start, answer, no answer ========================================

    def _consult_started(self, cmd: ConsultStarted, now: float) -> None:
        call = self._require_call(cmd.call_id)
        agent = self._require_own_agent(call)
        target = self._require_free_agent(cmd.agent_id, agent)
        if call.state is CallState.CONNECTED:
            self._call_event(call, Trigger.HOLD, now, reason="consult")
            self._agent_event(agent, now, state=Trigger.HOLD, reason="consult", call_id=call.id)
        consult = Consult(call, agent, target)
        deadline = now + call.queue.config.ring_timeout_seconds
        rid = ReservationId(f"r{next(self._offer_order)}")
        res = Reservation(rid, call, target, now, deadline, consult)
        res.timer = self._timers.set(deadline, TimerKind.RING_TIMEOUT, res)
        consult.reservation = res
        call.consult = consult
        target.consult = consult
        target.reservation = res
        self._reservation_event(res, None, now)
        self._agent_event(target, now, state=Trigger.OFFER, reason="consult", call_id=call.id)
        self._actions.append(
            OfferCall(
                reservation_id=res.id,
                call_id=call.id,
                agent_id=target.id,
                deadline=deadline,
                consult_from=agent.id,
            )
        )

    def _answer_consult(self, res: Reservation, now: float) -> None:
        consult, call, agent = res.consult, res.call, res.agent
        assert consult is not None and res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        consult.reservation = None
        self._reservation_event(res, Trigger.ACCEPT, now)
        self._move_consult(consult, Trigger.ACCEPT)
        agent.call = call
        agent.leg_started_at = now
        agent.leg_queue = call.queue
        agent.misses = 0
        self._agent_event(agent, now, state=Trigger.ACCEPT, reason="consult", call_id=call.id)

    def _withdraw_consult(self, res: Reservation, trigger: Trigger, now: float) -> None:
        """Rejected, rung out, cancelled or the phone lost: the consultation is over, the
        caller stays on hold with their agent."""
        consult, call, agent = res.consult, res.call, res.agent
        assert consult is not None and res.timer is not None
        res.timer.cancel()
        agent.reservation = None
        consult.reservation = None
        agent.last_missed_call = call.id  # a late answer is refused as expired
        self._reservation_event(res, trigger, now)
        self._move_consult(consult, trigger)
        self._free_offered_agent(res, trigger, now)

    # == consultation: cancel, hand over, conference ===================================

    def _consult_cancelled(self, cmd: ConsultCancelled, now: float) -> None:
        call = self._require_call(cmd.call_id)
        consult = self._require_consult(call, ConsultState.RINGING, ConsultState.TALKING)
        if consult.state is ConsultState.RINGING:
            res = consult.reservation
            assert res is not None
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=call.id, agent_id=res.agent.id)
            )
            self._withdraw_consult(res, Trigger.CANCEL, now)
        else:
            self._move_consult(consult, Trigger.CANCEL)
            self._drop_consulted(consult.agent, now, "consult_cancelled")

    def _transfer_completed(self, cmd: TransferCompleted, now: float) -> None:
        call = self._require_call(cmd.call_id)
        consult = self._require_consult(call, ConsultState.TALKING)
        agent = consult.by
        self._move_consult(consult, Trigger.HAND_OVER)
        self._hand_over(call, consult.agent, now, "consult_transfer")
        self._actions.append(ConnectCall(call_id=call.id, agent_id=consult.agent.id))
        self._end_leg(agent, now, "consult_transfer")

    def _conference_started(self, cmd: ConferenceStarted, now: float) -> None:
        call = self._require_call(cmd.call_id)
        consult = self._require_consult(call, ConsultState.TALKING)
        self._move_consult(consult, Trigger.CONFERENCE)
        self._call_event(call, Trigger.CONFERENCE, now, reason="conference")
        self._agent_event(
            consult.by, now, state=Trigger.RETRIEVE, reason="conference", call_id=call.id
        )

    def _agent_left_conference(self, cmd: AgentLeftConference, now: float) -> None:
        agent = self._require_agent(cmd.agent_id)
        consult = agent.consult
        call = agent.call
        if consult is None and call is not None and call.agent is agent:
            consult = call.consult
        if consult is None or consult.state is not ConsultState.CONFERENCED:
            raise CommandRejected(
                "no_conference", f"agent {agent.id} is in no conference", agent.state.value
            )
        if agent is consult.by:  # the main agent: the other one keeps the caller
            self._move_consult(consult, Trigger.HAND_OVER)
            self._hand_over(consult.call, consult.agent, now, "conference_transfer")
            self._end_leg(agent, now, "conference_transfer")
        else:
            self._move_consult(consult, Trigger.LEAVE)
            self._end_leg(agent, now, "conference_left")

    def _end_consult(self, consult: Consult, now: float, reason: str) -> None:
        """The call ended during a consultation: its consulted agent's part ends too."""
        if consult.state is ConsultState.RINGING:
            res = consult.reservation
            assert res is not None
            self._actions.append(
                RetractOffer(reservation_id=res.id, call_id=res.call.id, agent_id=res.agent.id)
            )
            self._withdraw_consult(res, Trigger.CANCEL, now)
            return
        conferenced = consult.state is ConsultState.CONFERENCED
        self._move_consult(consult, Trigger.END)
        if conferenced:  # they talked with the caller: a leg like any other
            self._end_leg(consult.agent, now, reason)
        else:
            self._drop_consulted(consult.agent, now, reason)

    def _move_consult(self, consult: Consult, trigger: Trigger) -> None:
        consult.state = next_state(CONSULT_TRANSITIONS, consult.state, trigger)
        if consult.state is ConsultState.ENDED:
            consult.call.consult = None
            consult.agent.consult = None

    # == look-ups that refuse politely =================================================

    def _require_own_agent(self, call: Call) -> Agent:
        """The agent of a connected or held call, free to send it on or consult about it."""
        if call.state not in _TALKING:
            raise CommandRejected(
                "wrong_state", f"call {call.id} is not connected", call.state.value
            )
        if call.consult is not None:
            raise CommandRejected(
                "consult_in_progress",
                f"call {call.id} has a consultation in progress",
                call.consult.state.value,
            )
        agent = call.agent
        assert agent is not None
        return agent

    def _require_free_agent(self, agent_id: AgentId, not_agent: Agent) -> Agent:
        """A ready, idle agent other than ``not_agent``; the refusal names their status
        when they aren't ready, else their state."""
        agent = self._agents.get(agent_id)
        if agent is None:
            raise CommandRejected("agent_unavailable", f"no agent {agent_id}")
        if agent is not_agent or not agent.available:
            state = agent.state if agent.status is AgentStatus.READY else agent.status
            raise CommandRejected(
                "agent_unavailable", f"agent {agent_id} can't take a call now", state.value
            )
        return agent

    def _require_consult(self, call: Call, *states: ConsultState) -> Consult:
        consult = call.consult
        if consult is None:
            raise CommandRejected(
                "no_consult", f"call {call.id} has no consultation", call.state.value
            )
        if consult.state not in states:
            raise CommandRejected(
                "wrong_state",
                f"the consultation about call {call.id} is {consult.state.value}",
                consult.state.value,
            )
        return consult
