"""IVR flows: loading and validating the YAML, and running a call through it.

Validation: the demo flow loads clean and routes to the demo centre's queues;
every kind of mistake is reported with the file and the path to the value,
all at once. Running: scenario tests on the demo flow and on small flows,
with a numeric clock, for the greeting, language choice, menus (barge-in,
type-ahead, silence, wrong keys, fallback), digit collection, queueing,
voicemail and callbacks; odd input orders that must be ignored; the
transition table; and a hypothesis test that random keys, prompt ends,
recordings and timers never raise and end every call exactly once.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from acd.ids import Language
from ivr.catalogue import load_catalogue
from ivr.flow_config import DIGITS, Flow, FlowError, load_flow, parse_flow
from ivr.flows import (
    IGNORED_INPUTS,
    PLAYBACK_LIMIT_SECONDS,
    RECORDING_GRACE_SECONDS,
    RUN_TRANSITIONS,
    TERMINAL_ACTIONS,
    EnterQueue,
    FlowAction,
    FlowRun,
    Hangup,
    Input,
    KeepMessage,
    PlayPrompts,
    RequestCallback,
    RunState,
    StartRecording,
    StopPlayback,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_PATH = ROOT / "ivr" / "demo_ivr.yaml"
DEMO_QUEUES = {q["id"] for q in yaml.safe_load((ROOT / "api" / "demo.yaml").read_text())["queues"]}
CATALOGUE = load_catalogue()
DEMO = load_flow(DEMO_PATH, catalogue=CATALOGUE, queues=DEMO_QUEUES)
ANI = "+14155550123"


def demo_call(ani: str = ANI) -> FlowRun:
    return FlowRun(DEMO, start_node="welcome", ani=ani)


def played(actions: list[FlowAction]) -> list[str]:
    return [ref for a in actions if isinstance(a, PlayPrompts) for ref in a.prompts]


def to_main_menu(run: FlowRun, language_key: str = "1") -> None:
    """Start, choose a language during the greeting, and hear the main menu out."""
    run.start(0)
    run.digit(language_key, 1)
    run.prompt_finished(10)


def small_flow(nodes: dict[str, Any], **top: Any) -> Flow:
    data = {"language": "en", "entry_points": {"1": next(iter(nodes))}, "nodes": nodes} | top
    return parse_flow(data, source="test.yaml", catalogue=CATALOGUE)


# Loading and validation.


def test_the_demo_flow_answers_dnis_100_and_loads_without_warnings() -> None:
    assert DEMO.start_node("100") == "welcome"
    assert DEMO.start_node("200") is None
    assert DEMO.languages == {"en", "es"}
    assert DEMO.warnings == ()


def test_the_demo_flow_routes_only_to_queues_the_demo_centre_has() -> None:
    queues = {getattr(node, "queue", None) for node in DEMO.nodes.values()} - {None}
    assert queues == {"billing", "support", "sales"} <= DEMO_QUEUES


def valid() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEMO_PATH.read_text()))


def errors_of(data: object, queues: set[str] | None = None) -> list[str]:
    with pytest.raises(FlowError) as caught:
        parse_flow(data, source="ivr/demo_ivr.yaml", catalogue=CATALOGUE, queues=queues)
    return list(caught.value.errors)


def test_a_menu_pointing_at_a_missing_node_names_the_file_and_the_path() -> None:
    data = valid()
    data["nodes"]["main_menu"]["digits"][1] = "biling"
    assert errors_of(data) == ["ivr/demo_ivr.yaml: nodes.main_menu.digits.1: unknown node 'biling'"]


def test_an_unknown_key_is_an_error_that_lists_the_keys_allowed() -> None:
    data = valid()
    data["nodes"]["account"]["max_digit"] = 8
    [error] = errors_of(data)
    assert error.startswith("ivr/demo_ivr.yaml: nodes.account.max_digit: unknown key 'max_digit'")
    assert "max_digits" in error


def test_a_missing_required_key_is_reported_once() -> None:
    data = valid()
    del data["nodes"]["main_menu"]["fallback"]
    assert errors_of(data) == ["ivr/demo_ivr.yaml: nodes.main_menu: missing key 'fallback'"]


def test_a_prompt_missing_in_one_of_the_flows_languages_is_an_error() -> None:
    data = valid()
    data["nodes"]["welcome"]["prompts"] = ["es/welcome", "es/bienvenida"]
    data["nodes"]["main_menu"]["no_input"] = ["silence_please"]
    assert errors_of(data) == [
        "ivr/demo_ivr.yaml: nodes.welcome.prompts.1: "
        "unknown prompt 'es/bienvenida': the catalogue has no 'es/bienvenida'",
        "ivr/demo_ivr.yaml: nodes.main_menu.no_input.0: "
        "unknown prompt 'silence_please': the catalogue has no 'en/silence_please'",
        "ivr/demo_ivr.yaml: nodes.main_menu.no_input.0: "
        "unknown prompt 'silence_please': the catalogue has no 'es/silence_please'",
    ]


def test_a_queue_the_routing_core_does_not_know_is_an_error_when_the_queues_are_given() -> None:
    data = valid()
    data["nodes"]["sales"]["queue"] = "salse"
    [error] = errors_of(data, queues=DEMO_QUEUES)
    assert error.startswith("ivr/demo_ivr.yaml: nodes.sales.queue: unknown queue 'salse'")


def test_every_problem_is_reported_at_once() -> None:
    data = valid()
    data["entry_points"] = {100: "welcome"}  # unquoted: YAML makes it a number
    data["nodes"]["choose_language"]["kind"] = "menus"
    data["nodes"]["account"]["min_digits"] = 12
    data["nodes"]["account"]["pattern"] = "[0-9"
    data["nodes"]["account"]["terminator"] = "5"
    data["nodes"]["voicemail"]["max_seconds"] = 0
    data["nodes"]["support"]["skills"] = {"tech": 11}
    data["nodes"]["spanish"]["language"] = "fr"
    data["nodes"]["main_menu"]["digits"]["x"] = "sales"
    paths = [e.split(": ")[1] for e in errors_of(data)]
    assert paths == [
        "entry_points.100",
        "nodes.choose_language.kind",
        "nodes.spanish.language",
        "nodes.main_menu.digits.x",
        "nodes.account.terminator",
        "nodes.account.pattern",
        "nodes.account.min_digits",
        "nodes.support.skills.tech",
        "nodes.voicemail.max_seconds",
    ]


def test_a_loop_of_language_nodes_is_refused_since_it_would_never_wait() -> None:
    data = valid()
    data["nodes"]["english"]["next"] = "spanish"
    data["nodes"]["spanish"]["next"] = "english"
    errors = errors_of(data)
    assert (
        "ivr/demo_ivr.yaml: nodes.english.next: a loop of language nodes never waits "
        in (errors[0][: errors[0].index("(")])
    )


def test_an_unreachable_node_is_only_a_warning() -> None:
    data = valid()
    data["nodes"]["orphan"] = {"kind": "hangup"}
    flow = parse_flow(data, source="ivr/demo_ivr.yaml", catalogue=CATALOGUE)
    assert flow.warnings == ("ivr/demo_ivr.yaml: nodes.orphan: unreachable from every entry point",)


def test_a_file_that_is_not_yaml_or_not_a_mapping_is_refused_with_its_name(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes: [unclosed\n")
    with pytest.raises(FlowError, match=f"^{broken}: not valid YAML"):
        load_flow(broken, catalogue=CATALOGUE)
    broken.write_text("- a list\n")
    with pytest.raises(FlowError, match=f"^{broken}: expected a mapping$"):
        load_flow(broken, catalogue=CATALOGUE)


def test_a_run_cannot_start_at_a_node_the_flow_lacks() -> None:
    with pytest.raises(ValueError, match="no node 'nowhere'"):
        FlowRun(DEMO, start_node="nowhere")


# The demo flow, call by call.


def test_a_call_hears_the_bilingual_greeting_then_the_language_choice() -> None:
    run = demo_call()
    assert run.start(0) == [
        PlayPrompts(prompts=("en/welcome", "es/welcome"), interruptible=True, play_id=1)
    ]
    assert played(run.prompt_finished(6)) == ["en/language_choice", "es/language_choice"]
    assert run.state is RunState.ASKING


def test_choosing_spanish_plays_the_rest_of_the_flow_in_spanish() -> None:
    run = demo_call()
    run.start(0)
    run.prompt_finished(6)
    assert played(run.digit("2", 7)) == ["es/main_menu"]
    assert run.language == "es"


def test_a_key_during_the_greeting_stops_it_and_answers_the_language_menu_at_once() -> None:
    run = demo_call()
    run.start(0)
    assert run.digit("2", 1) == [
        StopPlayback(play_id=1),
        PlayPrompts(prompts=("es/main_menu",), interruptible=True, play_id=2),
    ]


def test_keys_typed_ahead_skip_every_menu_they_answer() -> None:
    run = demo_call()
    run.start(0)
    actions = run.digit("1", 1) + run.digit("2", 1.2)
    assert actions[0] == StopPlayback(play_id=1)
    assert played(actions) == ["en/main_menu", "en/transferring"]  # main menu cut at once
    assert run.node == "support_hold"


def test_no_language_choice_carries_on_in_english_after_one_retry() -> None:
    run = demo_call()
    run.start(0)
    run.prompt_finished(6)  # the greeting
    run.prompt_finished(9)  # the language menu
    assert run.next_deadline() == 13
    assert played(run.advance(13)) == ["en/language_choice", "es/language_choice"]
    run.prompt_finished(16)
    assert played(run.advance(20)) == ["en/main_menu"]
    assert run.language == "en"


def test_a_wrong_key_hears_why_then_the_menu_again() -> None:
    run = demo_call()
    to_main_menu(run)
    assert played(run.digit("7", 11)) == ["en/invalid_choice", "en/main_menu"]


def test_silence_hears_the_no_input_prompt_then_the_menu_again() -> None:
    run = demo_call()
    to_main_menu(run)
    assert run.next_deadline() == 15
    assert played(run.advance(15)) == ["en/no_input", "en/main_menu"]


def test_a_caller_who_never_chooses_is_routed_to_sales_after_the_retries() -> None:
    run = demo_call()
    to_main_menu(run)
    now = 10.0
    for _ in range(2):  # two retries
        deadline = run.next_deadline()
        assert deadline is not None
        now = deadline
        run.advance(now)
        now += 10
        run.prompt_finished(now)
    actions = run.advance(now + 5)
    assert played(actions) == ["en/transferring"]
    actions = run.prompt_finished(now + 8)
    assert actions == [
        EnterQueue(queue_id="sales", skills={}, priority=None, language="en", data={})
    ]


def test_the_account_number_entered_with_hash_goes_to_billing_as_call_data() -> None:
    run = demo_call()
    to_main_menu(run, language_key="2")
    assert played(run.digit("1", 11)) == ["es/enter_account"]
    for d in "12345678#":
        run.digit(d, 12)
    assert run.data == {"account": "12345678"}
    assert run.prompt_finished(14) == [
        EnterQueue(
            queue_id="billing",
            skills={"billing": 2},
            priority=None,
            language="es",
            data={"account": "12345678"},
        )
    ]
    assert run.state is RunState.ENDED and run.next_deadline() is None


def test_an_entry_ends_at_its_maximum_length_or_after_a_pause() -> None:
    run = demo_call()
    to_main_menu(run)
    run.digit("1", 11)
    for d in "0123456789":  # max_digits is 10
        run.digit(d, 12)
    assert run.data["account"] == "0123456789"

    run = demo_call()
    to_main_menu(run)
    run.digit("1", 11)
    for d in "1234567":
        run.digit(d, 12)
    assert run.next_deadline() == 16  # the inter-digit timeout
    assert played(run.advance(16)) == ["en/transferring"]
    assert run.data["account"] == "1234567"


def test_a_too_short_account_number_is_asked_again() -> None:
    run = demo_call()
    to_main_menu(run)
    run.digit("1", 11)
    for d in "123":
        run.digit(d, 12)
    assert played(run.digit("#", 12.5)) == ["en/invalid_account", "en/enter_account"]
    assert "account" not in run.data


def test_a_pattern_rejects_an_entry_of_the_right_length() -> None:
    flow = small_flow(
        {
            "pin": {
                "kind": "collect",
                "prompts": ["enter_account"],
                "into": "pin",
                "pattern": "[1-9][0-9]{3}",
                "invalid": ["invalid_account"],
                "next": "done",
                "fallback": "done",
            },
            "done": {"kind": "hangup"},
        }
    )
    run = FlowRun(flow, start_node="pin")
    run.start(0)
    assert played([a for d in "0123#" for a in run.digit(d, 1)]) == [
        "en/invalid_account",
        "en/enter_account",
    ]
    assert [a for d in "4567#" for a in run.digit(d, 2)][-1] == Hangup(reason="flow_ended")
    assert run.data == {"pin": "4567"}


def test_tech_support_queues_with_the_nodes_priority_and_the_callers_language() -> None:
    run = demo_call()
    to_main_menu(run, language_key="2")
    run.digit("2", 11)
    [entering] = run.prompt_finished(13)
    assert entering == EnterQueue(queue_id="support", skills={}, priority=1, language="es", data={})


def test_a_message_is_recorded_after_the_beep_kept_and_the_call_hung_up() -> None:
    run = demo_call()
    to_main_menu(run)
    assert run.digit("3", 11) == [
        PlayPrompts(prompts=("en/voicemail_intro", "beep"), interruptible=False, play_id=3)
    ]
    assert run.digit("5", 12) == []  # the instructions cannot be skipped
    assert run.prompt_finished(16) == [StartRecording(max_seconds=120)]
    assert run.digit("9", 20) == []  # part of the message
    actions = run.recording_finished("/var/spool/msg-1.wav", 30.5, 46)
    assert actions == [
        KeepMessage(
            path="/var/spool/msg-1.wav", seconds=30.5, mailbox="general", language="en", data={}
        ),
        PlayPrompts(prompts=("en/voicemail_thanks",), interruptible=False, play_id=4),
    ]
    assert run.prompt_finished(50) == [Hangup(reason="message_left")]


def test_a_caller_who_hangs_up_while_recording_still_has_the_message_kept() -> None:
    run = demo_call()
    to_main_menu(run)
    run.digit("3", 11)
    run.prompt_finished(16)
    assert run.caller_hung_up(40) == []
    assert run.state is RunState.SAVING
    [kept] = run.recording_finished("/var/spool/msg-2.wav", 24.0, 40.2)
    assert isinstance(kept, KeepMessage) and kept.path == "/var/spool/msg-2.wav"
    assert run.state is RunState.ENDED


def test_a_recorder_that_never_reports_hangs_up_after_the_limit_and_a_grace() -> None:
    run = demo_call()
    to_main_menu(run)
    run.digit("3", 11)
    run.prompt_finished(16)
    assert run.next_deadline() == 16 + 120 + RECORDING_GRACE_SECONDS
    assert run.advance(16 + 120) == []
    assert run.advance(16 + 120 + RECORDING_GRACE_SECONDS) == [Hangup(reason="recording_lost")]


def test_a_callback_reads_back_the_callers_number_and_books_it_on_1() -> None:
    run = demo_call()
    to_main_menu(run)
    assert played(run.digit("4", 11)) == [
        "en/callback_at",
        *[f"en/num_{d}" for d in "14155550123"],
        "en/callback_confirm",
    ]
    assert run.digit("1", 15) == [
        StopPlayback(play_id=3),  # barge-in on the read-back
        RequestCallback(number=ANI, queue_id="sales", language="en", data={}),
        PlayPrompts(prompts=("en/callback_thanks",), interruptible=False, play_id=4),
    ]
    assert run.prompt_finished(20) == [Hangup(reason="callback_requested")]


def test_a_callback_to_another_number_collects_it_on_2() -> None:
    run = demo_call()
    to_main_menu(run)
    run.digit("4", 11)
    assert played(run.digit("2", 15)) == ["en/enter_callback_number"]
    for d in "0612345678#":
        actions = run.digit(d, 16)
    assert actions[0] == RequestCallback(
        number="0612345678", queue_id="sales", language="en", data={}
    )


def test_a_withheld_number_is_asked_for_straight_away() -> None:
    run = demo_call(ani="anonymous")
    to_main_menu(run)
    assert played(run.digit("4", 11)) == ["en/enter_callback_number"]
    for d in "12*45678#":  # a star is no phone number
        actions = run.digit(d, 12)
    assert played(actions) == ["en/invalid_number", "en/enter_callback_number"]


def test_a_callback_without_a_number_says_goodbye_after_the_retries() -> None:
    run = demo_call(ani="")
    to_main_menu(run)
    run.digit("4", 11)
    now = 11.0
    actions: list[FlowAction] = []
    while run.state is not RunState.PLAYING or run.node != "goodbye":
        now += 10
        run.prompt_finished(now)
        actions = run.advance(now + 5)
    assert played(actions) == ["en/goodbye"]
    assert run.prompt_finished(now + 10) == [Hangup(reason="no_callback_number")]


def test_a_queued_caller_who_takes_the_callback_offer_continues_at_the_callback_node() -> None:
    assert DEMO.queue_callback == "callback"
    run = FlowRun(
        DEMO, start_node=DEMO.queue_callback, ani=ANI, language=Language("es"), data={"a": "1"}
    )
    assert played(run.start(100))[0] == "es/callback_at"
    assert run.digit("1", 101)[1] == RequestCallback(
        number=ANI, queue_id="sales", language="es", data={"a": "1"}
    )


# Odd inputs, lost events and the table.


def test_the_end_of_a_stopped_playback_is_not_taken_for_the_next_ones() -> None:
    run = demo_call()
    run.start(0)
    run.digit("1", 1)  # stops playback 1, plays the main menu as 2
    assert run.prompt_finished(2, play_id=1) == []
    assert run.next_deadline() == 1 + PLAYBACK_LIMIT_SECONDS  # still playing the menu
    assert run.prompt_finished(8, play_id=2) == []
    assert run.next_deadline() == 13


def test_a_playback_whose_end_is_lost_is_taken_as_finished_after_the_limit() -> None:
    run = demo_call()
    run.start(0)
    actions = run.advance(PLAYBACK_LIMIT_SECONDS)
    assert actions[0] == StopPlayback(play_id=1)
    assert played(actions) == ["en/language_choice", "es/language_choice"]


def test_inputs_out_of_order_are_ignored() -> None:
    run = demo_call()
    assert run.prompt_finished(0) == []
    assert run.advance(100) == []
    assert run.recording_finished("x.wav", 1, 0) == []
    run.start(0)
    assert run.start(1) == []
    assert run.recording_finished("x.wav", 1, 1) == []
    assert run.digit("A", 1) == [] and run.digit("12", 1) == []
    assert run.advance(1) == []  # before the deadline
    run.caller_hung_up(2)
    assert run.state is RunState.ENDED and run.next_deadline() is None
    assert run.digit("1", 3) == [] and run.prompt_finished(3) == [] and run.caller_hung_up(3) == []


def test_a_caller_who_hangs_up_ends_the_run_without_a_terminal_action() -> None:
    run = demo_call()
    to_main_menu(run)
    assert run.caller_hung_up(12) == []
    assert run.state is RunState.ENDED


def test_every_state_and_input_is_either_handled_or_ignored_for_a_stated_reason() -> None:
    for state in RunState:
        for put in Input:
            key = (state, put)
            assert (key in RUN_TRANSITIONS) != (key in IGNORED_INPUTS), key
    assert all(IGNORED_INPUTS.values())
    assert all(RUN_TRANSITIONS.values())


# Random callers.

EVENTS = st.one_of(
    st.tuples(st.just("digit"), st.sampled_from(DIGITS)),
    st.tuples(st.just("prompt_finished"), st.none() | st.integers(0, 12)),
    st.tuples(st.just("timeout"), st.none()),
    st.tuples(st.just("recording_finished"), st.none()),
    st.tuples(st.just("wait"), st.floats(0, 30)),
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(EVENTS, max_size=50),
    ani=st.sampled_from([ANI, "", "anonymous"]),
    hang_up=st.booleans(),
)
def test_random_callers_never_break_the_flow_and_each_call_ends_exactly_once(
    events: list[tuple[str, Any]], ani: str, hang_up: bool
) -> None:
    run = demo_call(ani)
    now = 0.0
    actions = run.start(now)
    for kind, value in events:
        now += 0.25
        if kind == "digit":
            actions += run.digit(value, now)
        elif kind == "prompt_finished":
            actions += run.prompt_finished(now, play_id=value)
        elif kind == "timeout":
            now = max(now, run.next_deadline() or now)
            actions += run.advance(now)
        elif kind == "recording_finished":
            actions += run.recording_finished("msg.wav", 3.0, now)
        else:
            now += value
            actions += run.advance(now)
    if hang_up:
        actions += run.caller_hung_up(now)
    for _ in range(100):  # then only timers: every wait must end
        deadline = run.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        actions += run.advance(now)
    assert run.state is RunState.ENDED and run.next_deadline() is None

    terminal = [i for i, a in enumerate(actions) if isinstance(a, TERMINAL_ACTIONS)]
    if hang_up:
        assert len(terminal) <= 1
    else:
        assert len(terminal) == 1
    if terminal:
        assert terminal[0] == len(actions) - 1  # nothing after the end
    assert all(CATALOGUE.has(ref) for ref in played(actions))
    plays = [a.play_id for a in actions if isinstance(a, PlayPrompts)]
    stops = [a.play_id for a in actions if isinstance(a, StopPlayback)]
    assert (
        plays == sorted(set(plays)) and len(stops) == len(set(stops)) and set(stops) <= set(plays)
    )
    assert sum(isinstance(a, KeepMessage | RequestCallback) for a in actions) <= 1


def _paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in children:
        found += _paths(child, (*path, key))
    return found


DEMO_PATHS = _paths(valid())
JUNK = st.sampled_from(
    [None, 0, -3, 2.5, True, "", "x", [], [1], {}, {"a": 1}, ["welcome"], {"kind": "play"}, 10**9]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(DEMO_PATHS), JUNK), min_size=1, max_size=3))
def test_a_mangled_flow_is_refused_with_a_flow_error_and_never_crashes_the_loader(
    edits: list[tuple[tuple[Any, ...], object]],
) -> None:
    data = valid()
    for path, junk in edits:
        parent: Any = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = junk
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced the branch
    try:
        parse_flow(data, source="f.yaml", catalogue=CATALOGUE)
    except FlowError as error:
        assert error.errors and all(e.startswith("f.yaml: ") for e in error.errors)
