"""The shipped prompts: one playable file per catalogue entry, in the format RTP sends.

These read the files kept in the repository, so they need neither espeak-ng
nor sox. Each file's RIFF header is parsed here with the standard library
(``wave`` reads only PCM): it must say G.711 µ-law (format 7), 8000 Hz, mono,
8 bits a sample, and hold a data chunk of a sensible length.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivr.catalogue import PROMPTS_DIR, load_catalogue, prompt_path

CATALOGUE = load_catalogue()
REFS = sorted(CATALOGUE.refs())
WAVE_FORMAT_MULAW = 7  # RFC 2361, appendix A
MAX_TOTAL_BYTES = 3_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class WavFormat:
    """What a WAV file's fmt and data chunks say."""

    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    bits_per_sample: int
    data_bytes: int

    @property
    def seconds(self) -> float:
        return self.data_bytes / self.byte_rate


def read_wav_format(path: Path) -> WavFormat:
    """Walk the RIFF chunks (each padded to an even length) for fmt and data."""
    blob = path.read_bytes()
    riff, size, wave = struct.unpack_from("<4sI4s", blob, 0)
    assert (riff, wave) == (b"RIFF", b"WAVE"), f"{path}: not a RIFF/WAVE file"
    assert size + 8 == len(blob), f"{path}: RIFF size {size} does not match the file"
    offset, fmt, data_bytes = 12, None, None
    while offset + 8 <= len(blob):
        chunk, length = struct.unpack_from("<4sI", blob, offset)
        body = offset + 8
        assert body + length <= len(blob), f"{path}: chunk {chunk!r} runs past the end"
        if chunk == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", blob, body)
        elif chunk == b"data":
            data_bytes = length
        offset = body + length + (length & 1)
    assert fmt is not None and data_bytes is not None, f"{path}: no fmt or no data chunk"
    tag, channels, rate, byte_rate, align, bits = fmt
    return WavFormat(
        format_tag=tag,
        channels=channels,
        sample_rate=rate,
        byte_rate=byte_rate,
        block_align=align,
        bits_per_sample=bits,
        data_bytes=data_bytes,
    )


def test_every_language_has_a_voice_and_some_prompts() -> None:
    assert CATALOGUE.languages == {"en", "es"}
    assert set(CATALOGUE.voices) == CATALOGUE.languages
    assert {"beep", "moh"} <= set(CATALOGUE.tones)


def test_every_catalogue_entry_has_its_file() -> None:
    missing = [ref for ref in REFS if not prompt_path(ref).is_file()]
    assert missing == []


def test_no_audio_file_is_left_over_from_an_entry_that_is_gone() -> None:
    files = {
        p.relative_to(PROMPTS_DIR).with_suffix("").as_posix() for p in PROMPTS_DIR.rglob("*.wav")
    }
    assert files == set(REFS)


@pytest.mark.parametrize("ref", REFS)
def test_each_prompt_is_8_khz_mono_mu_law_of_a_sensible_length(ref: str) -> None:
    wav = read_wav_format(prompt_path(ref))
    assert (wav.format_tag, wav.channels, wav.sample_rate) == (WAVE_FORMAT_MULAW, 1, 8000)
    assert (wav.bits_per_sample, wav.block_align, wav.byte_rate) == (8, 1, 8000)
    longest = 30.0 if ref == "moh" else 15.0
    assert 0.1 < wav.seconds < longest


def test_music_on_hold_is_a_loop_of_several_seconds_and_the_beep_is_short() -> None:
    assert 5.0 <= read_wav_format(prompt_path("moh")).seconds <= 30.0
    assert read_wav_format(prompt_path("beep")).seconds < 1.0


def test_a_number_fragment_is_short_enough_to_string_together() -> None:
    fragments = [ref for ref in REFS if ref.split("/")[-1].startswith("num_")]
    assert len(fragments) > 50
    assert all(read_wav_format(prompt_path(ref)).seconds < 1.5 for ref in fragments)


def test_all_the_audio_together_stays_small_enough_to_keep_in_the_repository() -> None:
    total = sum(p.stat().st_size for p in PROMPTS_DIR.rglob("*.wav"))
    assert total < MAX_TOTAL_BYTES
