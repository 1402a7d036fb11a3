"""The server's log lines: one JSON object a line (or readable text), with numbers masked.

Theory of operation. Every record becomes ``{"time", "level", "logger",
"message", ...fields}``: ``time`` is ISO 8601 in UTC, and the fields are what
the call site passed in ``extra=`` (``call_id``, ``agent_id``, ``queue_id``
and any other), so a log store can filter one call's lines without parsing
prose. Records of the ``acd.audit`` logger also carry ``"audit": true``.

Masking happens here, once, for every line whatever its origin, so a call
site cannot forget it:

- **card-like runs**: 13 or more digits, single spaces or dashes allowed
  between them, keep only their last four digits (PCI DSS 3.4 allows showing
  at most the last four), in the message, the traceback and every field;
- **caller numbers**: the fields that hold one (``ani``, ``number``...)
  keep their last four digits (two when the number is short: an extension
  would otherwise be shown whole); in free text a ``+`` number (E.164, with
  spaces or dashes) or an unbroken run of 7 to 12 digits is masked the same
  way. Free text cannot be read perfectly, so call sites pass numbers as
  fields, where masking is exact;
- **ids are never masked** (``call_id``, ``agent_id``, ``queue_id``,
  ``reservation_id``, ``seq``, an audit record's ``actor`` and ``target_id``),
  in their fields nor where the message quotes them, so lines can be joined
  on them. A call id is hexadecimal and now and then all digits: masked in
  the message it would no longer match its field.

A field named like one of the record's own (``time``, ``message``...) is
written as ``field_<name>``, so it can never pass for them.

``configure`` installs the format on the root logger behind a queue: the
event loop only formats a record and puts it on an in-memory queue, and a
thread of the standard library's ``QueueListener`` does the blocking write,
so a slow terminal or a full pipe never stalls routing (the Python logging
cookbook's advice for asyncio).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

AUDIT_LOGGER = "acd.audit"

IDS = frozenset({"call_id", "agent_id", "queue_id", "reservation_id", "seq", "actor", "target_id"})
"""Fields that are our identifiers: never masked, in the field or where the message quotes them.

(An audit record's ``target_id`` is one too; when the target is a phone
number, ``api.audit`` masks it before it gets here.)
"""

CALLER_NUMBERS = frozenset({"ani", "caller", "number", "phone", "from_number", "numbers"})
"""Fields that hold a caller's phone number (or a list of them): masked as numbers."""

_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "color_message"}  # uvicorn's copy of the message, with ANSI colours
)
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})

_DIGIT = re.compile(r"\d")
_CARD = re.compile(r"\d(?:[ -]?\d){12,}")
"""13 digits or more, single spaces or dashes allowed between them (longer runs too)."""

_PHONE = re.compile(
    r"(?<![\w+])\+\d(?:[ -]?\d){6,14}(?![ -]?\d)"  # +E.164, up to 15 digits (ITU-T E.164 §6)
    r"|(?<![\w.-])\d{7,12}(?!\w|[.-]\d)"  # an unbroken run, not part of a word, id or decimal
)


class LogFormat(Enum):
    JSON = "json"
    TEXT = "text"


def mask_number(value: str) -> str:
    """A caller's number with all but its last four digits starred (two when it is short)."""
    digits = sum(c.isdigit() for c in value)
    keep = 4 if digits >= 8 else 2 if digits >= 4 else 0
    return _star_digits(value, digits - keep)


def mask_text(text: str, ids: Iterable[str] = ()) -> str:
    """Free text with card-like runs and phone-like numbers masked; ``ids`` left as they are."""
    if _DIGIT.search(text) is None:
        return text  # most messages: nothing to mask, nothing to compile
    exempt = _exempt([i for i in ids if i and i in text])
    if exempt is None:
        return _mask_pieces(text)
    out: list[str] = []
    start = 0
    for found in exempt.finditer(text):
        out.append(_mask_pieces(text[start : found.start()]))
        out.append(found.group())
        start = found.end()
    out.append(_mask_pieces(text[start:]))
    return "".join(out)


def mask_value(key: str, value: Any) -> Any:
    """A field's value, masked by what the field holds (see the module's docstring)."""
    return _field(key, value, 0)


def _field(key: str, value: Any, depth: int) -> Any:
    if key in IDS or value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, Enum):
        value = value.value
    if key in CALLER_NUMBERS:
        if isinstance(value, list | tuple | set | frozenset):
            return [mask_number(str(v)) for v in value]
        return mask_number(str(value))
    return _masked(value, depth)


