"""The sans-IO media layer: RTP packets and streams, G.711, RFC 4733 DTMF, WAV prompts.

Nothing here opens a socket or reads a clock; the asyncio adapter feeds in
datagrams and times and sends what comes out.
"""

from ivr.rtp.dtmf import (
    DtmfError,
    DtmfReceiver,
    DtmfSender,
    EventPacket,
    KeyPressed,
    TelephoneEvent,
)
from ivr.rtp.g711 import Codec
from ivr.rtp.packet import (
    Arrival,
    HeaderExtension,
    Order,
    RtpError,
    RtpPacket,
    SequenceTracker,
    seq_delta,
    timestamp_delta,
)
from ivr.rtp.stream import RtpStream
from ivr.rtp.wav import WavAudio, WavError, WavFormat, WavRecorder, parse_wav, read_prompt

__all__ = [
    "Arrival",
    "Codec",
    "DtmfError",
    "DtmfReceiver",
    "DtmfSender",
    "EventPacket",
    "HeaderExtension",
    "KeyPressed",
    "Order",
    "RtpError",
    "RtpPacket",
    "RtpStream",
    "SequenceTracker",
    "TelephoneEvent",
    "WavAudio",
    "WavError",
    "WavFormat",
    "WavRecorder",
    "parse_wav",
    "read_prompt",
    "seq_delta",
    "timestamp_delta",
]
