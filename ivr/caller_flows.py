"""What a caller hears and keys in: the IVR flow's actions, prompts, music on hold, voicemail.

Theory of operation. ``CallerFlows`` carries out, for the callers ``ivr.calls``
holds, what their ``FlowRun`` asks (``actions``: prompts, a queue, a callback,
a recording, a hang-up) and feeds the flow what happens (``digit``, a prompt
played out, a recording's end, its timers through ``advance``); a key comes
by RTP (RFC 4733) or in an INFO (``relayed_digit``). A queued caller hears
music on hold (``hold``) and the core's announcements (``announce``);
entering a queue hands the caller to the core (``hand_to_core``: a
``QueueEntry`` for ``report``).

Voicemail (``ivr.messages``): the flow's ``StartRecording`` records the
caller's leg to a file under the voicemail directory until ``#``, the
node's limit or the caller's hang-up, whichever is first; the file goes back
to the flow (``recording_finished``), whose ``KeepMessage`` becomes a
``MessageLeft`` for the server to file, even when the caller has gone.
Without a directory a voicemail node hangs up.

Callbacks: a queued caller whose last announcement offered a callback and
who presses 1 runs the flow's ``queue_callback`` node while still queued
(``CallerState.CALLBACK_MENU``); their confirmed number is ``CallbackRequested``
for the core, and they hear the goodbye without a ``CallerHungUp``. From the
IVR menu, ``RequestCallback`` is a ``QueueEntry`` with ``callback_number``.
Calling the customer back is ``ivr.calling_back``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from acd.actions import PlayAnnouncement
from acd.commands import CallbackRequested, CallerHungUp
from acd.ids import Language, QueueId, Skill
from ivr.announcements import prompts_for
from ivr.caller_legs import IN_A_FLOW, CallerInput, CallerLeg, Callers, CallerState
from ivr.calling_back import CallingBack
from ivr.flow_config import Flow
from ivr.flows import (
    EnterQueue,
    FlowAction,
    FlowRun,
    Hangup,
    KeepMessage,
    PlayPrompts,
    RequestCallback,
    StartRecording,
    StopPlayback,
)
from ivr.media import Playback, PlaybackResult, Player, RecordingResult
from ivr.media.leg import PlaybackEnd
from ivr.messages import STOP_KEY, Messages
from ivr.notices_and_jobs import Notice, QueueEntry
from ivr.rtp.dtmf import KeyPressed
from ivr.sip.message import Request

log = logging.getLogger(__name__)

DTMF_RELAY = "application/dtmf-relay"


class CallerFlows:
    """The callers' side of the IVR: their flows' actions, their prompts and music, their keys."""

    def __init__(
        self,
        *,
        flow: Flow | None,
        player: Player,
        messages: Messages | None,
        calling_back: CallingBack,
        callers: Callers,
        report: Callable[[Notice], None],
        hang_up: Callable[[CallerLeg], None],
        wake: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self.flow = flow
        self._player = player
        self._messages = messages
        self._calling_back = calling_back
        self._callers = callers
        self._report = report
        self._hang_up_caller = hang_up
        self._wake = wake
        self._clock = clock

    def _now(self) -> float:
        return self._clock()

    # == the IVR flow ===================================================================

    def start(self, caller: CallerLeg, start_node: str, now: float) -> None:
        """An answered caller dialled a flow entry point: the flow runs from ``start_node``."""
        assert self.flow is not None
        run = FlowRun(self.flow, start_node=start_node, ani=caller.ani)
        caller.flow = run
        caller.move(CallerInput.FLOW_STARTED)
        self.actions(caller, run.start(now))

    def actions(self, caller: CallerLeg, actions: list[FlowAction]) -> None:
        for action in actions:
            if isinstance(action, KeepMessage):  # filed even when the caller has hung up
                self._keep_message(caller, action)
                continue
            if caller.state is CallerState.ENDED:
                return
            if isinstance(action, PlayPrompts):
                self._play(caller, action.prompts, barge_in=action.interruptible)
                caller.play_id = action.play_id
            elif isinstance(action, StopPlayback):
                if caller.playback is not None and caller.play_id == action.play_id:
                    caller.play_id = None
                    caller.playback.stop()
            elif isinstance(action, EnterQueue) and caller.state is CallerState.CALLBACK_MENU:
                caller.flow = None  # (the menu's fallback): back to waiting, in the same place
                caller.move(CallerInput.QUEUE_ENTERED)
                self.hold(caller)
            elif isinstance(action, EnterQueue):
                caller.language = action.language
                self.enter_queue(
                    caller,
                    action.queue_id,
                    language=action.language,
                    data=action.data,
                    skills=action.skills,
                    priority=action.priority,
                )
            elif isinstance(action, RequestCallback):
                self._request_callback(caller, action)
            elif isinstance(action, Hangup):
                log.info(
                    "call %s: the flow hangs up (%s)",
                    caller.call_id,
                    action.reason,
                    extra={"call_id": caller.call_id},
                )
                if caller.in_core and caller.state is CallerState.CALLBACK_MENU:
                    # Left the callback menu without a number: the caller is gone.
                    self._report(CallerHungUp(call_id=caller.call_id))
                self._hang_up_caller(caller)
            elif isinstance(action, StartRecording):
                self._record(caller, action.max_seconds)
        self._wake()  # the flow may have armed a timer

    def key_pressed(self, caller: CallerLeg, key: KeyPressed) -> None:
        self.digit(caller, key.digit)

    def digit(self, caller: CallerLeg, digit: str) -> None:
        if digit == STOP_KEY and self._messages is not None and self._messages.stop(caller.call_id):
            return  # the end of the message; the recording's end carries the flow on
        if caller.state in IN_A_FLOW and caller.flow is not None:
            self.actions(caller, caller.flow.digit(digit, self._now()))
        elif caller.state is CallerState.QUEUED and digit == "1" and caller.callback_offered:
            self._choose_callback(caller)

    def next_deadline(self) -> float | None:
        deadlines = [
            d
            for d in (c.flow.next_deadline() for c in self._callers.all() if c.flow is not None)
            if d is not None
        ]
        return min(deadlines, default=None)

    def advance(self, now: float) -> None:
        for caller in self._callers.all():
            run = caller.flow
            deadline = None if run is None else run.next_deadline()
            due = run is not None and deadline is not None and deadline <= now
            if due and run is not None and caller.state in IN_A_FLOW:
                self.actions(caller, run.advance(now))

    # == a queue ========================================================================

    def enter_queue(
        self,
        caller: CallerLeg,
        queue_id: QueueId,
        *,
        language: Language | None,
        data: Mapping[str, str],
        skills: Mapping[Skill, int] | None = None,
        priority: int | None = None,
    ) -> None:
        caller.move(CallerInput.QUEUE_ENTERED)
        self.hand_to_core(
            caller, queue_id, language=language, data=data, skills=skills, priority=priority
        )
        self.hold(caller)

    def hand_to_core(
        self,
        caller: CallerLeg,
        queue_id: QueueId,
        *,
        language: Language | None,
        data: Mapping[str, str],
        skills: Mapping[Skill, int] | None = None,
        priority: int | None = None,
    ) -> None:
        caller.in_core = True
        self._report(
            QueueEntry(
                call_id=caller.call_id,
                queue_id=queue_id,
                ani=caller.ani,
                dnis=caller.dnis,
                language=language,
                skills=dict(skills or {}),
                priority=priority,
                data=dict(data),
            )
        )

    # == callbacks ======================================================================

    def _choose_callback(self, caller: CallerLeg) -> None:
        """A queued caller took the callback offered: the flow's callback menu, still queued."""
        flow = self.flow
        if flow is None or flow.queue_callback is None:
            log.info(
                "call %s: 1 for a callback, but the flow has no queue_callback", caller.call_id
            )
            return
        if caller.playback is not None:
            caller.playback.stop()
            caller.playback = None
        caller.move(CallerInput.CALLBACK_CHOSEN)
        run = FlowRun(
            flow, start_node=flow.queue_callback, ani=caller.ani, language=caller.language
        )
        caller.flow = run
        self.actions(caller, run.start(self._now()))

    def _request_callback(self, caller: CallerLeg, action: RequestCallback) -> None:
        """The caller confirmed a number: a queued caller's call becomes a callback task
        (its place kept); from the IVR menu, a task is booked in the node's queue. Either
        way the caller hears the goodbye and is hung up without a ``CallerHungUp``."""
        self._calling_back.remember(caller.call_id, str(caller.dialog.remote_target))
        if caller.state is CallerState.CALLBACK_MENU:
            caller.move(CallerInput.CALLBACK_REQUESTED)
            caller.in_core = False  # the core's call is the task now: no caller to lose
            self._report(CallbackRequested(call_id=caller.call_id, number=action.number))
        elif caller.state is CallerState.IN_FLOW:
            self._report(
                QueueEntry(
                    call_id=caller.call_id,
                    queue_id=action.queue_id,
                    ani=caller.ani,
                    dnis=caller.dnis,
                    language=action.language,
                    data=dict(action.data),
                    callback_number=action.number,
                )
            )
        log.info("call %s: callback to %s requested", caller.call_id, action.number)

    # == what the caller hears ==========================================================

    def _played(self, caller: CallerLeg, playback: Playback, result: PlaybackResult) -> None:
        if caller.state is CallerState.ENDED or caller.playback is not playback:
            return
        caller.playback = None
        if result.ending is not PlaybackEnd.FINISHED:
            return
        if caller.state in IN_A_FLOW and caller.flow is not None:
            play_id, caller.play_id = caller.play_id, None
            if play_id is not None:
                self.actions(caller, caller.flow.prompt_finished(self._now(), play_id))
        elif caller.state is CallerState.QUEUED:
            self.hold(caller)  # after an announcement, back to the music

    def _play(self, caller: CallerLeg, prompts: tuple[str, ...], *, barge_in: bool) -> None:
        playback = self._player.play(caller.media, prompts, barge_in=barge_in)
        caller.playback = playback
        caller.played.append(prompts)
        playback.done.add_done_callback(
            lambda done: (
                self._played(caller, playback, done.result()) if not done.cancelled() else None
            )
        )

    def hold(self, caller: CallerLeg) -> None:
        caller.playback = self._player.hold_music(caller.media)
        caller.play_id = None

    def announce(self, action: PlayAnnouncement) -> None:
        caller = self._callers.get(action.call_id)
        if caller is None or caller.state is not CallerState.QUEUED:
            return
        if action.offer_callback and (self.flow is None or self.flow.queue_callback is None):
            action = replace(action, offer_callback=False)  # no menu to take it: not offered
        caller.callback_offered = action.offer_callback
        self._play(caller, prompts_for(action, caller.language), barge_in=False)

    # == voicemail (ivr.messages) ======================================================

    def _record(self, caller: CallerLeg, max_seconds: float) -> None:
        if self._messages is None:
            log.warning(
                "call %s: no voicemail directory; hanging up",
                caller.call_id,
                extra={"call_id": caller.call_id},
            )
            self._hang_up_caller(caller)
            return
        try:
            recording = self._messages.record(caller.call_id, caller.media, max_seconds=max_seconds)
        except (OSError, RuntimeError) as error:  # a full disk, a directory not ours...
            log.error(
                "call %s: cannot record a message: %s",
                caller.call_id,
                error,
                extra={"call_id": caller.call_id},
            )
            self._hang_up_caller(caller)
            return
        log.info(
            "call %s: recording a message to %s",
            caller.call_id,
            recording.path,
            extra={"call_id": caller.call_id},
        )
        recording.done.add_done_callback(
            lambda done: self._recorded(caller, done.result()) if not done.cancelled() else None
        )

    def _recorded(self, caller: CallerLeg, result: RecordingResult) -> None:
        """The recording ended (``#``, its limit, or the caller hanging up): the flow goes on."""
        assert self._messages is not None
        relative = self._messages.finished(caller.call_id, result)
        if caller.flow is not None:
            finished = caller.flow.recording_finished(relative, result.seconds, self._now())
            self.actions(caller, finished)

    def _keep_message(self, caller: CallerLeg, action: KeepMessage) -> None:
        if self._messages is None:
            return  # nothing was recorded without a directory
        left = self._messages.keep(caller.call_id, ani=caller.ani, dnis=caller.dnis, message=action)
        log.info(
            "call %s: a %.1f s message left in %r",
            caller.call_id,
            left.seconds,
            left.mailbox,
            extra={"call_id": caller.call_id, "ani": caller.ani, "mailbox": left.mailbox},
        )


def relayed_digit(request: Request) -> str | None:
    """The key of an INFO with ``application/dtmf-relay`` (``Signal=5``), if it is one."""
    content = request.headers.content_type()
    if content is None or content.essence != DTMF_RELAY:
        return None
    for line in request.body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        if name.strip().lower() == "signal":
            digit = value.strip().upper()
            if len(digit) == 1 and digit in "0123456789*#ABCD":
                return digit
    return None
