"""WAV files (RIFF/WAVE) of telephone audio: prompts read into RTP payloads, messages recorded.

Prompts ship as 8 kHz mono WAV files in µ-law (format tag 7), A-law (6) or
16-bit PCM (1); ``prompt_frames`` turns one into the 20 ms payloads of the
codec a call agreed on, converting between laws by the G.711 tables and
padding the last frame with silence. Any other rate, channel count or format
is refused with a ``WavError`` saying what was found, since resampling is not
this module's job. The standard library's ``wave`` only speaks PCM, hence the
small chunk parser here: RIFF header, then chunks (id, little-endian size,
body, a pad octet after an odd size); ``fmt `` and ``data`` are read, any
other chunk (``fact``, ``LIST``...) skipped. A ``data`` size larger than the
file, as left by a recorder that died before patching its header, is taken
to mean "to the end of the file".

``WavRecorder`` writes a caller's message as it arrives, one payload at a
time, and patches the sizes in the header when closed. G.711 files get the
18-octet ``fmt `` and the ``fact`` chunk the WAVE format asks of non-PCM data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from ivr.rtp.g711 import FRAME_SAMPLES, SAMPLE_RATE, Codec

_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_FMT_EXTENSIBLE = 0xFFFE


class WavError(ValueError):
    """A file that is not a WAV file this module can read, or one in an unusable format."""


class WavFormat(Enum):
    """The WAVE format tags of telephone audio."""

    PCM = 1  # 16-bit signed little-endian samples
    ALAW = 6
    ULAW = 7

    @property
    def sample_width(self) -> int:
        """Octets per sample."""
        return 2 if self is WavFormat.PCM else 1

    @classmethod
    def of(cls, codec: Codec) -> WavFormat:
        """The format that stores ``codec`` payloads as they are."""
        return cls.ULAW if codec is Codec.PCMU else cls.ALAW


@dataclass(frozen=True, slots=True, kw_only=True)
class WavAudio:
    """The audio in a WAV file: its format and its samples as stored."""

    format: WavFormat
    data: bytes  # interleaved samples: G.711 codes, or 16-bit little-endian PCM
    sample_rate: int = SAMPLE_RATE
    channels: int = 1


def parse_wav(blob: bytes | bytearray | memoryview) -> WavAudio:
    """The audio in a WAV file's contents; ``WavError`` when they are not a usable WAV file."""
    blob = bytes(blob)
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    fmt: bytes | None = None
    data: bytes | None = None
    position = 12
    while position + _CHUNK.size <= len(blob):
        chunk_id, size = _CHUNK.unpack_from(blob, position)
        body = blob[position + _CHUNK.size : position + _CHUNK.size + size]
        if chunk_id == b"fmt " and fmt is None:
            fmt = body
        elif chunk_id == b"data" and data is None:
            data = body  # cut short by the end of the file if its size overstates it
        position += _CHUNK.size + size + (size & 1)
    if fmt is None:
        raise WavError("no 'fmt ' chunk")
    if data is None:
        raise WavError("no 'data' chunk")
    return _audio(fmt, data)


def _audio(fmt: bytes, data: bytes) -> WavAudio:
    if len(fmt) < _FMT.size:
        raise WavError(f"a 'fmt ' chunk of {len(fmt)} octets is too short")
    tag, channels, sample_rate, _, _, bits = _FMT.unpack_from(fmt)
    if tag == _FMT_EXTENSIBLE:
        # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
        if len(fmt) < 26:
            raise WavError("an extensible 'fmt ' chunk without its sub-format")
        (tag,) = struct.unpack_from("<H", fmt, 24)
    try:
        kind = WavFormat(tag)
    except ValueError:
        raise WavError(f"format tag {tag} is not PCM, A-law or µ-law") from None
    if bits != 8 * kind.sample_width:
        raise WavError(f"{kind.name} with {bits} bits per sample is not supported")
    if channels < 1 or sample_rate < 1:
        raise WavError(f"{channels} channels at {sample_rate} Hz")
    frame = kind.sample_width * channels
    return WavAudio(
        format=kind,
        data=data[: len(data) - len(data) % frame],  # drop a torn last sample
        sample_rate=sample_rate,
        channels=channels,
    )


