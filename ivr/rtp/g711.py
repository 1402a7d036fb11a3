"""G.711 companding: µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).

Linear audio here is 16-bit signed little-endian PCM, the layout of a WAV
file and of most sound APIs; companded audio is one octet per sample, as it
travels in RTP (RFC 3551 §4.5.14). The 8 kHz sample rate and the 20 ms frame
(160 samples) are the ones phones use.

Every conversion is a table look-up, and the tables are built once, at
import, from the rules of ITU-T G.711:

* decoding: 256 values per law, split into a low-octet and a high-octet
  table so that a whole payload decodes with two ``bytes.translate`` calls
  and no Python loop;
* encoding: a code depends only on the top 14 bits of a sample, so one table
  of 16384 codes per law, widened to 65536 entries so that a frame encodes
  as one ``map`` over the samples (C speed, no per-sample Python code);
* µ-law ↔ A-law: 256-octet tables for ``bytes.translate``, from G.711
  Tables 3 and 4, which are *not* decode-then-encode: they keep a double
  conversion (µ→A→µ, A→µ→A) transparent in the top seven bits.

Encoding follows the ITU's reference coder (G.191, ``g711.c``): a negative
sample takes the one's complement before the shift, so the decision
thresholds are symmetric and ``encode(~x) == encode(x) ^ 0x80``. (The
widespread Sun coder negates instead, and differs on a few negative values.)
"""

from __future__ import annotations

import sys
from array import array
from enum import Enum

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: one octet per sample, so also the payload size
ULAW_SILENCE = 0xFF  # µ-law +0
ALAW_SILENCE = 0xD5  # A-law +8 (A-law has no zero)

_BIAS = 0x84  # µ-law: 33 in 14-bit units, ×4 in 16-bit ones


def _ulaw_value(code: int) -> int:
    """The 16-bit linear value of a µ-law code (G.711 Table 2, ×4)."""
    inverted = ~code & 0xFF  # µ-law codes travel with every bit inverted
    segment = (inverted >> 4) & 0x07
    step = inverted & 0x0F
    magnitude = (((step << 3) + _BIAS) << segment) - _BIAS
    return -magnitude if inverted & 0x80 else magnitude


