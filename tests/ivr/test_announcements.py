"""The wait announcement: position and wait said with recorded number fragments.

Numbers are checked two ways: the fragments chosen (by name), and the words
they say once the catalogue's texts are read out, which is what the caller
hears. Every position 1-999 and every wait must name only recorded prompts,
in both languages.
"""

from __future__ import annotations

import pytest

from acd.actions import PlayAnnouncement
from acd.ids import CallId, Language
from ivr.announcements import (
    announcement_prompts,
    digit_prompts,
    number_prompts,
    prompts_for,
    wait_names,
)
from ivr.catalogue import load_catalogue

CATALOGUE = load_catalogue()
EN, ES = Language("en"), Language("es")
LANGUAGES = [EN, ES]


def said(refs: tuple[str, ...]) -> str:
    """The words a sequence of prompts says, from the catalogue's texts."""
    words = []
    for ref in refs:
        language, _, name = ref.partition("/")
        words.append(CATALOGUE.texts[Language(language)][name].rstrip("."))
    return " ".join(words)


def say_number(language: Language, number: int, *, before_noun: bool = False) -> str:
    return said(number_prompts(language, number, before_noun=before_noun))


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (1, "one"),
        (13, "thirteen"),
        (20, "twenty"),
        (21, "twenty one"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (110, "one hundred ten"),
        (342, "three hundred forty two"),
        (999, "nine hundred ninety nine"),
    ],
)
def test_english_numbers_say_units_teens_tens_and_hundreds(number: int, words: str) -> None:
    assert say_number(EN, number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (1, "uno"),
        (16, "dieciséis"),
        (21, "veintiuno"),
        (29, "veintinueve"),
        (30, "treinta"),
        (31, "treinta y uno"),
        (100, "cien"),
        (101, "ciento uno"),
        (121, "ciento veintiuno"),
        (200, "doscientos"),
        (555, "quinientos cincuenta y cinco"),
        (700, "setecientos"),
        (999, "novecientos noventa y nueve"),
    ],
)
def test_spanish_numbers_follow_spanish_grammar(number: int, words: str) -> None:
    assert say_number(ES, number) == words


@pytest.mark.parametrize(
    ("number", "words"),
    [(1, "un"), (21, "veintiún"), (31, "treinta y un"), (41, "cuarenta y un"), (22, "veintidós")],
)
def test_spanish_uno_shortens_before_a_noun(number: int, words: str) -> None:
    assert say_number(ES, number, before_noun=True) == words


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_number_from_0_to_999_is_said_with_recorded_fragments_only(
    language: Language,
) -> None:
    for number in range(1000):
        for before_noun in (False, True):
            refs = number_prompts(language, number, before_noun=before_noun)
            assert refs and all(CATALOGUE.has(ref) for ref in refs), (number, refs)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_two_positions_sound_the_same(language: Language) -> None:
    spoken = {said(number_prompts(language, n)) for n in range(1, 1000)}
    assert len(spoken) == 999


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_position_and_wait_names_only_recorded_prompts(language: Language) -> None:
    waits = [None, *range(0, 4000, 7), 3600, 3600.5]
    for position in range(1, 1000):
        ewt = waits[position % len(waits)]
        refs = announcement_prompts(
            language, position=position, ewt_seconds=ewt, offer_callback=True
        )
        assert all(CATALOGUE.has(ref) for ref in refs), (position, ewt, refs)
    for ewt in waits:
        refs = announcement_prompts(language, position=1, ewt_seconds=ewt, offer_callback=False)
        assert all(CATALOGUE.has(ref) for ref in refs), (ewt, refs)


def test_a_caller_hears_their_position_then_their_wait() -> None:
    refs = announcement_prompts(EN, position=3, ewt_seconds=150, offer_callback=False)
    assert (
        said(refs)
        == "You are caller number three Your estimated waiting time is about three minutes"
    )


def test_the_spanish_announcement_uses_the_short_forms_before_minutos() -> None:
    refs = announcement_prompts(ES, position=21, ewt_seconds=21 * 60, offer_callback=False)
    assert said(refs) == (
        "Usted es la llamada número veintiuno "
        "Su tiempo de espera estimado es de aproximadamente veintiún minutos"
    )


@pytest.mark.parametrize(
    ("ewt", "names"),
    [
        (0, ["less_than_one_minute"]),
        (59.9, ["less_than_one_minute"]),
        (60, ["about", "num_1", "minute"]),
        (61, ["about", "num_2", "minutes"]),  # rounded up: better early than late
        (600, ["about", "num_10", "minutes"]),
        (3600, ["about", "num_60", "minutes"]),
        (3600.1, ["more_than_one_hour"]),
        (86400, ["more_than_one_hour"]),
    ],
)
def test_the_wait_is_rounded_up_to_whole_minutes_within_an_hour(
    ewt: float, names: list[str]
) -> None:
    assert wait_names(EN, ewt) == names


def test_one_minute_is_singular_in_both_languages() -> None:
    assert said(tuple(f"en/{n}" for n in wait_names(EN, 60))) == "about one minute"
    assert said(tuple(f"es/{n}" for n in wait_names(ES, 60))) == "aproximadamente un minuto"


def test_without_an_estimate_the_caller_hears_only_their_position() -> None:
    refs = announcement_prompts(ES, position=2, ewt_seconds=None, offer_callback=False)
    assert refs == ("es/you_are_caller_number", "es/num_2")


def test_the_callback_offer_comes_last() -> None:
    refs = announcement_prompts(EN, position=40, ewt_seconds=1200, offer_callback=True)
    assert refs[-1] == "en/press_1_for_callback"
    assert refs.count("en/press_1_for_callback") == 1


@pytest.mark.parametrize("position", [0, -1, 1000, 25_000])
def test_a_position_without_fragments_is_left_out_rather_than_misspoken(position: int) -> None:
    refs = announcement_prompts(EN, position=position, ewt_seconds=30, offer_callback=False)
    assert refs == ("en/your_estimated_wait_is", "en/less_than_one_minute")


def test_the_core_announcement_action_is_spoken_in_the_callers_language() -> None:
    action = PlayAnnouncement(
        call_id=CallId("c1"), position=5, ewt_seconds=400.0, offer_callback=True
    )
    assert prompts_for(action, ES) == (
        "es/you_are_caller_number",
        "es/num_5",
        "es/your_estimated_wait_is",
        "es/about",
        "es/num_7",
        "es/minutes",
        "es/press_1_for_callback",
    )


def test_a_phone_number_is_read_back_digit_by_digit() -> None:
    assert said(digit_prompts(EN, "+1 415-0")) == "one four one five zero"


def test_a_language_without_fragments_is_refused() -> None:
    with pytest.raises(ValueError, match="no number fragments"):
        announcement_prompts(Language("fr"), position=1, ewt_seconds=None, offer_callback=False)
    with pytest.raises(ValueError, match="outside"):
        number_prompts(EN, 1000)
