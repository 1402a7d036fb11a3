"""IVR flows as configuration: the YAML schema, and its validation at load time.

Theory of operation. A flow file holds named nodes and entry points that map
a dialled number (DNIS) to the node a call starts at::

    language: en                 # the language a call starts in
    languages: [en, es]          # every language a call can switch to
    entry_points: {"100": welcome}
    queue_callback: callback     # optional: where "press 1 for a callback" in a queue leads
    nodes:
      welcome: {kind: play, prompts: [en/welcome], next: main}
      main:
        kind: menu
        prompts: [main_menu]
        digits: {1: billing, 2: support}
        fallback: support
      ...

The node kinds are the dataclasses below; ``ivr.flows.FlowRun`` runs them.
Loading checks everything that can be checked before a call arrives, and
reports every problem at once, each naming the file and the path to the value
(``ivr/demo_ivr.yaml: nodes.main.digits.1: unknown node 'biling'``): unknown
or missing keys, wrong types and ranges, references to nodes that do not
exist, prompts missing from the catalogue in any of the flow's languages, a
queue the routing core does not know (when told the queues), and loops of
language nodes (which would spin without ever waiting for the caller).
Nodes no entry point reaches are only a warning (``Flow.warnings``): a flow
being edited often has some.

A DNIS must be a quoted string: YAML reads ``0800`` as the number 512.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from acd.ids import Language, QueueId, Skill
from ivr.catalogue import PromptCatalogue, load_catalogue, qualify

DIGITS = "0123456789*#"
_NO_SKILLS: Mapping[Skill, int] = MappingProxyType({})


class FlowError(ValueError):
    """A flow file is invalid; ``errors`` holds one ``file: path: problem`` line per problem."""

    def __init__(self, errors: Collection[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayNode:
    """Play prompts, then go to ``next``; a digit skips them when ``interruptible``."""

    name: str
    prompts: tuple[str, ...]
    next: str
    interruptible: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MenuNode:
    """Ask for one digit and go where it points; after ``retries`` more tries, to ``fallback``."""

    name: str
    prompts: tuple[str, ...]
    digits: Mapping[str, str]  # digit -> node
    fallback: str
    timeout: float = 5.0  # seconds of silence after the prompts that count as no input
    retries: int = 2
    no_input: tuple[str, ...] = ()  # said before asking again after silence
    invalid: tuple[str, ...] = ()  # said before asking again after a digit not in the menu
    interruptible: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectNode:
    """Collect digits into the call data key ``into``, ended by the terminator, the
    maximum length or a pause; checked against the lengths and ``pattern``."""

    name: str
    prompts: tuple[str, ...]
    into: str
    next: str
    fallback: str
    min_digits: int = 1
    max_digits: int = 16
    terminator: str | None = "#"
    timeout: float = 5.0  # before the first digit
    inter_digit_timeout: float = 3.0  # a pause this long ends the entry
    pattern: re.Pattern[str] | None = None  # must match the whole entry
    retries: int = 2
    no_input: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()
    interruptible: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LanguageNode:
    """Switch the call's language (prompt folder and routing language), then go to ``next``."""

    name: str
    language: Language
    next: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueNode:
    """Hand the call to the routing core's queue: the end of the IVR part."""

    name: str
    queue: QueueId
    skills: Mapping[Skill, int] = field(default_factory=lambda: _NO_SKILLS)  # on top of the queue's
    priority: int | None = None  # None: the queue's own


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailNode:
    """Say ``prompts``, beep, record up to ``max_seconds``, say ``after`` and hang up."""

    name: str
    prompts: tuple[str, ...] = ()
    mailbox: str = "general"
    beep: bool = True
    max_seconds: float = 120.0
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackNode:
    """Offer to call back the caller's number (read back after ``number_intro``), or
    collect another; then request the callback for ``queue``, say ``done`` and hang up."""

    name: str
    queue: QueueId
    confirm: tuple[str, ...]  # "press 1 to confirm, 2 for another number"
    enter_number: tuple[str, ...]
    fallback: str
    number_intro: tuple[str, ...] = ()
    done: tuple[str, ...] = ()
    min_digits: int = 3
    max_digits: int = 15
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    retries: int = 2
    no_input: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HangupNode:
    """Say ``prompts`` (if any) and hang up."""

    name: str
    prompts: tuple[str, ...] = ()
    reason: str = "flow_ended"


