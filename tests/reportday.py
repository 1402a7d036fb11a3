"""The fixture day of the report tests: literal events, and every answer worked out by hand.

Tuesday 1 December 2026, Europe/Paris (UTC+1). ``T0`` is 09:00 local; every
time below is in seconds after it. The report covers 09:00-10:30: three half
hours, I1 [0, 1800), I2 [1800, 3600), I3 [3600, 5400). Queues: sales (X = 20 s)
and support (X = 30 s). Short abandons: under 10 s. FCR window: one hour.
Agents: a1 (team blue), a2 (blue and green), a3 (green).

Calls, by arrival:

  c0  -100 sales, answered by a2 at -90, ends 30, wrap-up 30-40: arrived
      before the range, so in no queue row; a2's time from 0 counts.
  c1    60 sales (cust-1): offered a1 65, answered 70 (wait 10, ring 5),
      held 100-130, ends 190 (talk 30 + 60 = 90, hold 30), wrap-up 190-220,
      resolved. Nobody else from cust-1: first-call resolved.
  c2   120 sales (cust-2): answered by a2 at 150 (wait 30, ring 0), ends 270
      (talk 120), wrap-up 270-300, disposition "resolved"; but cust-2 calls
      again at 1000 (c5), within the hour: not first-call resolved.
  c3   200 sales: hangs up at 205, waited 5 s: a short abandon.
  c4   300 sales: hangs up at 340, waited 40 s: abandoned.
  c5  1000 support (cust-2): offered a1 1010, answered 1015 (wait 15, ring 5);
      a1 transfers it blind to sales at 1100 (talk 85) and is idle at once;
      a2 is offered it at 1100 and answers 1105; it ends 1200 (talk 95),
      wrap-up 1200-1210, not resolved. It ended in sales: a sales call,
      answered once, wait 15 (<= 20), talk 180, wrap-up 10, transferred blind.
  c6  1500 sales: blocked (never queued).
  c7  1700 sales: sent to the backup site at 1790 after 90 s: overflowed.
  c8  1900 support (cust-3): offered a3 at once (not placed in queue),
      answered 1904 (wait 4, ring 4); a3 consults a2 at 2000 (caller held,
      a3 held), a2 answers the consultation at 2005, takes the caller over at
      2060 (warm transfer by a3; a3 idle), ends 2200 (talk 96 + 140 = 236,
      hold 60), a2's wrap-up 2200-2260, resolved: first-call resolved.
  c9  2500 sales: hangs up at 2530, waited 30 s: abandoned.
  c10 2700 sales: offered a1 2740, answered 2745 (wait 45, ring 5), ends 3700
      (talk 955), wrap-up 3700-3720 with no disposition (timed out).
  c11 5390 sales: still waiting when the data ends: in progress.

Agents: a1 ready from 0 to the end; a2 ready from -200; a3 ready from 1800,
logged out at 4000.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from acd.events import AgentStateChanged, CallStateChanged, Event
from acd.ids import AgentId, CallId, CustomerId, QueueId
from acd.states import AgentState, AgentStatus, CallState, Outcome

ZONE = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=ZONE).timestamp()
SINCE, UNTIL = T0, T0 + 5400
SL_SECONDS = {QueueId("sales"): 20.0, QueueId("support"): 30.0}
SHORT_ABANDON_SECONDS = 10.0
FCR_WINDOW_SECONDS = 3600.0
TEAMS = {
    AgentId("a1"): frozenset({"blue"}),
    AgentId("a2"): frozenset({"blue", "green"}),
    AgentId("a3"): frozenset({"green"}),
}
CUSTOMERS = {"c1": "cust-1", "c2": "cust-2", "c5": "cust-2", "c8": "cust-3"}

C = CallState
A = AgentState
S = AgentStatus


class Day:
    """Writes the events an engine would, remembering each call's and agent's last state."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.calls: dict[str, tuple[CallState, str, str | None]] = {}
        self.agents: dict[str, tuple[AgentStatus, AgentState]] = {}

    def call(
        self,
        t: float,
        call_id: str,
        to: CallState,
        *,
        queue: str | None = None,
        outcome: Outcome | None = None,
        agent: str | None = None,
        reason: str | None = None,
    ) -> Day:
        previous = self.calls.get(call_id)
        queue = queue or (previous[1] if previous else "sales")
        customer = CUSTOMERS.get(call_id) if previous is None else None
        self.events.append(
            CallStateChanged(
                seq=len(self.events) + 1,
                at=T0 + t,
                call_id=CallId(call_id),
                queue_id=QueueId(queue),
                from_state=previous[0] if previous else None,
                to_state=to,
                outcome=outcome,
                agent_id=AgentId(agent) if agent else None,
                reason=reason,
                customer_id=CustomerId(customer) if customer else None,
            )
        )
        self.calls[call_id] = (to, queue, agent)
        return self

    def agent(
        self,
        t: float,
        agent_id: str,
        *,
        status: AgentStatus | None = None,
        state: AgentState | None = None,
        call: str | None = None,
        reason: str | None = None,
        disposition: str | None = None,
        resolved: bool | None = None,
    ) -> Day:
        old_status, old_state = self.agents.get(agent_id, (None, None))
        new = (status or old_status or S.LOGGED_OUT, state or old_state or A.IDLE)
        self.events.append(
            AgentStateChanged(
                seq=len(self.events) + 1,
                at=T0 + t,
                agent_id=AgentId(agent_id),
                from_status=old_status,
                to_status=new[0],
                from_state=old_state,
                to_state=new[1],
                reason=reason,
                call_id=CallId(call) if call else None,
                disposition=disposition,
                resolved=resolved,
            )
        )
        self.agents[agent_id] = new
        return self

    def ready(self, t: float, agent: str) -> Day:
        self.agent(t, agent, status=S.LOGGED_OUT, state=A.IDLE)
        self.agent(t, agent, status=S.NOT_READY)
        return self.agent(t, agent, status=S.READY)

    def arrive(self, t: float, call_id: str, queue: str = "sales") -> Day:
        return self.call(t, call_id, C.ARRIVED, queue=queue).call(t, call_id, C.QUEUED)

    def offer(self, t: float, call_id: str, agent: str) -> Day:
        self.call(t, call_id, C.OFFERED, agent=agent)
        return self.agent(t, agent, state=A.RESERVED, call=call_id)

    def answer(self, t: float, call_id: str, agent: str) -> Day:
        self.call(t, call_id, C.CONNECTED, agent=agent)
        return self.agent(t, agent, state=A.TALKING, call=call_id)

    def hold(self, t: float, call_id: str, agent: str, reason: str | None = None) -> Day:
        self.call(t, call_id, C.HELD, agent=agent, reason=reason)
        return self.agent(t, agent, state=A.HELD, call=call_id, reason=reason)

    def retrieve(self, t: float, call_id: str, agent: str) -> Day:
        self.call(t, call_id, C.CONNECTED, agent=agent)
        return self.agent(t, agent, state=A.TALKING, call=call_id)

    def end(self, t: float, call_id: str, agent: str) -> Day:
        self.call(t, call_id, C.ENDED, outcome=Outcome.ANSWERED, agent=agent)
        return self.agent(t, agent, state=A.WRAP_UP, call=call_id)

    def wrap_up(
        self, t: float, call_id: str, agent: str, *, disposition: str | None = None,
        resolved: bool | None = None,
    ) -> Day:  # fmt: skip
        return self.agent(
            t, agent, state=A.IDLE, call=call_id, disposition=disposition, resolved=resolved
        )

    def leave(self, t: float, call_id: str, outcome: Outcome) -> Day:
        return self.call(t, call_id, C.ENDED, outcome=outcome)


