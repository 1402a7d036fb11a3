"""The log format: JSON lines with ids as fields, caller numbers and card-like runs masked."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.logs import (
    AUDIT_LOGGER,
    JsonFormatter,
    LogFormat,
    TextFormatter,
    configure,
    mask_number,
    mask_text,
)
from api.settings import Settings

CARD_RUN = re.compile(r"\d(?:[ -]?\d){12}")  # 13 digits, with single spaces or dashes between


class Lines(logging.Handler):
    """Keeps every record as the formatter writes it."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    handler = Lines(JsonFormatter())
    logger = logging.getLogger("acd.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def test_a_record_is_one_json_object_with_time_level_logger_message_and_its_fields(
    json_lines: Lines,
) -> None:
    logging.getLogger("acd.test").info(
        "call %s offered to %s",
        "c-1",
        "ann",
        extra={"call_id": "c-1", "agent_id": "ann", "queue_id": "sales", "attempt": 2},
    )
    (line,) = json_lines.lines
    assert "\n" not in line
    record = json.loads(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])  # UTC
    assert record["level"] == "INFO" and record["logger"] == "acd.test"
    assert record["message"] == "call c-1 offered to ann"
    assert (record["call_id"], record["agent_id"], record["queue_id"]) == ("c-1", "ann", "sales")
    assert record["attempt"] == 2
    assert "audit" not in record


def test_a_field_named_like_the_records_own_cannot_pass_for_them(json_lines: Lines) -> None:
    logging.getLogger("acd.test").warning("odd", extra={"level": "INFO", "time": "never"})
    (record,) = json_lines.records()
    assert record["level"] == "WARNING" and record["time"] != "never"
    assert (record["field_level"], record["field_time"]) == ("INFO", "never")


def test_the_caller_number_keeps_its_last_four_digits_and_a_short_one_its_last_two(
    json_lines: Lines,
) -> None:
    log = logging.getLogger("acd.test")
    log.info("call arrived", extra={"ani": "+14155550123", "call_id": "c-1"})
    log.info("call arrived", extra={"ani": "1001", "call_id": "c-2"})
    first, second = json_lines.records()
    assert first["ani"] == "+*******0123"
    assert second["ani"] == "**01"
    assert mask_number("+33 6 12 34 56 78") == "+** * ** ** 56 78"  # separators kept


def test_card_runs_in_the_message_keep_only_their_last_four_digits(json_lines: Lines) -> None:
    logging.getLogger("acd.test").info(
        "paid with %s, then %s, then %s",
        "4111111111111111",
        "4111 1111 1111 1111",
        "3782-822463-10005",
    )
    (record,) = json_lines.records()
    assert record["message"] == (
        "paid with ************1111, then **** **** **** 1111, then ****-******-*0005"
    )


def test_phone_numbers_in_the_message_are_masked_but_ids_addresses_and_dates_are_not(
    json_lines: Lines,
) -> None:
    call_id = "19912345678-123"  # a call id whose hexadecimal part happens to be all digits
    logging.getLogger("acd.test").info(
        "call %s from %s (sip:%s@10.0.0.7:5060) on 2026-12-02 at 14:07:26, ext 1001",
        call_id,
        "+14155550123",
        "0612345678",
        extra={"call_id": call_id},
    )
    (record,) = json_lines.records()
    assert record["message"] == (
        "call 19912345678-123 from +*******0123 (sip:******5678@10.0.0.7:5060)"
        " on 2026-12-02 at 14:07:26, ext 1001"
    )
    assert record["call_id"] == call_id


def test_every_field_is_masked_and_cards_in_nested_values_too(json_lines: Lines) -> None:
    logging.getLogger("acd.test").info(
        "screen pop",
        extra={
            "data": {"note": "card 4111-1111-1111-1111", "callback": "+442079460018"},
            "numbers": ["+14155550123", "0612345678"],
            "amount": 4111111111111111,
            "seq": 12,
        },
    )
    (record,) = json_lines.records()
    assert record["data"] == {"note": "card ****-****-****-1111", "callback": "+********0018"}
    assert record["numbers"] == ["+*******0123", "******5678"]
    assert record["amount"] == "************1111"
    assert record["seq"] == 12


def test_a_traceback_is_masked_like_the_message(json_lines: Lines) -> None:
    try:
        raise ValueError("bad card 4111111111111111")
    except ValueError:
        logging.getLogger("acd.test").exception("could not charge")
    (record,) = json_lines.records()
    assert "ValueError: bad card ************1111" in record["exception"]
    assert "4111111111111111" not in json_lines.lines[0]


