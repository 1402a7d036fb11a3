"""The desktop's hold as the phone's dialog sees it: when a re-INVITE is due, and what follows."""

from __future__ import annotations

import random

import pytest

from ivr.phone_hold import (
    GLARE_BACKOFF,
    REINVITE_TRANSITIONS,
    PhoneHold,
    ReinviteInput,
    ReinviteState,
)


def test_every_state_and_input_either_moves_as_the_table_says_or_raises() -> None:
    for state in ReinviteState:
        for given in ReinviteInput:
            hold = PhoneHold()
            hold.state = state
            if (state, given) in REINVITE_TRANSITIONS:
                hold._move(given)
                assert hold.state is REINVITE_TRANSITIONS[(state, given)]
            else:
                with pytest.raises(AssertionError):
                    hold._move(given)


def test_a_desktop_hold_offers_sendonly_and_once_agreed_nothing_more_is_due() -> None:
    hold = PhoneHold()
    assert hold.offer_due() is None  # talking, and the core agrees
    hold.want(True)
    assert hold.offer_due() is True
    hold.sent(True)
    assert hold.offer_due() is None  # one re-INVITE at a time
    hold.agreed_offer()
    assert hold.agreed and hold.offer_due() is None
    hold.want(False)
    assert hold.offer_due() is False  # resume: sendrecv


def test_a_hold_the_phone_made_itself_is_not_offered_back() -> None:
    hold = PhoneHold()
    hold.phone_holds = True  # its re-INVITE with a=sendonly
    hold.want(True)  # the core follows it
    assert hold.offer_due() is None
    hold.phone_holds = False  # its resume
    hold.want(False)
    assert hold.offer_due() is None


def test_a_change_made_while_a_re_invite_is_out_is_due_when_it_ends() -> None:
    hold = PhoneHold()
    hold.want(True)
    hold.sent(True)
    hold.want(False)  # unhold before the phone answered the hold
    hold.agreed_offer()
    assert hold.offer_due() is False


def test_a_refused_hold_is_dropped_until_the_core_changes_again() -> None:
    hold = PhoneHold()
    hold.want(True)
    hold.sent(True)
    hold.refused()
    assert not hold.agreed and hold.offer_due() is None  # no retry loop
    hold.want(False)
    assert hold.offer_due() is None  # the phone never left sendrecv
    hold.want(True)
    assert hold.offer_due() is True


def test_a_491_backs_off_between_2_1_and_4_seconds_then_offers_again() -> None:
    hold = PhoneHold()
    hold.want(True)
    hold.sent(True)
    retry_at = hold.glared(100.0, random.Random(7))
    assert 100.0 + GLARE_BACKOFF[0] <= retry_at <= 100.0 + GLARE_BACKOFF[1]
    assert hold.offer_due() is None
    hold.retry()
    assert hold.retry_at is None and hold.offer_due() is True
