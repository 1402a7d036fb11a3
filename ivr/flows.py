"""Running a flow for one call: a sans-IO interpreter with time passed in.

Theory of operation. A ``FlowRun`` is the IVR part of one call. The adapter
that owns the call's media feeds it what happened (the call started, a prompt
finished, a key was pressed, a recording ended, the caller hung up, a timer
expired: ``advance(now)`` once ``next_deadline()`` has passed) and carries out
what it returns, imperatives such as ``PlayPrompts`` or ``EnterQueue``. It
never reads a clock, sleeps or touches a file.

The run is in one state of ``RunState``; ``RUN_TRANSITIONS`` lists, for each
(state, input) it acts on, the states it may land in, and is enforced on every
input; every other pair is listed in ``IGNORED_INPUTS`` with the reason it is
ignored (a key after hang-up, a prompt end when nothing plays...). So odd
orders of input never raise. Which node is running (``ivr.flow_config``)
says what a state means: ASKING is a menu or a callback's "press 1 to
confirm", COLLECTING a digit entry or a callback's number.

What a caller expects of the keypad:

- Barge-in: a key pressed during an interruptible prompt stops it and counts
  as input (``StopPlayback`` then whatever the key leads to).
- Type-ahead: keys pressed while nothing asks for them (a greeting that
  cannot be interrupted, a prompt being skipped) are kept, up to
  ``TYPE_AHEAD_LIMIT``, for the next menu or entry; an interruptible menu
  that finds keys waiting does not play its prompts at all. A wrong key
  clears the keys typed after it, since they were typed for the wrong menu.
- Retries: silence for ``timeout`` after the prompts, or a wrong key, asks
  again (after the ``no_input`` or ``invalid`` prompts) up to ``retries``
  more times, then goes to the ``fallback`` node. An entry ends with the
  terminator, at the maximum length, or after ``inter_digit_timeout`` of
  silence, and is then checked (length, pattern).
- Keys pressed while a message is recorded are part of the message.

Every run that is not abandoned by the caller ends with exactly one
*terminal* action: ``EnterQueue`` (the call goes on to the routing core) or
``Hangup`` (with a reason: the message was left, the callback requested, the
caller never chose...). ``KeepMessage`` and ``RequestCallback`` come before
the ``Hangup`` of a voicemail or callback node, so a caller who hangs up
during the goodbye still has their message kept and their callback booked.
A caller hanging up ends the run silently, except while recording: then the
run waits for the recording's file and keeps the message.

Each ``PlayPrompts`` carries a ``play_id``; an adapter that passes it back
with ``prompt_finished`` can never have the end of a stopped playback taken
for the end of the next one. A playback that never reports its end is taken
as finished after ``PLAYBACK_LIMIT_SECONDS``, so a lost event cannot hold a
caller forever.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from acd.ids import Language, QueueId, Skill
from acd.states import InvalidTransition
from ivr.announcements import digit_prompts
from ivr.flow_config import (
    DIGITS,
    CallbackNode,
    CollectNode,
    Flow,
    HangupNode,
    LanguageNode,
    MenuNode,
    Node,
    PlayNode,
    QueueNode,
    VoicemailNode,
)

PLAYBACK_LIMIT_SECONDS = 300.0  # longer than any prompt list; then its end was lost
RECORDING_GRACE_SECONDS = 10.0  # past max_seconds, the recorder's end was lost
TYPE_AHEAD_LIMIT = 32  # keys kept for the next menu; more is a stuck key or a fax
_CALLABLE = re.compile(r"\+?[0-9]{3,20}")  # a caller id that can be read back and called


# Outputs: what the adapter must do.


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompts:
    """Play these prompts (references under ``ivr/prompts/``, no ``.wav``) one after another."""

    prompts: tuple[str, ...]
    interruptible: bool  # whether a key stops them (barge-in)
    play_id: int  # pass it back with prompt_finished


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlayback:
    """Stop the prompts now playing; their end is not to be reported."""

    play_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StartRecording:
    """Record the caller for at most ``max_seconds``; report the file with recording_finished."""

    max_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepMessage:
    """File the recorded message in ``mailbox``, with the call's language and data."""

    path: str
    seconds: float
    mailbox: str
    language: Language
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class EnterQueue:
    """Hand the call to the routing core's queue (terminal: the IVR part is over)."""

    queue_id: QueueId
    skills: Mapping[Skill, int]  # on top of the queue's
    priority: int | None  # None: the queue's own
    language: Language
    data: Mapping[str, str]  # collected digits, e.g. {"account": "123456"}


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCallback:
    """Book a call back to ``number`` from ``queue_id`` (a Hangup follows)."""

    number: str
    queue_id: QueueId
    language: Language
    data: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    """End the call (terminal)."""

    reason: str


