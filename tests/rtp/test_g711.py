"""G.711 µ-law and A-law, checked against the Recommendation.

Known values (the end points and zeros of G.711 Tables 1 and 2, A-law levels
published with a fix to another project's coder), every code decoding and
re-encoding to itself, every 16-bit sample coded to one of the two levels
either side of it, monotonic, and symmetric as the ITU reference coder is;
µ-law ↔ A-law by Tables 3 and 4, whose double conversions G.711 itself
describes; silence; whole frames.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Callable

import pytest

from ivr.rtp.g711 import (
    ALAW_TO_LINEAR,
    FRAME_SAMPLES,
    ULAW_TO_LINEAR,
    Codec,
    alaw_to_ulaw,
    decode_alaw,
    decode_ulaw,
    encode_alaw,
    encode_ulaw,
    ulaw_to_alaw,
)

ALL_SAMPLES = range(-32768, 32768)
ALL_PCM = struct.pack(f"<{len(ALL_SAMPLES)}h", *ALL_SAMPLES)
ALL_CODES = bytes(range(256))


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def samples(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // 2}h", data)


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xEF, 132)],
)
def test_ulaw_codes_decode_to_the_g711_levels(code: int, value: int) -> None:
    assert samples(decode_ulaw(bytes([code]))) == (value,)
    assert ULAW_TO_LINEAR[code] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)],
)
def test_alaw_codes_decode_to_the_g711_levels(code: int, value: int) -> None:
    assert samples(decode_alaw(bytes([code]))) == (value,)
    assert ALAW_TO_LINEAR[code] == value


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [(0, 0xFF, 0xD5), (-1, 0x7F, 0x55), (32767, 0x80, 0xAA), (-32768, 0x00, 0x2A)],
)
def test_zero_and_full_scale_encode_to_the_end_codes(sample: int, ulaw: int, alaw: int) -> None:
    assert encode_ulaw(pcm(sample)) == bytes([ulaw])
    assert encode_alaw(pcm(sample)) == bytes([alaw])


@pytest.mark.parametrize(
    ("sample", "level"),
    [(300, 296), (1000, 1008), (8000, 8064), (16000, 16128), (20000, 19968)],
)
def test_alaw_codes_samples_to_the_published_levels(sample: int, level: int) -> None:
    assert samples(decode_alaw(encode_alaw(pcm(sample)))) == (level,)


def test_every_ulaw_code_but_negative_zero_reencodes_to_itself() -> None:
    again = encode_ulaw(decode_ulaw(ALL_CODES))
    assert [code for code in range(256) if again[code] != code] == [0x7F]
    assert again[0x7F] == 0xFF  # -0 and +0 are both zero


def test_every_alaw_code_reencodes_to_itself() -> None:
    assert encode_alaw(decode_alaw(ALL_CODES)) == ALL_CODES


@pytest.mark.parametrize(
    ("encode", "levels"),
    [(encode_ulaw, ULAW_TO_LINEAR), (encode_alaw, ALAW_TO_LINEAR)],
    ids=["ulaw", "alaw"],
)
def test_every_sample_is_coded_to_a_level_beside_it_and_monotonically(
    encode: Callable[[bytes], bytes], levels: tuple[int, ...]
) -> None:
    coded = [levels[code] for code in encode(ALL_PCM)]
    assert coded == sorted(coded)  # monotonic
    ladder = sorted(set(levels))
    for sample, level in zip(ALL_SAMPLES, coded, strict=True):
        if sample <= ladder[0]:
            assert level == ladder[0]
        elif sample >= ladder[-1]:
            assert level == ladder[-1]
        else:
            above = bisect_left(ladder, sample)
            assert level in (ladder[above - 1], ladder[above])


def test_the_coders_are_symmetric_like_the_itu_reference() -> None:
    # G.191 codes a negative sample from its one's complement: -1 is "-0".
    complements = pcm(*(~sample for sample in ALL_SAMPLES))
    for encode in (encode_ulaw, encode_alaw):
        positive, negative = encode(ALL_PCM), encode(complements)
        assert bytes(code ^ 0x80 for code in positive) == negative


def _ulaw_number(code: int) -> int:
    return (code ^ 0xFF) & 0x7F  # G.711 Table 2: decoder output value number


def _alaw_number(code: int) -> int:
    return ((code ^ 0xD5) & 0x7F) + 1  # G.711 Table 1: decoder output value number


def test_ulaw_to_alaw_follows_table_3() -> None:
    # Worked from Table 3: µ-law 47 is level -4092, number 80, which maps to
    # A-law number 81 (not 80, as a widely copied table has it).
    assert ulaw_to_alaw(bytes([47])) == bytes([5])
    assert ulaw_to_alaw(bytes([0xFF, 0x7F, 0x80, 0x00])) == bytes([0xD5, 0x55, 0xAA, 0x2A])


def test_ulaw_to_alaw_to_ulaw_changes_only_what_g711_says() -> None:
    # G.711 Table 3, note: only numbers 0, 2, ... 14 change, by one, in bit 8.
    again = alaw_to_ulaw(ulaw_to_alaw(ALL_CODES))
    for code in range(256):
        if _ulaw_number(code) in range(0, 16, 2):
            assert again[code] == code ^ 0x01
        else:
            assert again[code] == code


def test_alaw_to_ulaw_to_alaw_changes_only_what_g711_says() -> None:
    # G.711 Table 4, note: only numbers 26, 28, 30, 32, 45, 47, 63 and 80 change, in bit 8.
    again = ulaw_to_alaw(alaw_to_ulaw(ALL_CODES))
    for code in range(256):
        if _alaw_number(code) in (26, 28, 30, 32, 45, 47, 63, 80):
            assert again[code] == code ^ 0x01
        else:
            assert again[code] == code


def test_transcoding_keeps_the_order_of_levels() -> None:
    by_level = sorted(range(256), key=ULAW_TO_LINEAR.__getitem__)
    converted = [ALAW_TO_LINEAR[code] for code in ulaw_to_alaw(bytes(by_level))]
    assert converted == sorted(converted)
    by_level = sorted(range(256), key=ALAW_TO_LINEAR.__getitem__)
    converted = [ULAW_TO_LINEAR[code] for code in alaw_to_ulaw(bytes(by_level))]
    assert converted == sorted(converted)


def test_a_frame_encodes_sample_by_sample() -> None:
    frame = pcm(*range(-16000, 16000, 200))
    assert len(frame) == 2 * FRAME_SAMPLES
    for codec, encode in ((Codec.PCMU, encode_ulaw), (Codec.PCMA, encode_alaw)):
        coded = codec.encode(frame)
        assert len(coded) == FRAME_SAMPLES
        assert coded == b"".join(encode(frame[i : i + 2]) for i in range(0, len(frame), 2))


def test_silence_frames_decode_to_silence() -> None:
    assert Codec.PCMU.silence_frame() == b"\xff" * FRAME_SAMPLES
    assert set(samples(Codec.PCMU.decode(Codec.PCMU.silence_frame()))) == {0}
    assert set(samples(Codec.PCMA.decode(Codec.PCMA.silence_frame(10)))) == {8}
    assert Codec.PCMA.encode(pcm(0, 0)) == b"\xd5\xd5"


def test_codecs_carry_their_static_payload_types() -> None:
    assert (Codec.PCMU.payload_type, Codec.PCMA.payload_type) == (0, 8)
    assert Codec("PCMA") is Codec.PCMA


def test_transcoding_to_the_same_law_is_a_copy() -> None:
    assert Codec.PCMU.transcode(b"\x01\x02", Codec.PCMU) == b"\x01\x02"
    assert Codec.PCMU.transcode(b"\xff", Codec.PCMA) == b"\xd5"
    assert Codec.PCMA.transcode(b"\xd5", Codec.PCMU) == b"\xfe"  # A-law has no zero: +8


def test_odd_length_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="16-bit samples"):
        encode_ulaw(b"\x00\x01\x02")


def test_encoding_takes_any_buffer() -> None:
    assert encode_ulaw(bytearray(pcm(0))) == encode_ulaw(memoryview(pcm(0))) == b"\xff"