def _alaw_value(code: int) -> int:
    """The 16-bit linear value of an A-law code (G.711 Table 1, ×8)."""
    code ^= 0x55  # A-law codes travel with the even bits inverted
    segment = (code >> 4) & 0x07
    step = code & 0x0F
    # Segment 0 has the same step as segment 1 but no implied leading bit.
    magnitude = (step << 4) + 8 if segment == 0 else ((step << 4) + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


def _ulaw_code(top14: int) -> int:
    """The µ-law code for a sample whose top 14 bits (two's complement) are ``top14``."""
    negative = top14 < 0
    biased = min((~top14 if negative else top14) + (_BIAS >> 2), 0x1FFF)
    segment = biased.bit_length() - 6  # biased >= 33, so 0..7
    step = (biased >> (segment + 1)) & 0x0F
    return ((segment << 4) | step) ^ (0x7F if negative else 0xFF)


def _alaw_code(top13: int) -> int:
    """The A-law code for a sample whose top 13 bits (two's complement) are ``top13``."""
    negative = top13 < 0
    magnitude = ~top13 if negative else top13  # 0..4095
    segment = max(magnitude.bit_length() - 5, 0)
    step = (magnitude >> max(segment, 1)) & 0x0F
    return ((segment << 4) | step) ^ (0x55 if negative else 0xD5)


def _ulaw_to_alaw_number(number: int) -> int:
    """G.711 Table 3: a µ-law decoder output number (0..127) to an A-law one (1..128)."""
    if number < 16:
        return number // 2 + 1
    if number < 33:
        return number - 7
    if number < 36:
        return 2 * number - 39
    if number < 48:
        return number - 3
    if number < 50:
        return 2 * number - 50
    if number < 64:
        return number - 1
    if number < 80:
        return number
    return number + 1


def _alaw_to_ulaw_number(number: int) -> int:
    """G.711 Table 4: an A-law decoder output number (1..128) to a µ-law one (0..127)."""
    if number < 9:
        return 2 * number - 1
    if number < 25:
        return number + 7
    if number < 33:
        return 32 + (number - 25) // 2
    if number < 45:
        return number + 3
    if number < 49:
        return 48 + (number - 45) // 2
    if number < 64:
        return number + 1
    if number < 80:
        return number
    return number - 1


def _ulaw_to_alaw_code(code: int) -> int:
    inverted = code ^ 0xFF  # sign bit (set: negative) and decoder output number
    number = _ulaw_to_alaw_number(inverted & 0x7F)
    return ((inverted & 0x80) | (number - 1)) ^ 0xD5


def _alaw_to_ulaw_code(code: int) -> int:
    plain = code ^ 0xD5  # sign bit (set: negative) and decoder output number - 1
    number = _alaw_to_ulaw_number((plain & 0x7F) + 1)
    return ((plain & 0x80) | number) ^ 0xFF


def _widen(codes: bytes) -> tuple[int, ...]:
    """A 16384-entry table indexed by ``sample >> 2`` as one indexed by the unsigned sample.

    A tuple rather than bytes: its ``__getitem__`` is the faster one under ``map``.
    """
    table = bytearray(65536)
    for low_bits in range(4):
        table[low_bits::4] = codes
    return tuple(table)


def _top14(index: int) -> int:
    return index - 16384 if index >= 8192 else index


ULAW_TO_LINEAR: tuple[int, ...] = tuple(_ulaw_value(code) for code in range(256))
ALAW_TO_LINEAR: tuple[int, ...] = tuple(_alaw_value(code) for code in range(256))

_ULAW_LOW = bytes(value & 0xFF for value in ULAW_TO_LINEAR)
_ULAW_HIGH = bytes((value >> 8) & 0xFF for value in ULAW_TO_LINEAR)
_ALAW_LOW = bytes(value & 0xFF for value in ALAW_TO_LINEAR)
_ALAW_HIGH = bytes((value >> 8) & 0xFF for value in ALAW_TO_LINEAR)
_ULAW_ENCODE = _widen(bytes(_ulaw_code(_top14(index)) for index in range(16384)))
_ALAW_ENCODE = _widen(bytes(_alaw_code(_top14(index) >> 1) for index in range(16384)))
_ULAW_TO_ALAW = bytes(_ulaw_to_alaw_code(code) for code in range(256))
_ALAW_TO_ULAW = bytes(_alaw_to_ulaw_code(code) for code in range(256))

_BIG_ENDIAN = sys.byteorder == "big"


def _samples(pcm: bytes | bytearray | memoryview) -> memoryview | array[int]:
    """The samples of little-endian 16-bit PCM as unsigned integers (table indexes)."""
    if len(pcm) % 2:
        raise ValueError(f"{len(pcm)} octets is not a whole number of 16-bit samples")
    if _BIG_ENDIAN:
        samples = array("H", bytes(pcm))
        samples.byteswap()
        return samples
    return memoryview(pcm).cast("B").cast("H")


def _expand(data: bytes | bytearray | memoryview, low: bytes, high: bytes) -> bytes:
    data = bytes(data)
    pcm = bytearray(2 * len(data))
    pcm[0::2] = data.translate(low)
    pcm[1::2] = data.translate(high)
    return bytes(pcm)


def encode_ulaw(pcm: bytes | bytearray | memoryview) -> bytes:
    """µ-law codes for 16-bit little-endian PCM; ``ValueError`` on an odd length."""
    return bytes(map(_ULAW_ENCODE.__getitem__, _samples(pcm)))


def encode_alaw(pcm: bytes | bytearray | memoryview) -> bytes:
    """A-law codes for 16-bit little-endian PCM; ``ValueError`` on an odd length."""
    return bytes(map(_ALAW_ENCODE.__getitem__, _samples(pcm)))


def decode_ulaw(data: bytes | bytearray | memoryview) -> bytes:
    """16-bit little-endian PCM for µ-law codes."""
    return _expand(data, _ULAW_LOW, _ULAW_HIGH)


def decode_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """16-bit little-endian PCM for A-law codes."""
    return _expand(data, _ALAW_LOW, _ALAW_HIGH)


def ulaw_to_alaw(data: bytes | bytearray | memoryview) -> bytes:
    """A-law codes for µ-law ones, by G.711 Table 3."""
    return bytes(data).translate(_ULAW_TO_ALAW)


def alaw_to_ulaw(data: bytes | bytearray | memoryview) -> bytes:
    """µ-law codes for A-law ones, by G.711 Table 4."""
    return bytes(data).translate(_ALAW_TO_ULAW)


class Codec(Enum):
    """The two G.711 laws, by their RTP encoding names (RFC 3551 §6)."""

    __hash__ = object.__hash__

    PCMU = "PCMU"
    PCMA = "PCMA"

    @property
    def payload_type(self) -> int:
        """The static RTP payload type (RFC 3551 Table 4)."""
        return 0 if self is Codec.PCMU else 8

    @property
    def silence(self) -> int:
        """The code of a zero sample."""
        return ULAW_SILENCE if self is Codec.PCMU else ALAW_SILENCE

    def silence_frame(self, samples: int = FRAME_SAMPLES) -> bytes:
        """A payload of ``samples`` silent samples (20 ms by default)."""
        return bytes((self.silence,)) * samples

    def encode(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Codes for 16-bit little-endian PCM."""
        return encode_ulaw(pcm) if self is Codec.PCMU else encode_alaw(pcm)

    def decode(self, data: bytes | bytearray | memoryview) -> bytes:
        """16-bit little-endian PCM for codes of this law."""
        return decode_ulaw(data) if self is Codec.PCMU else decode_alaw(data)

    def transcode(self, data: bytes | bytearray | memoryview, target: Codec) -> bytes:
        """Codes of this law as codes of ``target`` (a copy when the laws match)."""
        if target is self:
            return bytes(data)
        return ulaw_to_alaw(data) if self is Codec.PCMU else alaw_to_ulaw(data)
