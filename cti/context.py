"""What the centre knows about a call beyond routing: who is calling and why.

The routing core needs only the call's requirements; the desktop's screen pop,
the contact record and transfers need the caller's number, the number dialled,
the customer found for them and the data the IVR or an integration attached.
The runtime keeps one ``CallContext`` per live call and records it in the
event log's contact rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from acd.ids import CallId, CustomerId, QueueId

_NO_DATA: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOpened:
    """A call reached the centre with this context (recorded before its first event)."""

    call_id: CallId
    queue_id: QueueId
    at: float
    ani: str = ""
    dnis: str = ""
    customer_id: CustomerId | None = None
    data: Mapping[str, str] = field(default_factory=lambda: _NO_DATA)
