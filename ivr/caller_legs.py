"""A caller's leg: the INVITE we answered, its media, and where the caller is in their call.

Theory of operation. A caller's leg is born when we answer their INVITE
(``ANSWERED``: a dialog, a ``MediaLeg``, our SDP sent). With an IVR entry it
runs a ``FlowRun`` (``IN_FLOW``) until the flow hands the call to a queue or
hangs up; with a queue entry it goes straight to ``QUEUED``, where it hears
music on hold and the core's announcements. ``ConnectCall`` bridges it to
the agent's leg (``BRIDGED``); a blind transfer sends it back (``QUEUED``).
A queued caller offered a callback who presses 1 goes to the flow's
``queue_callback`` node (``CALLBACK_MENU``), still in the queue; once they
confirm a number the core has a callback task and the caller only hears the
thanks (``CALLBACK_BOOKED``); an agent who answers meanwhile is bridged from
either. In redirect mode a caller dialling a queue is handed to the core
before we answer (``RINGING``: 180 sent) and answered once the core keeps it.
A caller the core sends to another site is ``AWAY`` (``ivr.site_calls``
carries it). It ends once (``ENDED``): the caller's BYE, our BYE, a 2xx never
acknowledged, or our refusal of a ringing caller (302, 486). ``CALLER_TRANSITIONS`` is the whole
machine; an input it does not list is a bug and raises.

The record holds no I/O of its own: ``ivr.calls`` and its parts
(``ivr.answering``, ``ivr.caller_flows``, ``ivr.connections``,
``ivr.transfers``) drive the media and the SIP messages and move the state
here. ``Callers`` holds the legs, by dialog and by call.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from acd.ids import CallId, Language
from ivr.flows import FlowRun
from ivr.media import Bridge, MediaLeg, Playback
from ivr.sip.dialogs import Dialog, DialogId
from ivr.sip.transaction_outputs import Peer


class CallerState(Enum):
    __hash__ = object.__hash__

    RINGING = "ringing"  # handed to the core before we answer (redirect mode): 180 sent
    ANSWERED = "answered"  # our 2xx is out; what comes next is not chosen yet
    IN_FLOW = "in_flow"  # the IVR flow runs
    QUEUED = "queued"  # handed to the core: music on hold, announcements
    CALLBACK_MENU = "callback_menu"  # queued, and in the flow's callback node
    CALLBACK_BOOKED = "callback_booked"  # a callback is requested: thanks, then goodbye
    BRIDGED = "bridged"  # talking to an agent's phone
    AWAY = "away"  # sent to another site: the core is done with it (ivr.site_calls)
    ENDED = "ended"


class CallerInput(Enum):
    __hash__ = object.__hash__

    FLOW_STARTED = "flow_started"
    QUEUE_ENTERED = "queue_entered"
    PICKED_UP = "picked_up"  # a ringing caller the core kept is answered
    CONNECTED = "connected"
    REQUEUED = "requeued"  # a blind transfer sent them back to a queue
    SENT_AWAY = "sent_away"
    CALLBACK_CHOSEN = "callback_chosen"  # pressed 1 when offered a callback
    CALLBACK_REQUESTED = "callback_requested"  # confirmed the number in the callback menu
    ENDED = "ended"


S, In = CallerState, CallerInput
CALLER_TRANSITIONS: Mapping[tuple[CallerState, CallerInput], CallerState] = MappingProxyType(
    {
        (S.ANSWERED, In.FLOW_STARTED): S.IN_FLOW,
        (S.ANSWERED, In.QUEUE_ENTERED): S.QUEUED,
        (S.IN_FLOW, In.QUEUE_ENTERED): S.QUEUED,
        (S.RINGING, In.PICKED_UP): S.QUEUED,
        (S.QUEUED, In.CONNECTED): S.BRIDGED,
        (S.BRIDGED, In.REQUEUED): S.QUEUED,
        (S.QUEUED, In.SENT_AWAY): S.AWAY,
        (S.QUEUED, In.CALLBACK_CHOSEN): S.CALLBACK_MENU,
        (S.CALLBACK_MENU, In.QUEUE_ENTERED): S.QUEUED,  # the menu fell back to a queue node
        (S.CALLBACK_MENU, In.CONNECTED): S.BRIDGED,
        (S.CALLBACK_MENU, In.SENT_AWAY): S.AWAY,  # overflowed while in the menu
        (S.CALLBACK_MENU, In.CALLBACK_REQUESTED): S.CALLBACK_BOOKED,
        (S.CALLBACK_BOOKED, In.CONNECTED): S.BRIDGED,  # an agent answered before the request
        **{(state, In.ENDED): S.ENDED for state in CallerState if state is not S.ENDED},
    }
)
del S, In

# The caller states in which their ``FlowRun`` runs: the IVR, and the callback menu
# a queued caller reaches by pressing 1 (until the goodbye).
IN_A_FLOW = frozenset({CallerState.IN_FLOW, CallerState.CALLBACK_MENU, CallerState.CALLBACK_BOOKED})
# The caller states in which an agent may be connected to them: waiting in a queue.
WAITING = frozenset({CallerState.QUEUED, CallerState.CALLBACK_MENU, CallerState.CALLBACK_BOOKED})


class CallerLeg:
    """One caller's SIP dialog and media, and the state of their call on our side."""

    __slots__ = (
        "ani",
        "bridge",
        "call_id",
        "callback_offered",
        "dialog",
        "dnis",
        "flow",
        "in_core",
        "language",
        "media",
        "peer",
        "play_id",
        "playback",
        "played",
        "state",
    )

    def __init__(
        self,
        *,
        call_id: CallId,
        dialog: Dialog,
        media: MediaLeg,
        peer: Peer,
        ani: str,
        dnis: str,
        language: Language,
        state: CallerState = CallerState.ANSWERED,
    ) -> None:
        self.call_id = call_id
        self.dialog = dialog
        self.media = media
        self.peer = peer  # where the INVITE came from: our requests go there (RFC 3581)
        self.ani = ani
        self.dnis = dnis
        self.language = language
        self.state = state  # RINGING only for a caller handed to the core before answering
        self.flow: FlowRun | None = None
        self.in_core = False  # CallArrived sent: the core owns the call's fate
        self.callback_offered = False  # the last announcement offered a callback
        self.playback: Playback | None = None
        self.play_id: int | None = None  # the flow's id of what plays, if the flow asked
        self.played: list[tuple[str, ...]] = []  # every prompt list played, for tests and logs
        self.bridge: Bridge | None = None

    def move(self, given: CallerInput) -> CallerState:
        try:
            self.state = CALLER_TRANSITIONS[(self.state, given)]
        except KeyError:
            raise AssertionError(f"{given.value} for a caller {self.state.value}") from None
        return self.state

    def __repr__(self) -> str:
        return f"CallerLeg({self.call_id}, {self.state.value})"


class Callers:
    """The callers' legs we hold: by dialog for the network's requests, by call for the core's."""

    __slots__ = ("_by_call", "_by_dialog")

    def __init__(self) -> None:
        self._by_dialog: dict[DialogId, CallerLeg] = {}
        self._by_call: dict[CallId, CallerLeg] = {}

    def add(self, caller: CallerLeg) -> None:
        self._by_dialog[caller.dialog.id] = caller
        self._by_call[caller.call_id] = caller

    def remove(self, caller: CallerLeg) -> None:
        self._by_dialog.pop(caller.dialog.id, None)
        self._by_call.pop(caller.call_id, None)

    def get(self, call_id: CallId) -> CallerLeg | None:
        return self._by_call.get(call_id)

    def by_dialog(self, dialog: DialogId) -> CallerLeg | None:
        return self._by_dialog.get(dialog)

    def all(self) -> list[CallerLeg]:
        return list(self._by_dialog.values())
