"""WAV files: prompts read into 20 ms payloads of the agreed codec, messages recorded.

Each of the three formats reads back as written and converts to either law;
the last frame is padded with that law's silence; anything not 8 kHz mono,
or not PCM/A-law/µ-law, is a clear WavError; unknown chunks, odd chunk sizes,
the extensible format and a header never patched are coped with; arbitrary
bytes raise nothing but WavError. The recorder's files are read back by this
module and PCM ones by the standard library.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.rtp.g711 import Codec, alaw_to_ulaw, encode_alaw, encode_ulaw
from ivr.rtp.wav import (
    WavAudio,
    WavError,
    WavFormat,
    WavRecorder,
    parse_wav,
    prompt_frames,
    read_prompt,
    serialize_wav,
    write_wav,
)

TONE = struct.pack("<400h", *((i * 97) % 20000 - 10000 for i in range(400)))  # 50 ms


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(tag: int, *, channels: int = 1, rate: int = 8000, bits: int = 8) -> bytes:
    width = bits // 8
    return chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, rate * width, width, bits))


@pytest.mark.parametrize("kind", list(WavFormat))
def test_each_format_reads_back_as_written(kind: WavFormat) -> None:
    data = TONE if kind is WavFormat.PCM else TONE[:400]
    audio = WavAudio(format=kind, data=data)
    assert parse_wav(serialize_wav(audio)) == audio


def test_a_ulaw_prompt_becomes_frames_of_either_law() -> None:
    codes = encode_ulaw(TONE)
    audio = parse_wav(serialize_wav(WavAudio(format=WavFormat.ULAW, data=codes)))
    frames = prompt_frames(audio, Codec.PCMU)
    assert [len(frame) for frame in frames] == [160, 160, 160]
    assert b"".join(frames) == codes + b"\xff" * 80  # padded with µ-law silence
    alaw = b"".join(prompt_frames(audio, Codec.PCMA))
    assert alaw[:400] == Codec.PCMU.transcode(codes, Codec.PCMA)
    assert alaw[400:] == b"\xd5" * 80  # padded with A-law silence


def test_an_alaw_prompt_is_transcoded_by_the_g711_tables() -> None:
    codes = encode_alaw(TONE)
    audio = WavAudio(format=WavFormat.ALAW, data=codes)
    assert b"".join(prompt_frames(audio, Codec.PCMU))[:400] == alaw_to_ulaw(codes)


def test_a_pcm_prompt_is_encoded() -> None:
    audio = WavAudio(format=WavFormat.PCM, data=TONE)
    assert b"".join(prompt_frames(audio, Codec.PCMA))[:400] == encode_alaw(TONE)


@pytest.mark.parametrize(
    ("rate", "channels", "complaint"),
    [(16000, 1, "not 16000 Hz"), (8000, 2, "with 2 channels"), (44100, 2, "44100 Hz")],
)
def test_a_prompt_not_8khz_mono_is_refused_clearly(
    rate: int, channels: int, complaint: str
) -> None:
    audio = WavAudio(format=WavFormat.ULAW, data=b"\xff" * 320, sample_rate=rate, channels=channels)
    with pytest.raises(WavError, match=complaint):
        prompt_frames(parse_wav(serialize_wav(audio)), Codec.PCMU)


@pytest.mark.parametrize(
    ("blob", "complaint"),
    [
        (b"", "not a RIFF"),
        (b"RIFX\0\0\0\0WAVE", "not a RIFF"),
        (riff(chunk(b"data", b"\xff" * 4)), "no 'fmt '"),
        (riff(fmt(7)), "no 'data'"),
        (riff(fmt(3, bits=32), chunk(b"data", b"\0" * 8)), "format tag 3"),
        (riff(fmt(1, bits=8), chunk(b"data", b"\0" * 8)), "8 bits"),
        (riff(fmt(7, bits=16), chunk(b"data", b"\0" * 8)), "16 bits"),
        (riff(chunk(b"fmt ", b"\x07\x00"), chunk(b"data", b"")), "too short"),
        (riff(fmt(7, channels=0), chunk(b"data", b"")), "0 channels"),
    ],
)
def test_files_that_are_not_usable_are_a_wav_error(blob: bytes, complaint: str) -> None:
    with pytest.raises(WavError, match=complaint):
        parse_wav(blob)


def test_other_chunks_and_odd_sizes_are_skipped() -> None:
    blob = riff(
        chunk(b"LIST", b"INFOabc"), fmt(7), chunk(b"junk", b"x"), chunk(b"data", b"\x01\x02")
    )
    assert parse_wav(blob).data == b"\x01\x02"


def test_the_extensible_format_is_read_by_its_sub_format() -> None:
    guid = struct.pack("<H", 7) + bytes.fromhex("00001000800000aa00389b71")
    extension = struct.pack("<HHI", 22, 8, 4) + guid
    body = struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 8000, 1, 8) + extension
    audio = parse_wav(riff(chunk(b"fmt ", body), chunk(b"data", b"\x7f" * 10)))
    assert (audio.format, audio.data) == (WavFormat.ULAW, b"\x7f" * 10)


def test_a_header_never_patched_reads_to_the_end_of_the_file() -> None:
    blob = riff(fmt(1, bits=16)) + b"data" + struct.pack("<I", 0xFFFFFFFF) + TONE[:101]
    assert parse_wav(blob).data == TONE[:100]  # the torn last sample dropped


@given(st.binary(max_size=120))
def test_arbitrary_bytes_are_read_or_refused_with_a_wav_error(blob: bytes) -> None:
    for candidate in (blob, riff(blob[:60], blob[60:]), riff(fmt(7), blob)):
        try:
            audio = parse_wav(candidate)
        except WavError:
            continue
        assert parse_wav(serialize_wav(audio)) == audio


def test_a_recorded_message_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "message.wav"
    with WavRecorder.create(path, Codec.PCMA) as recorder:
        for frame in (b"\x01" * 160, b"\x02" * 160, b"\x03" * 7):
            recorder.write(frame)
        assert recorder.samples == 327
    blob = path.read_bytes()
    assert len(blob) % 2 == 0  # the odd data chunk is padded
    assert struct.unpack_from("<I", blob, 4)[0] == len(blob) - 8
    audio = parse_wav(blob)
    assert (audio.format, audio.sample_rate, audio.channels) == (WavFormat.ALAW, 8000, 1)
    assert audio.data == b"\x01" * 160 + b"\x02" * 160 + b"\x03" * 7
    assert blob[38:46] == b"fact" + struct.pack("<I", 4)
    assert struct.unpack_from("<I", blob, 46)[0] == 327


def test_closing_a_recorder_twice_is_harmless() -> None:
    buffer = io.BytesIO()
    recorder = WavRecorder(buffer, Codec.PCMU)
    recorder.write(b"\xff" * 160)
    recorder.close()
    recorder.close()
    assert buffer.closed


def test_prompt_files_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "welcome.wav"
    write_wav(path, WavAudio(format=WavFormat.ULAW, data=b"\x10" * 320))
    assert read_prompt(path, Codec.PCMU) == (b"\x10" * 160, b"\x10" * 160)


def test_our_pcm_files_are_what_the_standard_library_reads() -> None:
    blob = serialize_wav(WavAudio(format=WavFormat.PCM, data=TONE))
    with wave.open(io.BytesIO(blob)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert reader.readframes(1000) == TONE


def test_files_from_the_standard_library_read_here() -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(TONE)
    audio = parse_wav(buffer.getvalue())
    assert (audio.format, audio.data) == (WavFormat.PCM, TONE)
