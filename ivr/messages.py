"""Voicemail over SIP: the caller's message recorded to a file, then handed over to be filed.

Theory of operation. A voicemail node's ``StartRecording`` becomes a
``Recording`` (``ivr.media.recorder``) of the caller's leg into a new µ-law
WAV file under ``directory``, at ``<YYYY-MM-DD>/<call id>.wav`` (UTC day):
one file per call, since a voicemail node ends its call. The recording ends
in one of three ways, and each keeps what was recorded:

- the caller presses ``STOP_KEY`` (``#``): ``ivr.caller_flows`` asks ``stop``;
- the node's ``max_seconds`` pass: the recorder stops itself;
- the caller hangs up: the leg closes, and the recorder with it.

``ivr.caller_flows`` then gives the flow the file's path *relative to the
directory* (``recording_finished``), so that the flow's ``KeepMessage``
carries the path the store keeps: the directory may move without a change to
the rows. ``keep`` turns that ``KeepMessage`` into a ``MessageLeft`` notice on
the ``left`` queue, which the server files (``api.store.voicemails``). The
module decides nothing about the flow and touches no database; its only I/O
is the directory it creates and the recorder's file.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from acd.ids import CallId, Language
from ivr.flows import KeepMessage
from ivr.media import MediaLeg, Recording, RecordingResult

STOP_KEY = "#"  # ends the message, as answering machines have taught callers
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")  # anything else in a call id is kept out of file names


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageLeft:
    """A caller left a message: its WAV file, relative to the voicemail directory, is complete."""

    call_id: CallId
    mailbox: str
    ani: str
    dnis: str
    language: Language
    data: Mapping[str, str] = field(default_factory=dict)
    path: str  # relative to the voicemail directory, "/"-separated
    seconds: float
    at: float  # when the recording ended (epoch seconds)


class Messages:
    """The recordings in progress, one per call, and the messages left, for the server."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self._clock = clock
        self._recordings: dict[CallId, Recording] = {}
        self.left: asyncio.Queue[MessageLeft] = asyncio.Queue()

    def recording(self, call_id: CallId) -> Recording | None:
        """The call's recording while it runs."""
        return self._recordings.get(call_id)

    def record(self, call_id: CallId, leg: MediaLeg, *, max_seconds: float) -> Recording:
        """Start recording ``leg`` now into a new file; ``OSError`` if it cannot be created."""
        if call_id in self._recordings:
            raise RuntimeError(f"call {call_id} is being recorded already")
        day = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        relative = f"{day}/{_UNSAFE.sub('_', call_id)}.wav"
        path = self.directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        recording = Recording(leg, path, max_seconds=max_seconds)
        self._recordings[call_id] = recording
        return recording

    def stop(self, call_id: CallId) -> bool:
        """The caller ended their message: stop its recording. False: nothing was recording."""
        recording = self._recordings.get(call_id)
        if recording is None or recording.done.done():
            return False
        recording.stop()
        return True

    def finished(self, call_id: CallId, result: RecordingResult) -> str:
        """The recording ended: forget it; its path relative to the directory, for the flow."""
        self._recordings.pop(call_id, None)
        return result.path.relative_to(self.directory).as_posix()

    def keep(self, call_id: CallId, *, ani: str, dnis: str, message: KeepMessage) -> MessageLeft:
        """The flow keeps the message: hand it over to be filed."""
        left = MessageLeft(
            call_id=call_id,
            mailbox=message.mailbox,
            ani=ani,
            dnis=dnis,
            language=message.language,
            data=dict(message.data),
            path=message.path,
            seconds=message.seconds,
            at=self._clock(),
        )
        self.left.put_nowait(left)
        return left