def test_audit_records_say_so() -> None:
    handler = Lines(JsonFormatter())
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.addHandler(handler)
    level = audit.level
    audit.setLevel(logging.INFO)
    try:
        audit.info("admin admin: create agent ann", extra={"actor": "admin", "target_id": "ann"})
    finally:
        audit.removeHandler(handler)
        audit.setLevel(level)
    (record,) = handler.records()
    assert record["audit"] is True and record["actor"] == "admin"


def test_the_text_format_is_one_readable_line_with_the_fields_after_the_message() -> None:
    handler = Lines(TextFormatter())
    logger = logging.getLogger("acd.test.text")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("call arrived", extra={"call_id": "c-1", "ani": "0612345678", "note": "a b"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    (line,) = handler.lines
    assert re.fullmatch(
        r"\S+Z INFO acd\.test\.text call arrived call_id=c-1 ani=\*{6}5678 note=\"a b\"", line
    )


def test_configure_writes_json_lines_and_audit_records_to_their_own_file_too(
    tmp_path: Path,
) -> None:
    root, audit = logging.getLogger(), logging.getLogger(AUDIT_LOGGER)
    levels = root.level, audit.level
    stream = io.StringIO()
    installed = configure(
        LogFormat.JSON, "warning", audit_path=tmp_path / "audit.log", stream=stream
    )
    try:
        logger = logging.getLogger("acd.configured")
        logger.info("call arrived", extra={"ani": "0612345678"})  # below WARNING: dropped
        logger.warning("slow screen pop", extra={"ani": "0612345678"})
        audit.info("changed", extra={"actor": "admin"})  # audit records: whatever the level
    finally:
        installed.close()  # drains the queue into the stream and the file
        root.setLevel(levels[0])
        audit.setLevel(levels[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in lines if r["logger"] in ("acd.configured", AUDIT_LOGGER)]
    assert [r["message"] for r in mine] == ["slow screen pop", "changed"]
    assert mine[0]["ani"] == "******5678"
    audit_lines = (tmp_path / "audit.log").read_text().splitlines()
    assert [json.loads(line)["message"] for line in audit_lines] == ["changed"]


def test_the_log_settings_come_from_the_environment_and_a_typo_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACD_LOG_FORMAT", "text")
    monkeypatch.setenv("ACD_LOG_LEVEL", "debug")
    monkeypatch.setenv("ACD_AUDIT_LOG", "/var/log/acd/audit.log")
    settings = Settings()
    assert settings.log_format is LogFormat.TEXT and settings.log_level == "DEBUG"
    assert settings.audit_log == Path("/var/log/acd/audit.log")
    assert Settings(log_format="json", log_level="info").log_format is LogFormat.JSON
    for wrong in ({"log_format": "xml"}, {"log_level": "loud"}):
        with pytest.raises(ValidationError, match=next(iter(wrong))):
            Settings(**wrong)


# == properties ============================================================================

_digits = st.text(alphabet="0123456789", max_size=12)
_pieces = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=25),
    st.sampled_from([" ", "-", "  ", "--", "+", ".", ":", "/", "x", "call ", "é"]),
    st.text(max_size=5),
)


@given(st.lists(_pieces, max_size=20).map("".join))
def test_no_card_like_run_survives_masking(text: str) -> None:
    assert CARD_RUN.search(mask_text(text)) is None


@given(
    st.lists(st.tuples(_digits, _digits).map(lambda t: t[0] + "id" + t[1]), min_size=1, max_size=3),
    st.lists(_pieces, max_size=20),
    st.data(),
)
def test_no_card_like_run_survives_around_ids_the_text_quotes(
    ids: list[str], pieces: list[str], data: st.DataObject
) -> None:
    """Ids are left alone where the text quotes them, but a card can't hide across one.

    No id holds 13 digits in a row, so none is a card alone: a run found in
    the output is digits of an id joined with digits beside it, left unmasked.
    """
    mixed = list(pieces)
    for identifier in ids:
        mixed.insert(data.draw(st.integers(0, len(mixed))), identifier)
    masked = mask_text("".join(mixed), ids)
    assert CARD_RUN.search(masked) is None


@given(st.from_regex(r"\d{13,19}", fullmatch=True))
def test_a_masked_card_shows_exactly_its_last_four_digits(card: str) -> None:
    assert mask_text(card) == "*" * (len(card) - 4) + card[-4:]