def fixture_day() -> list[Event]:
    d = Day()
    d.ready(-200, "a2")
    d.arrive(-100, "c0").offer(-95, "c0", "a2").answer(-90, "c0", "a2")
    d.ready(0, "a1")
    d.end(30, "c0", "a2").wrap_up(40, "c0", "a2")
    d.arrive(60, "c1").offer(65, "c1", "a1").answer(70, "c1", "a1")
    d.hold(100, "c1", "a1").retrieve(130, "c1", "a1")
    d.arrive(120, "c2").offer(150, "c2", "a2").answer(150, "c2", "a2")
    d.end(190, "c1", "a1")
    d.arrive(200, "c3").leave(205, "c3", Outcome.SHORT_ABANDONED)
    d.wrap_up(220, "c1", "a1", resolved=True)
    d.end(270, "c2", "a2")
    d.wrap_up(300, "c2", "a2", disposition="resolved")
    d.arrive(300, "c4").leave(340, "c4", Outcome.ABANDONED)
    d.arrive(1000, "c5", "support").offer(1010, "c5", "a1").answer(1015, "c5", "a1")
    d.call(1100, "c5", C.QUEUED, queue="sales", reason="blind_transfer")
    d.agent(1100, "a1", state=A.IDLE, call="c5", reason="blind_transfer")
    d.offer(1100, "c5", "a2").answer(1105, "c5", "a2")
    d.end(1200, "c5", "a2").wrap_up(1210, "c5", "a2", resolved=False)
    d.call(1500, "c6", C.ARRIVED).leave(1500, "c6", Outcome.BLOCKED)
    d.arrive(1700, "c7").leave(1790, "c7", Outcome.OVERFLOWED)
    d.ready(1800, "a3")
    d.arrive(1900, "c8", "support").offer(1900, "c8", "a3").answer(1904, "c8", "a3")
    d.hold(2000, "c8", "a3", reason="consult")
    d.agent(2000, "a2", state=A.RESERVED, call="c8", reason="consult")
    d.agent(2005, "a2", state=A.TALKING, call="c8", reason="consult")
    d.call(2060, "c8", C.CONNECTED, agent="a2", reason="consult_transfer")
    d.agent(2060, "a3", state=A.IDLE, call="c8", reason="consult_transfer")
    d.end(2200, "c8", "a2").wrap_up(2260, "c8", "a2", resolved=True)
    d.arrive(2500, "c9").leave(2530, "c9", Outcome.ABANDONED)
    d.arrive(2700, "c10").offer(2740, "c10", "a1").answer(2745, "c10", "a1")
    d.end(3700, "c10", "a1").wrap_up(3720, "c10", "a1")
    d.agent(4000, "a3", status=S.LOGGED_OUT)
    d.arrive(5390, "c11")
    in_time = sorted(d.events, key=lambda e: (e.at, e.seq))  # as they happened
    return [replace(event, seq=seq) for seq, event in enumerate(in_time, 1)]