FlowAction = (
    PlayPrompts
    | StopPlayback
    | StartRecording
    | KeepMessage
    | EnterQueue
    | RequestCallback
    | Hangup
)
TERMINAL_ACTIONS = (EnterQueue, Hangup)


# States and inputs.


class RunState(Enum):
    NEW = "new"  # built, not started
    PLAYING = "playing"  # prompts play and nothing is asked (keys wait, or skip them)
    ASKING = "asking"  # a one-key choice: its prompts play, or it waits for the key
    COLLECTING = "collecting"  # a digit entry: its prompts play, or it waits for digits
    RECORDING = "recording"
    SAVING = "saving"  # the caller hung up while recording; the file is still to come
    ENDED = "ended"


class Input(Enum):
    START = "start"
    PROMPT_FINISHED = "prompt_finished"
    DIGIT = "digit"
    TIMEOUT = "timeout"
    RECORDING_FINISHED = "recording_finished"
    CALLER_HUNG_UP = "caller_hung_up"


class Then(Enum):
    """What follows the prompts of the PLAYING state."""

    NEXT_NODE = "next_node"
    RECORD = "record"
    HANG_UP = "hang_up"


R = RunState
In = Input
_ENTER = frozenset({R.PLAYING, R.ASKING, R.COLLECTING, R.RECORDING, R.ENDED})  # entering any node
RUN_TRANSITIONS: Mapping[tuple[RunState, Input], frozenset[RunState]] = MappingProxyType(
    {
        (R.NEW, In.START): _ENTER,
        (R.NEW, In.DIGIT): frozenset({R.NEW}),  # kept for the first menu
        (R.NEW, In.CALLER_HUNG_UP): frozenset({R.ENDED}),
        **{
            (state, put): _ENTER
            for state in (R.PLAYING, R.ASKING, R.COLLECTING)
            for put in (In.PROMPT_FINISHED, In.DIGIT, In.TIMEOUT)
        },
        (R.PLAYING, In.CALLER_HUNG_UP): frozenset({R.ENDED}),
        (R.ASKING, In.CALLER_HUNG_UP): frozenset({R.ENDED}),
        (R.COLLECTING, In.CALLER_HUNG_UP): frozenset({R.ENDED}),
        (R.RECORDING, In.RECORDING_FINISHED): frozenset({R.PLAYING, R.ENDED}),
        (R.RECORDING, In.TIMEOUT): frozenset({R.ENDED}),  # the recorder never reported
        (R.RECORDING, In.CALLER_HUNG_UP): frozenset({R.SAVING}),
        (R.SAVING, In.RECORDING_FINISHED): frozenset({R.ENDED}),
        (R.SAVING, In.TIMEOUT): frozenset({R.ENDED}),
    }
)
IGNORED_INPUTS: Mapping[tuple[RunState, Input], str] = MappingProxyType(
    {
        (R.NEW, In.PROMPT_FINISHED): "nothing plays before the start",
        (R.NEW, In.TIMEOUT): "no timer runs before the start",
        (R.NEW, In.RECORDING_FINISHED): "nothing records before the start",
        **{(s, In.START): "a run starts once" for s in RunState if s is not R.NEW},
        **{
            (s, In.RECORDING_FINISHED): "only a voicemail node records"
            for s in (R.PLAYING, R.ASKING, R.COLLECTING)
        },
        (R.RECORDING, In.PROMPT_FINISHED): "the beep's end may be reported twice",
        (R.RECORDING, In.DIGIT): "keys pressed while recording are part of the message",
        (R.SAVING, In.PROMPT_FINISHED): "the caller has gone: only the recording is awaited",
        (R.SAVING, In.DIGIT): "the caller has gone: only the recording is awaited",
        (R.SAVING, In.CALLER_HUNG_UP): "the caller has already gone",
        **{(R.ENDED, put): "the call has left the flow" for put in Input if put is not In.START},
    }
)