Node = (
    PlayNode
    | MenuNode
    | CollectNode
    | LanguageNode
    | QueueNode
    | VoicemailNode
    | CallbackNode
    | HangupNode
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A validated flow: its nodes, where each dialled number starts, and its languages."""

    source: str
    language: Language
    languages: frozenset[Language]
    entry_points: Mapping[str, str]  # DNIS -> node
    nodes: Mapping[str, Node]
    tones: frozenset[str]  # the catalogue's language-neutral prompts
    queue_callback: str | None = None
    warnings: tuple[str, ...] = ()

    def start_node(self, dnis: str) -> str | None:
        """The node a call to ``dnis`` starts at, or None when this flow does not answer it."""
        return self.entry_points.get(dnis)

    def qualify(self, name: str, language: Language) -> str:
        """The prompt reference a node's prompt name stands for in ``language``."""
        return qualify(name, language, self.tones)


def load_flow(
    path: Path | str,
    *,
    catalogue: PromptCatalogue | None = None,
    queues: Collection[str] | None = None,
) -> Flow:
    """Read and validate a flow file; raise ``FlowError`` listing every problem."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FlowError([f"{source}: not valid YAML: {exc}"]) from None
    return parse_flow(data, source=source, catalogue=catalogue, queues=queues)


def parse_flow(
    data: object,
    *,
    source: str,
    catalogue: PromptCatalogue | None = None,
    queues: Collection[str] | None = None,
) -> Flow:
    """Validate a flow already read from YAML; ``queues``, when given, are the known queue ids."""
    checker = _Checker(source, catalogue or load_catalogue(), queues)
    flow = checker.flow(data)
    if checker.errors or flow is None:
        raise FlowError(checker.errors)
    return flow


_TOP_KEYS = {
    "language": True,
    "languages": False,
    "entry_points": True,
    "nodes": True,
    "queue_callback": False,
}
_RETRY_KEYS = {"timeout": False, "retries": False, "no_input": False, "invalid": False}
_DIGIT_KEYS = {"min_digits": False, "max_digits": False, "inter_digit_timeout": False}
_KEYS: dict[str, dict[str, bool]] = {  # kind -> key -> required
    "play": {"prompts": True, "next": True, "interruptible": False},
    "menu": {"prompts": True, "digits": True, "fallback": True, "interruptible": False}
    | _RETRY_KEYS,
    "collect": {"prompts": True, "into": True, "next": True, "fallback": True}
    | {"terminator": False, "pattern": False, "interruptible": False}
    | _RETRY_KEYS
    | _DIGIT_KEYS,
    "language": {"language": True, "next": True},
    "queue": {"queue": True, "skills": False, "priority": False},
    "voicemail": {"prompts": False, "mailbox": False, "beep": False}
    | {"max_seconds": False, "after": False},
    "callback": {"queue": True, "confirm": True, "enter_number": True, "fallback": True}
    | {"number_intro": False, "done": False}
    | _RETRY_KEYS
    | _DIGIT_KEYS,
    "hangup": {"prompts": False, "reason": False},
}


class _Checker:
    """Walks the YAML, collecting every error with its path, and builds the nodes."""

    def __init__(
        self, source: str, catalogue: PromptCatalogue, queues: Collection[str] | None
    ) -> None:
        self.source = source
        self.catalogue = catalogue
        self.queues = queues
        self.errors: list[str] = []
        self.languages: frozenset[Language] = frozenset()
        self.references: list[tuple[str, str]] = []  # (path, node name) to resolve at the end
        self.broken: set[str] = set()  # nodes with errors of their own: not also "unknown"

    def error(self, path: str, message: str) -> None:
        where = f"{self.source}: {path}" if path else self.source
        self.errors.append(f"{where}: {message}")

    def flow(self, data: object) -> Flow | None:
        top = self.keys(data, "", _TOP_KEYS)
        if top is None:
            return None
        language = self.language(top.get("language"), "language", known=None)
        languages = frozenset({language})
        if "languages" in top:
            listed = self.sequence(top["languages"], "languages")
            languages = frozenset(
                self.language(v, f"languages.{i}", None) for i, v in enumerate(listed)
            )
        languages -= {Language("")}  # already reported
        if language and language not in languages:
            self.error("languages", f"does not include the starting language {language!r}")
        self.languages = languages
        entry_points: dict[str, str] = {}
        for dnis, start in self.mapping(top.get("entry_points"), "entry_points").items():
            path = f"entry_points.{dnis}"
            if not isinstance(dnis, str) or not dnis:
                self.error(path, "a DNIS must be a quoted string, so leading zeros survive")
            entry_points[str(dnis)] = self.target(start, path)
        if isinstance(top.get("entry_points"), dict) and not entry_points:
            self.error("entry_points", "no entry point: no call could ever start this flow")
        queue_callback = None
        if top.get("queue_callback") is not None:
            queue_callback = self.target(top["queue_callback"], "queue_callback")
        nodes: dict[str, Node] = {}
        for name, spec in self.mapping(top.get("nodes"), "nodes").items():
            node = self.node(str(name), spec, f"nodes.{name}")
            if node is not None:
                nodes[node.name] = node
        for path, name in self.references:
            if name and name not in nodes and name not in self.broken:
                self.error(path, f"unknown node {name!r}")
        if queue_callback in nodes and not isinstance(nodes[queue_callback], CallbackNode):
            self.error("queue_callback", f"node {queue_callback!r} is not a callback node")
        self.language_loops(nodes)
        return Flow(
            source=self.source,
            language=language,
            languages=languages,
            entry_points=MappingProxyType(entry_points),
            nodes=MappingProxyType(nodes),
            tones=frozenset(self.catalogue.tones),
            queue_callback=queue_callback,
            warnings=tuple(self.unreachable(nodes, [*entry_points.values(), queue_callback])),
        )

    def node(self, name: str, spec: object, path: str) -> Node | None:
        self.broken.add(name)
        if not isinstance(spec, dict) or "kind" not in spec:
            self.error(path, "expected a mapping with a kind")
            return None
        kind = spec["kind"]
        if not isinstance(kind, str) or kind not in _KEYS:
            self.error(f"{path}.kind", f"unknown kind {kind!r} (one of {', '.join(_KEYS)})")
            return None
        body = self.keys({k: v for k, v in spec.items() if k != "kind"}, path, _KEYS[kind])
        if body is None:
            return None
        self.broken.discard(name)
        return _BUILDERS[kind](self, name, body, path)

    # Values.

    def keys(self, value: object, path: str, allowed: Mapping[str, bool]) -> dict[str, Any] | None:
        """The mapping, if it has every required key (else None: its values are not checked)."""
        if not isinstance(value, dict):
            self.error(path, "expected a mapping")
            return None
        for key in value:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.error(_join(path, str(key)), f"unknown key {key!r} (expected one of: {known})")
        missing = [key for key, required in allowed.items() if required and key not in value]
        for key in missing:
            self.error(path, f"missing key {key!r}")
        return None if missing else value

    def mapping(self, value: object, path: str) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.error(path, "expected a mapping")
            return {}
        return value

    def sequence(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list):
            self.error(path, "expected a list")
            return []
        return value

    def string(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.error(path, f"expected a non-empty string, not {value!r}")
            return ""
        return value

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, not {value!r}")
            return False
        return value

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(path, f"expected a whole number from {low} to {high}, not {value!r}")
            return low
        return value

    def seconds(self, value: object, path: str, high: float = 3600.0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= high:
            self.error(path, f"expected seconds above 0 and at most {high:g}, not {value!r}")
            return 1.0
        return float(value)

    def target(self, value: object, path: str) -> str:
        name = self.string(value, path)
        self.references.append((path, name))
        return name

    def language(self, value: object, path: str, known: frozenset[Language] | None) -> Language:
        language = Language(self.string(value, path))
        if language and language not in self.catalogue.languages:
            self.error(path, f"no prompts are recorded in language {language!r}")
        elif language and known is not None and language not in known:
            self.error(path, f"language {language!r} is not one of the flow's languages")
        return language

    def prompts(self, value: object, path: str, *, required: bool = False) -> tuple[str, ...]:
        names = [value] if isinstance(value, str) else self.sequence(value, path)
        if required and not names:
            self.error(path, "at least one prompt is needed")
        for i, name in enumerate(names):
            where = path if isinstance(value, str) else f"{path}.{i}"
            if isinstance(name, str) and name:
                self.prompt_exists(name, where)
            else:
                self.error(where, f"expected a prompt name, not {name!r}")
        return tuple(n for n in names if isinstance(n, str))

    def prompt_exists(self, name: str, path: str) -> None:
        for language in sorted(self.languages):
            ref = self.catalogue.qualify(name, language)
            if not self.catalogue.has(ref):
                self.error(path, f"unknown prompt {name!r}: the catalogue has no {ref!r}")
            if ref == name:  # qualified or a tone: one check is enough
                return

    def queue(self, value: object, path: str) -> QueueId:
        queue = self.string(value, path)
        if queue and self.queues is not None and queue not in self.queues:
            self.error(path, f"unknown queue {queue!r} (known: {', '.join(sorted(self.queues))})")
        return QueueId(queue)

    def retry(self, body: Mapping[str, Any], path: str) -> dict[str, Any]:
        return {
            "timeout": self.seconds(body.get("timeout", 5.0), f"{path}.timeout", 60.0),
            "retries": self.integer(body.get("retries", 2), f"{path}.retries", 0, 9),
            "no_input": self.prompts(body.get("no_input", []), f"{path}.no_input"),
            "invalid": self.prompts(body.get("invalid", []), f"{path}.invalid"),
        }

    def digit_limits(
        self, body: Mapping[str, Any], path: str, low: int, high: int
    ) -> dict[str, Any]:
        least = self.integer(body.get("min_digits", low), f"{path}.min_digits", 1, 32)
        most = self.integer(body.get("max_digits", high), f"{path}.max_digits", 1, 32)
        if least > most:
            self.error(f"{path}.min_digits", f"min_digits {least} is above max_digits {most}")
        pause_path = f"{path}.inter_digit_timeout"
        pause = self.seconds(body.get("inter_digit_timeout", 3.0), pause_path, 60.0)
        return {"min_digits": least, "max_digits": most, "inter_digit_timeout": pause}

    # The graph.

    def language_loops(self, nodes: Mapping[str, Node]) -> None:
        for start in nodes:
            seen: list[str] = []
            name = start
            while isinstance(node := nodes.get(name), LanguageNode) and name not in seen:
                seen.append(name)
                name = node.next
            if name == start and seen:
                loop = " -> ".join([*seen, start])
                self.error(f"nodes.{start}.next", f"a loop of language nodes never waits ({loop})")

    def unreachable(self, nodes: Mapping[str, Node], starts: list[str | None]) -> Iterator[str]:
        seen: set[str] = set()
        todo = [s for s in starts if s is not None and s in nodes]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += [n for n in successors(nodes[name]) if n in nodes]
        for name in nodes:
            if name not in seen:
                yield f"{self.source}: nodes.{name}: unreachable from every entry point"


def successors(node: Node) -> tuple[str, ...]:
    """The nodes a node can lead to."""
    match node:
        case PlayNode() | LanguageNode():
            return (node.next,)
        case MenuNode():
            return (*node.digits.values(), node.fallback)
        case CollectNode():
            return (node.next, node.fallback)
        case CallbackNode():
            return (node.fallback,)
        case QueueNode() | VoicemailNode() | HangupNode():
            return ()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _play(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    return PlayNode(
        name=name,
        prompts=c.prompts(body.get("prompts"), f"{path}.prompts", required=True),
        next=c.target(body.get("next"), f"{path}.next"),
        interruptible=c.boolean(body.get("interruptible", False), f"{path}.interruptible"),
    )


def _menu(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    digits: dict[str, str] = {}
    for key, target in c.mapping(body.get("digits"), f"{path}.digits").items():
        digit = str(key)
        if isinstance(key, bool) or len(digit) != 1 or digit not in DIGITS:
            c.error(f"{path}.digits.{key}", f"not a phone key (one of {DIGITS})")
        digits[digit] = c.target(target, f"{path}.digits.{key}")
    if not digits:
        c.error(f"{path}.digits", "a menu needs at least one choice")
    return MenuNode(
        name=name,
        prompts=c.prompts(body.get("prompts"), f"{path}.prompts", required=True),
        digits=MappingProxyType(digits),
        fallback=c.target(body.get("fallback"), f"{path}.fallback"),
        interruptible=c.boolean(body.get("interruptible", True), f"{path}.interruptible"),
        **c.retry(body, path),
    )


def _collect(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    terminator = body.get("terminator", "#")
    if terminator is not None and terminator not in ("#", "*"):
        c.error(f"{path}.terminator", f"expected '#', '*' or null, not {terminator!r}")
        terminator = "#"
    pattern = None
    if body.get("pattern") is not None:
        try:
            pattern = re.compile(c.string(body["pattern"], f"{path}.pattern"))
        except re.error as exc:
            c.error(f"{path}.pattern", f"not a valid regular expression: {exc}")
    return CollectNode(
        name=name,
        prompts=c.prompts(body.get("prompts"), f"{path}.prompts", required=True),
        into=c.string(body.get("into"), f"{path}.into"),
        next=c.target(body.get("next"), f"{path}.next"),
        fallback=c.target(body.get("fallback"), f"{path}.fallback"),
        terminator=terminator,
        pattern=pattern,
        interruptible=c.boolean(body.get("interruptible", True), f"{path}.interruptible"),
        **c.retry(body, path),
        **c.digit_limits(body, path, 1, 16),
    )


def _language(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    return LanguageNode(
        name=name,
        language=c.language(body.get("language"), f"{path}.language", known=c.languages),
        next=c.target(body.get("next"), f"{path}.next"),
    )


def _queue(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    skills = {
        Skill(str(skill)): c.integer(level, f"{path}.skills.{skill}", 1, 10)
        for skill, level in c.mapping(body.get("skills", {}), f"{path}.skills").items()
    }
    priority = body.get("priority")
    return QueueNode(
        name=name,
        queue=c.queue(body.get("queue"), f"{path}.queue"),
        skills=MappingProxyType(skills),
        priority=None if priority is None else c.integer(priority, f"{path}.priority", -100, 100),
    )


def _voicemail(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    beep = c.boolean(body.get("beep", True), f"{path}.beep")
    if beep:
        c.prompt_exists("beep", f"{path}.beep")
    return VoicemailNode(
        name=name,
        prompts=c.prompts(body.get("prompts", []), f"{path}.prompts"),
        mailbox=c.string(body.get("mailbox", "general"), f"{path}.mailbox"),
        beep=beep,
        max_seconds=c.seconds(body.get("max_seconds", 120.0), f"{path}.max_seconds", 600.0),
        after=c.prompts(body.get("after", []), f"{path}.after"),
    )


def _callback(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    intro = c.prompts(body.get("number_intro", []), f"{path}.number_intro")
    if intro:  # the caller's number is read back digit by digit
        for digit in range(10):
            c.prompt_exists(f"num_{digit}", f"{path}.number_intro")
    return CallbackNode(
        name=name,
        queue=c.queue(body.get("queue"), f"{path}.queue"),
        confirm=c.prompts(body.get("confirm"), f"{path}.confirm", required=True),
        enter_number=c.prompts(body.get("enter_number"), f"{path}.enter_number", required=True),
        fallback=c.target(body.get("fallback"), f"{path}.fallback"),
        number_intro=intro,
        done=c.prompts(body.get("done", []), f"{path}.done"),
        **c.retry(body, path),
        **c.digit_limits(body, path, 3, 15),
    )


def _hangup(c: _Checker, name: str, body: dict[str, Any], path: str) -> Node:
    return HangupNode(
        name=name,
        prompts=c.prompts(body.get("prompts", []), f"{path}.prompts"),
        reason=c.string(body.get("reason", "flow_ended"), f"{path}.reason"),
    )


_BUILDERS: dict[str, Callable[[_Checker, str, dict[str, Any], str], Node]] = {
    "play": _play,
    "menu": _menu,
    "collect": _collect,
    "language": _language,
    "queue": _queue,
    "voicemail": _voicemail,
    "callback": _callback,
    "hangup": _hangup,
}
