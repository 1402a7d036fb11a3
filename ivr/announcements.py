"""The wait announcement, and numbers, said with recorded fragments.

Theory of operation. At each ``PlayAnnouncement`` from the core the caller
hears, in their language,

    "you are caller number" <position>
    "your estimated waiting time is" <wait>      (only when there is an estimate)
    "if you would rather we call you back, press 1"   (only when offered)

as a tuple of prompt references (``en/num_20``...) for the player. Numbers
are strung together from the fragments each language records (see
``ivr/prompts/prompts.yaml``), following the language's grammar:

- English: 0-19 and the tens are words; 21 is "twenty" "one"; 342 is
  "three" "hundred" "forty" "two" (American usage, no "and").
- Spanish: 0-29 are single words (veintiuno); from 31 the tens take "y"
  (treinta y uno); 100 alone is "cien" but "ciento" before more (ciento uno);
  the hundreds from 200 are words of their own (quinientos). Before a
  masculine noun, uno shortens: "un minuto", "veintiún minutos", "treinta y un
  minutos". A position follows "número", so it keeps the full form.

The wait is rounded the way a caller can use it, and never optimistically:
under a minute is "less than one minute"; from one minute to an hour it is
"about N minutes" with N the wait in minutes rounded *up* (61 s is "about 2
minutes": an early answer pleases, a late one annoys); over an hour it is
"more than one hour", since a longer figure is noise. A position outside
1-999 (the fragments stop at 999) leaves the position sentence out rather
than say a wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from acd.actions import PlayAnnouncement
from acd.ids import Language

MAX_NUMBER = 999
ONE_HOUR = 3600.0

EN = Language("en")
ES = Language("es")


def announcement_prompts(
    language: Language, *, position: int, ewt_seconds: float | None, offer_callback: bool
) -> tuple[str, ...]:
    """The prompt references that tell a waiting caller where they stand."""
    speller = _speller(language)
    names: list[str] = []
    if 1 <= position <= MAX_NUMBER:
        names += ["you_are_caller_number", *speller(position, False)]
    if ewt_seconds is not None:
        names += ["your_estimated_wait_is", *wait_names(language, ewt_seconds)]
    if offer_callback:
        names.append("press_1_for_callback")
    return tuple(f"{language}/{name}" for name in names)


def prompts_for(announcement: PlayAnnouncement, language: Language) -> tuple[str, ...]:
    """``announcement_prompts`` for the core's action, as the queue adapter receives it."""
    return announcement_prompts(
        language,
        position=announcement.position,
        ewt_seconds=announcement.ewt_seconds,
        offer_callback=announcement.offer_callback,
    )


def number_prompts(
    language: Language, number: int, *, before_noun: bool = False
) -> tuple[str, ...]:
    """The references that say ``number`` (0-999); ``before_noun`` for "un minuto" forms."""
    return tuple(f"{language}/{name}" for name in _speller(language)(number, before_noun))


def digit_prompts(language: Language, digits: str) -> tuple[str, ...]:
    """The references that read a phone number out digit by digit; other characters are skipped."""
    return tuple(f"{language}/num_{d}" for d in digits if d in "0123456789")


def wait_names(language: Language, ewt_seconds: float) -> list[str]:
    """The prompt names (unqualified) that say an estimated wait."""
    if ewt_seconds < 60:
        return ["less_than_one_minute"]
    if ewt_seconds > ONE_HOUR:
        return ["more_than_one_hour"]
    minutes = math.ceil(ewt_seconds / 60)
    unit = "minute" if minutes == 1 else "minutes"
    return ["about", *_speller(language)(minutes, True), unit]


def _speller(language: Language) -> Callable[[int, bool], list[str]]:
    try:
        return _SPELLERS[language]
    except KeyError:
        raise ValueError(f"no number fragments for language {language!r}") from None


def _check(number: int) -> None:
    if not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"{number} is outside 0-{MAX_NUMBER}: there are no fragments for it")


def _english(number: int, before_noun: bool) -> list[str]:
    _check(number)
    if number == 0:
        return ["num_0"]
    hundreds, rest = divmod(number, 100)
    names = [f"num_{hundreds}", "hundred"] if hundreds else []
    if rest >= 20:
        tens, units = divmod(rest, 10)
        names.append(f"num_{tens * 10}")
        if units:
            names.append(f"num_{units}")
    elif rest:
        names.append(f"num_{rest}")
    return names


def _spanish(number: int, before_noun: bool) -> list[str]:
    _check(number)
    if number == 0:
        return ["num_0"]
    hundreds, rest = divmod(number, 100)
    names: list[str] = []
    if hundreds == 1:
        names.append("num_100" if rest == 0 else "ciento")
    elif hundreds:
        names.append(f"num_{hundreds * 100}")
    if rest >= 30:
        tens, units = divmod(rest, 10)
        names.append(f"num_{tens * 10}")
        if units:
            names += ["y", "un" if units == 1 and before_noun else f"num_{units}"]
    elif rest == 21 and before_noun:
        names.append("veintiun")
    elif rest == 1 and before_noun:
        names.append("un")
    elif rest:
        names.append(f"num_{rest}")
    return names


_SPELLERS: dict[Language, Callable[[int, bool], list[str]]] = {EN: _english, ES: _spanish}