class FlowRun:
    """The IVR part of one call: inputs with ``now`` in, actions out."""

    def __init__(
        self,
        flow: Flow,
        *,
        start_node: str,
        ani: str = "",
        language: Language | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        if start_node not in flow.nodes:
            raise ValueError(f"{flow.source}: no node {start_node!r} to start at")
        self._flow = flow
        self._start = start_node
        self._callback_number = ani if _CALLABLE.fullmatch(ani) else None
        self._language = language or flow.language
        self._data: dict[str, str] = dict(data or {})
        self._state = RunState.NEW
        self._node: Node = flow.nodes[start_node]
        self._deadline: float | None = None
        self._buffer: deque[str] = deque()  # keys typed ahead
        self._entry: list[str] = []  # digits of the entry being collected
        self._attempts = 0  # retries used at the current question
        self._playing = False
        self._interruptible = False
        self._play_id = 0
        self._then = Then.NEXT_NODE
        self._reason = ""  # the hang-up reason after the PLAYING state's prompts
        self._out: list[FlowAction] = []

    # Views.

    @property
    def state(self) -> RunState:
        return self._state

    @property
    def node(self) -> str:
        """The node the call is at (the last one, once ended)."""
        return self._node.name

    @property
    def language(self) -> Language:
        return self._language

    @property
    def data(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._data))

    def next_deadline(self) -> float | None:
        """When ``advance`` must next be called, or None when no timer runs."""
        return self._deadline

    # Inputs.

    def start(self, now: float) -> list[FlowAction]:
        """The call was answered: begin at the start node."""
        return self._run(Input.START, now, lambda: self._enter(self._start, now))

    def prompt_finished(self, now: float, play_id: int | None = None) -> list[FlowAction]:
        """The prompts played to their end (``play_id``: which playback; None: the current one)."""
        if play_id is not None and play_id != self._play_id:
            return []  # a stopped playback's end, overtaken by a newer one
        return self._run(Input.PROMPT_FINISHED, now, lambda: self._heard(now))

    def digit(self, digit: str, now: float) -> list[FlowAction]:
        """The caller pressed a key (RFC 4733 event or SIP INFO, decoded by the adapter)."""
        if len(digit) != 1 or digit not in DIGITS:
            return []  # A-D and anything else: no menu can offer them
        return self._run(Input.DIGIT, now, lambda: self._pressed(digit, now))

    def recording_finished(self, path: str, seconds: float, now: float) -> list[FlowAction]:
        """The message recording ended (limit reached or caller hung up) and is in ``path``."""
        return self._run(Input.RECORDING_FINISHED, now, lambda: self._recorded(path, seconds, now))

    def caller_hung_up(self, now: float) -> list[FlowAction]:
        """The caller hung up."""
        return self._run(Input.CALLER_HUNG_UP, now, lambda: self._gone(now))

    def advance(self, now: float) -> list[FlowAction]:
        """Handle the timer if ``now`` is past ``next_deadline()``; else nothing happens."""
        if self._deadline is None or now < self._deadline:
            return []
        return self._run(Input.TIMEOUT, now, lambda: self._timed_out(now))

    # The machine.

    def _run(self, put: Input, now: float, handle: Callable[[], None]) -> list[FlowAction]:
        allowed = RUN_TRANSITIONS.get((self._state, put))
        if allowed is None:
            return []  # IGNORED_INPUTS says why
        before = self._state
        handle()
        self._take_typed_ahead(now)
        if self._state not in allowed:
            raise InvalidTransition(f"{before.name} --{put.name}--> {self._state.name}")
        out, self._out = self._out, []
        return out

    def _heard(self, now: float) -> None:
        if not self._playing:
            return  # the end of prompts already stopped
        self._playing = False
        self._prompts_over(now)

    def _prompts_over(self, now: float) -> None:
        if self._state is RunState.PLAYING:
            self._after_playback(now)
        else:
            self._listen(now)

    def _pressed(self, digit: str, now: float) -> None:
        if len(self._buffer) < TYPE_AHEAD_LIMIT:
            self._buffer.append(digit)
        if self._state is RunState.PLAYING and self._playing and self._interruptible:
            self._stop_playback()
            self._after_playback(now)
        # ASKING and COLLECTING take it from the buffer (_take_typed_ahead).

    def _timed_out(self, now: float) -> None:
        state, node = self._state, self._node
        self._deadline = None
        if state in (RunState.PLAYING, RunState.ASKING, RunState.COLLECTING) and self._playing:
            self._stop_playback()  # its end was lost: carry on as if it had come
            self._prompts_over(now)
        elif state is RunState.ASKING:
            self._retry(now, _no_input(node))
        elif state is RunState.COLLECTING:
            if self._entry:
                self._complete_entry(now)  # a pause ends an entry
            else:
                self._retry(now, _no_input(node))
        elif state is RunState.RECORDING:
            self._finish(Hangup(reason="recording_lost"))
        elif state is RunState.SAVING:
            self._finish(None)

    def _recorded(self, path: str, seconds: float, now: float) -> None:
        node = self._node
        assert isinstance(node, VoicemailNode)
        self._emit(
            KeepMessage(
                path=path,
                seconds=seconds,
                mailbox=node.mailbox,
                language=self._language,
                data=self._snapshot(),
            )
        )
        if self._state is RunState.SAVING:
            self._finish(None)
        else:
            self._say_then_hang_up(node.after, "message_left", now)

    def _gone(self, now: float) -> None:
        if self._state is RunState.RECORDING:
            # The recorder is closing the file: wait for it, so the message is kept.
            self._state = RunState.SAVING
            self._deadline = now + RECORDING_GRACE_SECONDS
        else:
            self._finish(None)

    # Nodes.

    def _enter(self, name: str, now: float) -> None:
        node = self._flow.nodes[name]
        self._node = node
        self._attempts = 0
        self._entry = []
        match node:
            case LanguageNode():
                self._language = node.language
                self._enter(node.next, now)  # the loader refuses loops of language nodes
            case PlayNode():
                self._state = RunState.PLAYING
                self._then = Then.NEXT_NODE
                self._play(node.prompts, node.interruptible, now)
            case MenuNode():
                self._state = RunState.ASKING
                self._ask(now, ())
            case CollectNode():
                self._state = RunState.COLLECTING
                self._ask(now, ())
            case CallbackNode():
                known = self._callback_number is not None
                self._state = RunState.ASKING if known else RunState.COLLECTING
                self._ask(now, ())
            case QueueNode():
                entering = EnterQueue(
                    queue_id=node.queue,
                    skills=node.skills,
                    priority=node.priority,
                    language=self._language,
                    data=self._snapshot(),
                )
                self._finish(entering)
            case VoicemailNode():
                prompts = (*node.prompts, "beep") if node.beep else node.prompts
                if prompts:
                    self._state = RunState.PLAYING
                    self._then = Then.RECORD
                    self._play(prompts, False, now)
                else:
                    self._record(now)
            case HangupNode():
                self._say_then_hang_up(node.prompts, node.reason, now)

    def _ask(self, now: float, preface: tuple[str, ...]) -> None:
        """Put the current question (again, after ``preface``)."""
        node = self._node
        interruptible = True
        match node:
            case MenuNode() | CollectNode():
                prompts, interruptible = node.prompts, node.interruptible
            case CallbackNode() if self._state is RunState.ASKING:
                number = self._callback_number or ""
                spoken = digit_prompts(self._language, number) if node.number_intro else ()
                prompts = (*node.number_intro, *spoken, *node.confirm)
            case CallbackNode():
                prompts = node.enter_number
            case _:
                raise InvalidTransition(f"node {node.name!r} asks nothing")
        if self._buffer and interruptible:
            # Keys typed ahead answer at once: the prompts would only be cut short.
            self._interruptible = True
            self._listen(now)
        else:
            self._play((*preface, *prompts), interruptible, now)

    def _listen(self, now: float) -> None:
        """The prompts are over: time the caller's answer."""
        node = self._node
        if isinstance(node, CollectNode | CallbackNode) and self._entry:
            self._deadline = now + node.inter_digit_timeout
        elif isinstance(node, MenuNode | CollectNode | CallbackNode):
            self._deadline = now + node.timeout

    def _take_typed_ahead(self, now: float) -> None:
        while self._buffer and self._state in (RunState.ASKING, RunState.COLLECTING):
            if self._playing:
                if not self._interruptible:
                    return  # heard out first; the keys wait
                self._stop_playback()  # barge-in
            digit = self._buffer.popleft()
            if self._state is RunState.ASKING:
                self._choose(digit, now)
            else:
                self._key(digit, now)

    def _choose(self, digit: str, now: float) -> None:
        node = self._node
        if isinstance(node, MenuNode) and digit in node.digits:
            self._enter(node.digits[digit], now)
        elif isinstance(node, CallbackNode) and digit == "1" and self._callback_number:
            self._request_callback(node, self._callback_number, now)
        elif isinstance(node, CallbackNode) and digit == "2":
            self._state = RunState.COLLECTING  # another number
            self._attempts = 0
            self._ask(now, ())
        else:
            self._retry(now, _invalid(node))

    def _key(self, digit: str, now: float) -> None:
        node = self._node
        assert isinstance(node, CollectNode | CallbackNode)
        terminator = node.terminator if isinstance(node, CollectNode) else "#"
        if digit == terminator:
            self._complete_entry(now)
            return
        self._entry.append(digit)
        if len(self._entry) >= node.max_digits:
            self._complete_entry(now)
        else:
            self._deadline = now + node.inter_digit_timeout

    def _complete_entry(self, now: float) -> None:
        node = self._node
        assert isinstance(node, CollectNode | CallbackNode)
        entry = "".join(self._entry)
        valid = node.min_digits <= len(entry) <= node.max_digits
        if isinstance(node, CollectNode):
            if valid and (node.pattern is None or node.pattern.fullmatch(entry)):
                self._data[node.into] = entry
                self._enter(node.next, now)
                return
        elif valid and entry.isdigit():
            self._request_callback(node, entry, now)
            return
        self._retry(now, node.invalid)

    def _retry(self, now: float, preface: tuple[str, ...]) -> None:
        node = self._node
        assert isinstance(node, MenuNode | CollectNode | CallbackNode)
        self._attempts += 1
        self._buffer.clear()  # typed for a question that went wrong
        self._entry = []
        if self._attempts > node.retries:
            self._enter(node.fallback, now)
        else:
            self._ask(now, preface)

    def _request_callback(self, node: CallbackNode, number: str, now: float) -> None:
        self._emit(
            RequestCallback(
                number=number, queue_id=node.queue, language=self._language, data=self._snapshot()
            )
        )
        self._say_then_hang_up(node.done, "callback_requested", now)

    def _record(self, now: float) -> None:
        node = self._node
        assert isinstance(node, VoicemailNode)
        self._buffer.clear()
        self._state = RunState.RECORDING
        self._emit(StartRecording(max_seconds=node.max_seconds))
        self._deadline = now + node.max_seconds + RECORDING_GRACE_SECONDS

    def _say_then_hang_up(self, prompts: tuple[str, ...], reason: str, now: float) -> None:
        if not prompts:
            self._finish(Hangup(reason=reason))
            return
        self._state = RunState.PLAYING
        self._then = Then.HANG_UP
        self._reason = reason
        self._play(prompts, False, now)

    def _after_playback(self, now: float) -> None:
        match self._then:
            case Then.NEXT_NODE:
                node = self._node
                assert isinstance(node, PlayNode)
                self._enter(node.next, now)
            case Then.RECORD:
                self._record(now)
            case Then.HANG_UP:
                self._finish(Hangup(reason=self._reason))

    def _finish(self, action: EnterQueue | Hangup | None) -> None:
        """End the run, with its terminal action (None: the caller is gone)."""
        if action is not None:
            self._emit(action)
        self._state = RunState.ENDED
        self._deadline = None
        self._playing = False
        self._buffer.clear()

    # Media.

    def _play(self, names: tuple[str, ...], interruptible: bool, now: float) -> None:
        if self._playing:
            raise InvalidTransition("new prompts while others still play")
        self._play_id += 1
        refs = tuple(self._flow.qualify(name, self._language) for name in names)
        self._emit(PlayPrompts(prompts=refs, interruptible=interruptible, play_id=self._play_id))
        self._playing = True
        self._interruptible = interruptible
        self._deadline = now + PLAYBACK_LIMIT_SECONDS

    def _stop_playback(self) -> None:
        self._emit(StopPlayback(play_id=self._play_id))
        self._playing = False

    def _emit(self, action: FlowAction) -> None:
        self._out.append(action)

    def _snapshot(self) -> Mapping[str, str]:
        return MappingProxyType(dict(self._data))


def _no_input(node: Node) -> tuple[str, ...]:
    return node.no_input if isinstance(node, MenuNode | CollectNode | CallbackNode) else ()


def _invalid(node: Node) -> tuple[str, ...]:
    return node.invalid if isinstance(node, MenuNode | CollectNode | CallbackNode) else ()
