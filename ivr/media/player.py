"""Playing prompts and music on hold to a leg.

Theory of operation. A prompt is named by a catalogue reference (a ``str``
such as ``"en/welcome"`` or ``"moh"``, a file under ``ivr/prompts/`` without
``.wav``; see ``ivr.catalogue``) or given as a ``Path`` to any 8 kHz mono WAV
file (a recorded message played back). ``PromptCache`` reads a file once per
codec into its 20 ms payloads (``ivr.rtp.wav.read_prompt``: the µ-law
prompts are converted by the G.711 tables for a leg that agreed on PCMA) and
keeps them, least recently used first out beyond a size bound. Reading is a
plain blocking file read, done once per prompt and codec: call ``preload`` at
start-up to keep even that off the call path.

``Player.play`` makes a ``Playback`` of a sequence of prompts and gives it to
the leg, which takes one frame from it per 20 ms slot (``MediaLeg.pace``).
A playback ends once, with a ``PlaybackResult`` in its ``done`` future:
finished (at the tick that sends its last frame), interrupted (a key press, when it was started
with ``barge_in``; the digit is in the result, and the leg still reports it),
stopped (``stop()``), replaced (another playback or a bridge took the leg) or
closed (the leg closed). ``Player.hold_music`` loops ``moh`` (or any
prompts) until stopped or replaced. What the far end hears when nothing
plays is the leg's business (``continuous``: silence frames).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.catalogue import PROMPTS_DIR
from ivr.media.leg import MediaLeg, PlaybackEnd
from ivr.rtp.g711 import Codec
from ivr.rtp.wav import read_prompt

HOLD_MUSIC = "moh"
DEFAULT_CACHE_OCTETS = 32 * 1024 * 1024  # all the shipped prompts in both laws take ~2 MB

Prompt = str | Path  # a catalogue reference, or a WAV file


class PromptCache:
    """Prompts read once per codec into 20 ms payloads, and kept (LRU, bounded in octets)."""

    __slots__ = ("_entries", "_octets", "hits", "max_octets", "misses", "root")

    def __init__(self, root: Path = PROMPTS_DIR, *, max_octets: int = DEFAULT_CACHE_OCTETS) -> None:
        self.root = root
        self.max_octets = max_octets
        self._entries: OrderedDict[tuple[Path, Codec], tuple[bytes, ...]] = OrderedDict()
        self._octets = 0
        self.hits = 0
        self.misses = 0

    def path(self, prompt: Prompt) -> Path:
        """The file a prompt is read from."""
        if isinstance(prompt, Path):
            return prompt
        return self.root / f"{prompt}.wav"

    def frames(self, prompt: Prompt, codec: Codec) -> tuple[bytes, ...]:
        """The payloads of ``prompt`` in ``codec``; ``WavError``/``OSError`` if it can't be read."""
        key = (self.path(prompt), codec)
        frames = self._entries.get(key)
        if frames is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return frames
        self.misses += 1
        frames = read_prompt(key[0], codec)
        self._entries[key] = frames
        self._octets += sum(len(frame) for frame in frames)
        while self._octets > self.max_octets and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._octets -= sum(len(frame) for frame in evicted)
        return frames

    def preload(self, prompts: Sequence[Prompt], codecs: Sequence[Codec] = tuple(Codec)) -> None:
        """Read ``prompts`` now (at start-up), for each of ``codecs``."""
        for prompt in prompts:
            for codec in codecs:
                self.frames(prompt, codec)

    @property
    def octets(self) -> int:
        return self._octets


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackResult:
    """How a playback ended."""

    ending: PlaybackEnd
    frames: int  # frame slots played (sent, or passed while the far end had us on hold)
    digit: str | None = None  # the key that interrupted it, with barge-in


class Playback:
    """Prompts being played to one leg, frame by frame; ``done`` says how it ended."""

    __slots__ = ("_barge_in", "_index", "_loop", "_part", "_parts", "done", "frames", "leg")

    def __init__(
        self,
        leg: MediaLeg,
        parts: Sequence[tuple[bytes, ...]],
        *,
        barge_in: bool = False,
        loop: bool = False,
    ) -> None:
        self.leg = leg
        self._parts = tuple(part for part in parts if part)
        self._part = 0
        self._index = 0
        self._barge_in = barge_in
        self._loop = loop
        self.frames = 0
        self.done: asyncio.Future[PlaybackResult] = asyncio.get_running_loop().create_future()

    @property
    def barge_in(self) -> bool:
        return self._barge_in

    def next_frame(self) -> bytes | None:
        parts = self._parts
        while self._part < len(parts):
            part = parts[self._part]
            if self._index < len(part):
                frame = part[self._index]
                self._index += 1
                self.frames += 1
                return frame
            self._part += 1
            self._index = 0
            if self._part == len(parts) and self._loop:
                self._part = 0
        return None

    @property
    def exhausted(self) -> bool:
        if self._loop:
            return False
        parts = self._parts
        return self._part >= len(parts) or (
            self._part == len(parts) - 1 and self._index >= len(parts[-1])
        )

    def end(self, ending: PlaybackEnd, digit: str | None) -> None:
        if not self.done.done():
            self.done.set_result(PlaybackResult(ending=ending, frames=self.frames, digit=digit))

    def stop(self) -> None:
        """Stop playing (the result says ``STOPPED``); harmless once ended."""
        self.leg.stop(self)


class Player:
    """Starts playbacks of cached prompts on legs."""

    __slots__ = ("cache",)

    def __init__(self, cache: PromptCache | None = None) -> None:
        self.cache = PromptCache() if cache is None else cache

    def play(self, leg: MediaLeg, prompts: Sequence[Prompt], *, barge_in: bool = False) -> Playback:
        """Play ``prompts`` in turn from the next tick, replacing what was playing."""
        return self._start(leg, prompts, barge_in=barge_in, loop=False)

    def hold_music(self, leg: MediaLeg, prompts: Sequence[Prompt] = (HOLD_MUSIC,)) -> Playback:
        """Loop ``prompts`` (music on hold) until stopped or replaced."""
        return self._start(leg, prompts, barge_in=False, loop=True)

    def _start(
        self, leg: MediaLeg, prompts: Sequence[Prompt], *, barge_in: bool, loop: bool
    ) -> Playback:
        codec = leg.codec
        if codec is None:
            raise RuntimeError("configure the leg before playing to it")
        if isinstance(prompts, str | Path):
            raise TypeError("prompts is a sequence of prompts, not one")
        parts = [self.cache.frames(prompt, codec) for prompt in prompts]
        playback = Playback(leg, parts, barge_in=barge_in, loop=loop)
        leg.play(playback)
        return playback
