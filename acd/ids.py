"""Typed identifiers, so an agent id can never be passed where a call id is wanted."""

from typing import NewType

AgentId = NewType("AgentId", str)
CallId = NewType("CallId", str)
QueueId = NewType("QueueId", str)
ReservationId = NewType("ReservationId", str)
CustomerId = NewType("CustomerId", str)
Skill = NewType("Skill", str)
Language = NewType("Language", str)