def _masked(value: Any, depth: int) -> Any:
    """Any other value: strings as free text, containers item by item (four levels deep)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**12 else mask_text(str(value))
    if isinstance(value, Enum):
        return _masked(value.value, depth)
    if depth >= 4:
        return mask_text(str(value))
    if isinstance(value, Mapping):
        return {str(k): _field(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v, depth + 1) for v in value]
    return mask_text(str(value))


def _mask_pieces(text: str) -> str:
    text = _CARD.sub(lambda m: _star_digits(m.group(), _digits(m.group()) - 4), text)
    return _PHONE.sub(lambda m: mask_number(m.group()), text)


def _exempt(ids: Iterable[str]) -> re.Pattern[str] | None:
    """Where the record's ids stand alone in the text (not joined to digits around them).

    An occurrence joined to digits on either side (directly, or across one
    space or dash) is not exempt: a card run can then never straddle an
    exempt id and leave digits unmasked on both sides of it.
    """
    usable = sorted({i for i in ids if i}, key=len, reverse=True)
    if not usable:
        return None
    alternatives = "|".join(re.escape(i) for i in usable)
    return re.compile(rf"(?<!\d)(?<!\d[ -])(?:{alternatives})(?!\d)(?![ -]\d)")


def _digits(text: str) -> int:
    return sum(c.isdigit() for c in text)


def _star_digits(text: str, count: int) -> str:
    """``text`` with its first ``count`` digits replaced by ``*``."""
    if count <= 0:
        return text
    out = []
    for c in text:
        if count > 0 and c.isdigit():
            out.append("*")
            count -= 1
        else:
            out.append(c)
    return "".join(out)


# == records ===========================================================================


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """What the call site passed in ``extra=``, masked."""
    return {
        k: mask_value(k, v)
        for k, v in record.__dict__.items()
        if k not in _STANDARD and not k.startswith("_")
    }


def _ids_of(record: logging.LogRecord) -> list[str]:
    return [str(v) for k in IDS if (v := record.__dict__.get(k)) is not None]


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_audit(record: logging.LogRecord) -> bool:
    return record.name == AUDIT_LOGGER or record.name.startswith(AUDIT_LOGGER + ".")


@dataclass(frozen=True, slots=True)
class _Parts:
    core: dict[str, Any]
    fields: dict[str, Any]
    exception: str | None


def _parts(record: logging.LogRecord) -> _Parts:
    ids = _ids_of(record)
    core = {
        "time": _time(record),
        "level": record.levelname,
        "logger": record.name,
        "message": mask_text(record.getMessage(), ids),
    }
    fields = fields_of(record)
    if _is_audit(record):
        fields["audit"] = True
    exception = None
    if record.exc_info and record.exc_info[0] is not None:
        exception = mask_text("".join(traceback.format_exception(*record.exc_info)), ids)
    elif record.exc_text:
        exception = mask_text(record.exc_text, ids)
    if record.stack_info:
        exception = (exception or "") + mask_text(record.stack_info, ids)
    return _Parts(core, fields, exception)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, then the fields (masked)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = _parts(record)
        out = dict(parts.core)
        for key, value in parts.fields.items():
            out[key if key not in _RESERVED else f"field_{key}"] = value  # never shadow those
        if parts.exception is not None:
            out["exception"] = parts.exception
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time level logger message key=value...``: for a person at a terminal, masked the same."""

    def format(self, record: logging.LogRecord) -> str:
        parts = _parts(record)
        core = parts.core
        line = f"{core['time']} {core['level']} {core['logger']} {core['message']}"
        if parts.fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in parts.fields.items())
        if parts.exception is not None:
            line += "\n" + parts.exception.rstrip("\n")
        return line


def _text_value(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format is LogFormat.JSON else TextFormatter()


# == installing ========================================================================


class Installed:
    """The handlers ``configure`` put in place; ``close`` flushes and removes them."""

    def __init__(self) -> None:
        self._listeners: list[logging.handlers.QueueListener] = []
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []

    def add(self, logger: logging.Logger, fmt: logging.Formatter, target: logging.Handler) -> None:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        front = logging.handlers.QueueHandler(records)
        front.setFormatter(fmt)  # formatted (and masked) on the caller's side: the queue holds text
        target.setFormatter(logging.Formatter("%(message)s"))
        listener = logging.handlers.QueueListener(records, target)
        listener.start()
        logger.addHandler(front)
        self._listeners.append(listener)
        self._handlers.append((logger, front))

    def close(self) -> None:
        for logger, handler in self._handlers:
            logger.removeHandler(handler)
        for listener in self._listeners:
            listener.stop()  # writes what is still queued
            for handler in listener.handlers:
                handler.close()
        self._handlers.clear()
        self._listeners.clear()


def configure(
    log_format: LogFormat,
    level: str | int = "INFO",
    *,
    audit_path: Path | None = None,
    stream: TextIO | None = None,
) -> Installed:
    """Send every record to ``stream`` (stderr) in ``log_format``, and audit records to a file.

    The audit file, when given, gets the ``acd.audit`` records as JSON lines
    whatever ``log_format`` is, appended; they still go to the main stream too.
    ``WatchedFileHandler`` reopens the file when logrotate moves it.
    """
    root = logging.getLogger()
    root.setLevel(level if isinstance(level, int) else level.upper())
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)  # audit records are kept whatever the log level
    installed = Installed()
    installed.add(root, formatter(log_format), logging.StreamHandler(stream or sys.stderr))
    if audit_path is not None:
        audit_path.parent.mkdir(parents=True, exist_ok=True)
        installed.add(audit, JsonFormatter(), logging.handlers.WatchedFileHandler(audit_path))
    return installed
