"""The prompt catalogue: which recorded prompts exist, in which languages, saying what.

Theory of operation. ``ivr/prompts/prompts.yaml`` lists every prompt by
language with its text, and the language-neutral tones (the beep, music on
hold). ``scripts/make_prompts.py`` generates one WAV per entry from it; flows
are validated against it at load time, and the announcement builder only
names prompts it holds.

A prompt is referred to in one of three ways, and all three become one
*reference*, a path under ``ivr/prompts/`` without the ``.wav``:

- a bare name (``main_menu``): the call's current language picks the folder,
  ``en/main_menu``;
- a qualified name (``es/language_choice``): always that language, for the
  bilingual greeting and language menu, played before a language is chosen;
- a tone's name (``beep``): no language at all.

So an adapter plays ``PROMPTS_DIR / f"{ref}.wav"`` without knowing languages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml

from acd.ids import Language

PROMPTS_DIR = Path(__file__).parent / "prompts"
CATALOGUE_PATH = PROMPTS_DIR / "prompts.yaml"


class CatalogueError(ValueError):
    """The catalogue file is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptCatalogue:
    """Every prompt's text by language, the voice each language is spoken in, and the tones."""

    voices: Mapping[Language, str]  # language -> espeak-ng voice
    texts: Mapping[Language, Mapping[str, str]]  # language -> prompt name -> text
    tones: Mapping[str, str]  # tone name -> what it sounds like

    @property
    def languages(self) -> frozenset[Language]:
        return frozenset(self.texts)

    def qualify(self, name: str, language: Language) -> str:
        """The reference a flow's prompt name stands for when the call speaks ``language``."""
        return qualify(name, language, frozenset(self.tones))

    def has(self, ref: str) -> bool:
        """Whether ``ref`` (``en/welcome`` or a tone such as ``beep``) is a catalogued prompt."""
        if ref in self.tones:
            return True
        language, _, name = ref.partition("/")
        return name in self.texts.get(Language(language), {})

    def refs(self) -> Iterator[str]:
        """Every prompt's reference: each language's prompts, then the tones."""
        for language, texts in self.texts.items():
            for name in texts:
                yield f"{language}/{name}"
        yield from self.tones


def qualify(name: str, language: Language, tones: frozenset[str]) -> str:
    """``main_menu`` -> ``en/main_menu``; ``es/x`` and tones stay as they are."""
    if "/" in name or name in tones:
        return name
    return f"{language}/{name}"


def prompt_path(ref: str, root: Path = PROMPTS_DIR) -> Path:
    """The WAV file a reference names."""
    return root / f"{ref}.wav"


def load_catalogue(path: Path = CATALOGUE_PATH) -> PromptCatalogue:
    """Read and check the catalogue file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) != {"voices", "tones", "prompts"}:
        raise CatalogueError(f"{path}: expected exactly the keys voices, tones and prompts")
    voices = _strings(data["voices"], f"{path}: voices")
    tones = _strings(data["tones"], f"{path}: tones")
    prompts = data["prompts"]
    if not isinstance(prompts, dict):
        raise CatalogueError(f"{path}: prompts: expected a mapping of language to prompts")
    texts: dict[Language, Mapping[str, str]] = {}
    for language, entries in prompts.items():
        where = f"{path}: prompts.{language}"
        if language not in voices:
            raise CatalogueError(f"{where}: no voice for this language")
        names = _strings(entries, where)
        for name in names:
            if "/" in name or name in tones:
                raise CatalogueError(f"{where}.{name}: a prompt name may not be a tone or hold '/'")
        texts[Language(language)] = MappingProxyType(names)
    return PromptCatalogue(
        voices=MappingProxyType({Language(k): v for k, v in voices.items()}),
        texts=MappingProxyType(texts),
        tones=MappingProxyType(tones),
    )


def _strings(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        raise CatalogueError(f"{where}: expected a mapping of names to non-empty text")
    return dict(value)
