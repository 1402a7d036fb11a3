#!/usr/bin/env python3
"""Generate the IVR's prompts from the catalogue: 8 kHz mono G.711 µ-law WAV files.

    .venv/bin/python scripts/make_prompts.py            # (re)write ivr/prompts/
    .venv/bin/python scripts/make_prompts.py --check    # compare, write nothing

Needs espeak-ng and sox (Debian: ``apt-get install espeak-ng sox``); the
tests and the server do not, since the files are kept in the repository.

Each spoken prompt of ``ivr/prompts/prompts.yaml`` is said by espeak-ng in the
language's voice, then sox trims the silence at both ends, leaves a short
pause either side (so fragments strung together do not run into each other),
normalises the level and converts to 8 kHz mono µ-law, G.711 as RTP carries
it (RFC 3551 §4.5.14, PCMU). The tones are made by sox's synthesiser: a beep,
and a loop of four soft chords for music on hold.

The output is deterministic: espeak-ng has no randomness, and sox runs in
repeatable mode (``-R``: fixed seeds) without dither (``-D``), which would
otherwise add noise drawn at random. ``--check`` regenerates everything into a
temporary folder and compares bytes, so it both finds stale files and proves
that a second run gives the same output.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.catalogue import CATALOGUE_PATH, PROMPTS_DIR, PromptCatalogue, load_catalogue  # noqa: E402

WORDS_PER_MINUTE = "150"  # a little slower than espeak's 175: callers listen on a phone
PAUSE_SECONDS = "0.05"  # kept before and after each trimmed prompt
LEVEL_DB = "-4"  # peak level after normalising: clear without clipping
# sox output options for PCMU: 8 kHz, mono, µ-law (the WAV header says 8-bit).
ULAW = ["-r", "8000", "-c", "1", "-e", "u-law"]
# Silence at either end: below 0.5 % of full scale for 20 ms counts as silence.
TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
# Then a short pause either side, and the level normalised.
SHAPE = ["pad", PAUSE_SECONDS, PAUSE_SECONDS, "gain", "-n", LEVEL_DB]
# The beep before a message: 1 kHz for 0.4 s, faded in and out against clicks.
BEEP = ["synth", "0.4", "sine", "1000", "fade", "0.01", "0.4", "0.01", "gain", "-8"]

# Music on hold: C, A minor, F, G major triads (C4 voicings), 2.5 s each,
# fading in and out so the loop joins without a click.
CHORDS = [
    (261.63, 329.63, 392.00),
    (220.00, 261.63, 329.63),
    (174.61, 220.00, 261.63),
    (196.00, 246.94, 293.66),
]
CHORD_SECONDS = 2.5


def sox(*args: str) -> None:
    subprocess.run(["sox", "-R", "-D", "-V1", *args], check=True)


def speak(text: str, voice: str, out: Path, work: Path) -> None:
    raw = work / "espeak.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", WORDS_PER_MINUTE, "-w", str(raw), text], check=True
    )
    sox(str(raw), *ULAW, str(out), *TRIM, *SHAPE)


def beep(out: Path) -> None:
    sox("-n", *ULAW, str(out), *BEEP)


def music_on_hold(out: Path, work: Path) -> None:
    parts = []
    for i, chord in enumerate(CHORDS):
        part = work / f"chord{i}.wav"
        tones = [arg for f in chord for arg in ("sine", f"{f:.2f}")]
        sox(
            "-n", "-r", "8000", "-c", "3", str(part),
            "synth", str(CHORD_SECONDS), *tones,
            "remix", "-", "fade", "q", "0.4", str(CHORD_SECONDS), "0.8",
        )  # fmt: skip
        parts.append(str(part))
    sox(*parts, *ULAW, str(out), "gain", "-n", "-14")


def generate(catalogue: PromptCatalogue, out_dir: Path) -> list[Path]:
    """Write every prompt and tone under ``out_dir``; return the files written."""
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for language, texts in catalogue.texts.items():
            folder = out_dir / language
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in texts.items():
                target = folder / f"{name}.wav"
                speak(text, catalogue.voices[language], target, work)
                written.append(target)
        for tone in catalogue.tones:
            target = out_dir / f"{tone}.wav"
            if tone == "beep":
                beep(target)
            elif tone == "moh":
                music_on_hold(target, work)
            else:
                raise SystemExit(f"no recipe for the tone {tone!r}: add one to {__file__}")
            written.append(target)
    return written


def existing(out_dir: Path) -> set[Path]:
    return set(out_dir.rglob("*.wav"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE_PATH)
    parser.add_argument("--out", type=Path, default=PROMPTS_DIR)
    parser.add_argument("--check", action="store_true", help="compare with --out; write nothing")
    args = parser.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (Debian: apt-get install espeak-ng sox)")
    catalogue = load_catalogue(args.catalogue)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp)
            made = {p.relative_to(fresh) for p in generate(catalogue, fresh)}
            kept = {p.relative_to(args.out) for p in existing(args.out)}
            problems = [f"missing: {p}" for p in sorted(made - kept)]
            problems += [f"not in the catalogue: {p}" for p in sorted(kept - made)]
            problems += [
                f"differs: {p}"
                for p in sorted(made & kept)
                if not filecmp.cmp(fresh / p, args.out / p, shallow=False)
            ]
        print("\n".join(problems) or f"{len(made)} prompts up to date")
        return 1 if problems else 0
    written = generate(catalogue, args.out)
    for stale in existing(args.out) - set(written):
        stale.unlink()
        print(f"removed {stale.relative_to(args.out)}: not in the catalogue")
    size = sum(p.stat().st_size for p in written)
    print(f"{len(written)} prompts, {size / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