def serialize_wav(audio: WavAudio) -> bytes:
    """The contents of a WAV file holding ``audio``."""
    return _header(audio.format, len(audio.data), audio.sample_rate, audio.channels) + (
        audio.data + b"\0" * (len(audio.data) & 1)
    )


def _header(kind: WavFormat, data_size: int, sample_rate: int, channels: int) -> bytes:
    width = kind.sample_width
    fmt = _FMT.pack(
        kind.value,
        channels,
        sample_rate,
        sample_rate * channels * width,
        channels * width,
        8 * width,
    )
    chunks = [b""]
    if kind is not WavFormat.PCM:
        fmt += b"\0\0"  # cbSize: no extra format bytes
        chunks.append(_CHUNK.pack(b"fact", 4) + struct.pack("<I", data_size // channels))
    chunks[0] = _CHUNK.pack(b"fmt ", len(fmt)) + fmt
    chunks.append(_CHUNK.pack(b"data", data_size))
    body = b"".join(chunks)
    riff_size = 4 + len(body) + data_size + (data_size & 1)
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + body


def prompt_frames(
    audio: WavAudio, codec: Codec, *, frame_samples: int = FRAME_SAMPLES
) -> tuple[bytes, ...]:
    """``audio`` as ``codec`` payloads of ``frame_samples`` samples, the last padded with silence.

    ``WavError`` unless the audio is 8 kHz mono.
    """
    if audio.sample_rate != SAMPLE_RATE or audio.channels != 1:
        raise WavError(
            f"prompts must be {SAMPLE_RATE} Hz mono, not {audio.sample_rate} Hz "
            f"with {audio.channels} channels"
        )
    if audio.format is WavFormat.PCM:
        codes = codec.encode(audio.data)
    else:
        codes = (Codec.PCMU if audio.format is WavFormat.ULAW else Codec.PCMA).transcode(
            audio.data, codec
        )
    short = -len(codes) % frame_samples
    codes += codec.silence_frame(short)
    return tuple(codes[i : i + frame_samples] for i in range(0, len(codes), frame_samples))


def read_prompt(path: str | Path, codec: Codec) -> tuple[bytes, ...]:
    """The 20 ms ``codec`` payloads of the 8 kHz mono WAV file at ``path``."""
    return prompt_frames(parse_wav(Path(path).read_bytes()), codec)


def write_wav(path: str | Path, audio: WavAudio) -> None:
    """Write ``audio`` to a WAV file at ``path``."""
    Path(path).write_bytes(serialize_wav(audio))


class WavRecorder:
    """Writes 8 kHz mono G.711 payloads to a WAV file as they arrive; a context manager."""

    __slots__ = ("_file", "_size", "format")

    def __init__(self, file: BinaryIO, codec: Codec) -> None:
        """Record into ``file``, open for binary writing and seekable, at its start."""
        self._file = file
        self.format = WavFormat.of(codec)
        self._size = 0
        file.write(_header(self.format, 0, SAMPLE_RATE, 1))

    @classmethod
    def create(cls, path: str | Path, codec: Codec) -> WavRecorder:
        """A recorder writing a new file at ``path``."""
        return cls(Path(path).open("wb"), codec)

    @property
    def samples(self) -> int:
        """How many samples have been written."""
        return self._size

    def write(self, payload: bytes) -> None:
        """Append one payload of codes in the recorder's law."""
        self._file.write(payload)
        self._size += len(payload)

    def close(self) -> None:
        """Pad, patch the header's sizes, and close the file."""
        if self._file.closed:
            return
        if self._size & 1:
            self._file.write(b"\0")
        self._file.seek(0)
        self._file.write(_header(self.format, self._size, SAMPLE_RATE, 1))
        self._file.close()

    def __enter__(self) -> WavRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
