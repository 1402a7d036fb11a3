"""The asyncio media engine: RTP sockets per call leg, paced prompts, DTMF in, bridges, recording.

The adapter around ``ivr.rtp`` (sans-IO packets, streams, G.711, RFC 4733)
and ``ivr.sdp`` (what offer/answer agreed). The pieces, each a module:

* ``ports``: ``PortPool``, the even RTP ports of a range, bound per leg;
* ``pacer``: ``Pacer``, one 20 ms timer task for every leg that sends;
* ``leg``: ``MediaLeg``, one call leg's socket: what it hears (digits out of
  telephone-events, audio to its sinks) and what it sends, paced or relayed;
* ``reception``: ``Latch`` (which source a leg hears: symmetric RTP) and
  ``Reception`` (packet and loss counts), sans-IO;
* ``player``: ``Player``/``PromptCache``/``Playback``, prompts and music on hold;
* ``bridge``: ``Bridge``, two legs relayed to each other (transcoding
  µ-law/A-law when they differ);
* ``recorder``: ``Recording``, what a leg hears into a µ-law WAV file;
* ``testing``: a fake phone (``FarEnd``) and a ``ManualClock`` for tests.

Wiring, in the composition root::

    ports = PortPool(host="192.0.2.10", first=16384, last=32767)
    pacer = Pacer()
    tg.create_task(pacer.run())           # in the server's TaskGroup
    player = Player(PromptCache())
    leg = await MediaLeg.open(ports=ports, pacer=pacer)   # leg.port into our SDP
    leg.configure(agreement)               # after offer/answer
    playback = player.play(leg, ["en/welcome"], barge_in=True)
    result = await playback.done
"""

from ivr.media.bridge import ArrivalClock, Bridge, BridgeStatistics
from ivr.media.leg import (
    FrameSource,
    LegStatistics,
    MediaLeg,
    MediaSink,
    Output,
    PlaybackEnd,
)
from ivr.media.pacer import LatenessMeter, LatenessStatistics, Pacer, PacerStatistics
from ivr.media.player import HOLD_MUSIC, Playback, PlaybackResult, Player, Prompt, PromptCache
from ivr.media.ports import PortPool, PortsExhausted
from ivr.media.reception import Latch, Reception
from ivr.media.recorder import Recording, RecordingEnd, RecordingResult

__all__ = [
    "HOLD_MUSIC",
    "ArrivalClock",
    "Bridge",
    "BridgeStatistics",
    "FrameSource",
    "Latch",
    "LatenessMeter",
    "LatenessStatistics",
    "LegStatistics",
    "MediaLeg",
    "MediaSink",
    "Output",
    "Pacer",
    "PacerStatistics",
    "Playback",
    "PlaybackEnd",
    "PlaybackResult",
    "Player",
    "PortPool",
    "PortsExhausted",
    "Prompt",
    "PromptCache",
    "Reception",
    "Recording",
    "RecordingEnd",
    "RecordingResult",
]
