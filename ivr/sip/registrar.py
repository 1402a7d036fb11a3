"""The registrar's bindings: which contact addresses reach each address of record.

Theory of operation
-------------------
A phone registers with REGISTER: "for the next N seconds, requests for my
address of record (AOR, e.g. sip:agent-17@centre.example) may be sent to this
contact address". The registrar keeps these bindings; a proxy asks it where
an agent's phone can be reached. This module is that table as pure data, with
RFC 3261 §10.3's rules for changing it:

* A REGISTER is applied whole or not at all (§10.3 step 7: changes are
  tentative until every contact has been checked).
* Each binding remembers the Call-ID and CSeq that last touched it. The same
  Call-ID with a CSeq no higher than that is an old or replayed request and
  aborts the whole update (steps 6 and 7); a different Call-ID is a new
  registration from a rebooted phone and replaces the binding.
* A contact's lifetime is its ``expires`` parameter, else the Expires header,
  else a default; 0 removes it. Longer than ``max_expires`` is shortened, and
  shorter than ``min_expires`` (below an hour) refuses the request with
  423 Interval Too Brief and a Min-Expires (step 7).
* ``Contact: *`` with Expires 0 removes every binding of the AOR (step 6).
* A contact with an instance id (``+sip.instance``, RFC 5626 §4.1) is the
  same binding as an earlier one with that instance id and reg-id
  (RFC 5626 §6), whatever its URI: a phone that comes back on a new IP or
  port replaces its old binding instead of leaving it to ring in vain. Other
  contacts are matched by URI.
* Past ``max_bindings_per_aor`` the least recently refreshed bindings are
  dropped (as Asterisk's remove_existing does): a phone without an instance
  id that reboots onto a new port must not be locked out by its own ghost.

Each binding also keeps where the REGISTER came from (received address, port
and transport, RFC 3581; the flow, RFC 5626), since behind NAT that, not the
Contact URI, is where requests must go. Bindings lapse as time passes:
``expire(now)`` removes them and ``next_deadline()`` says when to call it
next; reads take ``now`` and never show a lapsed binding even if ``expire``
is late. Every change comes back as a past-tense notice for the adapter to
pass on (an agent's phone registered, moved, or went away).
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass
from enum import Enum
from typing import NewType

AddressOfRecord = NewType("AddressOfRecord", str)

_MAX_DELTA_SECONDS = 2**32 - 1  # RFC 3261 §20.19: larger values are taken as this
_MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5
_ONE_HOUR = 3600


class Transport(Enum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where a REGISTER arrived from: where requests for its bindings must go (RFC 3581 §4)."""

    host: str
    port: int
    transport: Transport
    flow: str | None = None  # the adapter's name for the connection, when there is one


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """One Contact header value of a REGISTER, as the adapter parsed it."""

    uri: str
    expires: int | None = None  # its expires parameter
    q: float | None = None
    instance: str | None = None  # the +sip.instance value unquoted, e.g. "<urn:uuid:...>"
    reg_id: int | None = None  # RFC 5626 §4.2; ignored without an instance


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A REGISTER request, reduced to what the registrar needs (RFC 3261 §10.3)."""

    aor: AddressOfRecord  # from the To header, canonical (RFC 3261 §10.3 step 5)
    call_id: str
    cseq: int
    source: Source
    contacts: tuple[Contact, ...] = ()  # none and no wildcard: a query for the bindings
    wildcard: bool = False  # Contact: *
    expires: int | None = None  # the Expires header


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A contact address bound to an address of record until ``expires_at``."""

    aor: AddressOfRecord
    uri: str
    q: float | None
    instance: str | None
    reg_id: int | None
    call_id: str
    cseq: int
    source: Source
    updated_at: float  # when a REGISTER last created or refreshed it
    expires_at: float

    def remaining(self, now: float) -> int:
        """Whole seconds left, as a 200 OK's Contact reports them."""
        return max(0, math.ceil(self.expires_at - now - 1e-9))

    def contact_value(self, now: float) -> str:
        """The Contact header value listing this binding in a 200 OK (RFC 3261 §10.3 step 8)."""
        parts = [f"<{self.uri}>", f"expires={self.remaining(now)}"]
        if self.q is not None:
            parts.append(f"q={_format_q(self.q)}")
        if self.instance is not None:
            parts.append(f'+sip.instance="{self.instance}"')
            if self.reg_id is not None:
                parts.append(f"reg-id={self.reg_id}")
        return ";".join(parts)


def _format_q(q: float) -> str:
    # qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), RFC 3261 §25.1
    return f"{q:.3f}".rstrip("0").rstrip(".")


class Removal(Enum):
    """Why a binding went away."""

    UNREGISTERED = "unregistered"  # expires 0, or Contact: *
    EXPIRED = "expired"  # not refreshed in time
    EVICTED = "evicted"  # pushed out by a newer binding past max_bindings_per_aor


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingCreated:
    """A contact address was bound to an AOR that did not have it."""

    at: float
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingUpdated:
    """A binding was refreshed; its URI, source or lifetime may have changed."""

    at: float
    previous: Binding
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRemoved:
    """A binding went away."""

    at: float
    binding: Binding
    reason: Removal


BindingChange = BindingCreated | BindingUpdated | BindingRemoved


class RegisterOutcome(Enum):
    """How a REGISTER ended, and so the status the adapter answers with."""

    OK = "ok"
    BAD_REQUEST = "bad_request"  # malformed: a misused '*', a negative expires, a q above 1
    OUT_OF_ORDER = "out_of_order"  # same Call-ID, CSeq not higher (RFC 3261 §10.3 steps 6, 7)
    INTERVAL_TOO_BRIEF = "interval_too_brief"  # answer with Min-Expires (RFC 3261 §10.3 step 7)
    TOO_MANY_CONTACTS = "too_many_contacts"  # one request asks for more than the AOR may hold

    @property
    def status(self) -> int:
        return _STATUS[self][0]

    @property
    def phrase(self) -> str:
        return _STATUS[self][1]


_STATUS = {
    RegisterOutcome.OK: (200, "OK"),
    RegisterOutcome.BAD_REQUEST: (400, "Bad Request"),
    # RFC 3261 only says the request "fails"; 400 as the client broke §10.2.4's ordering rule.
    RegisterOutcome.OUT_OF_ORDER: (400, "Bad Request"),
    RegisterOutcome.INTERVAL_TOO_BRIEF: (423, "Interval Too Brief"),
    RegisterOutcome.TOO_MANY_CONTACTS: (403, "Forbidden"),
}


_DETAILS = {
    RegisterOutcome.OUT_OF_ORDER: "CSeq not higher than the one that last updated the binding",
    RegisterOutcome.INTERVAL_TOO_BRIEF: "expiration shorter than the minimum",
    RegisterOutcome.TOO_MANY_CONTACTS: "more contacts than an address of record may hold",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterResult:
    """What a REGISTER did and what to answer: for OK, every current binding of the AOR."""

    outcome: RegisterOutcome
    bindings: tuple[Binding, ...] = ()  # best first; each a Contact value of the 200 OK
    changes: tuple[BindingChange, ...] = ()
    min_expires: int | None = None  # the Min-Expires header of a 423
    detail: str = ""  # for logs (or a Warning header)

    @property
    def status(self) -> int:
        return self.outcome.status


_Key = tuple[str, str, int | None]


def _binding_key(uri: str, instance: str | None, reg_id: int | None) -> _Key:
    if instance is not None:
        # RFC 5626 §4.1: instance ids are URNs, compared case-insensitively in practice.
        return ("instance", instance.strip().lower(), reg_id)
    return ("uri", _fold_uri(uri), None)


def _fold_uri(uri: str) -> str:
    """The URI with its case-insensitive scheme and host lower-cased (RFC 3261 §19.1.4)."""
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return uri
    cut = min((i for i in (rest.find(";"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:cut].rpartition("@")
    return f"{scheme.lower()}:{userinfo}{at}{hostport.lower()}{rest[cut:]}"


class Registrar:
    """Bindings of every address of record, changed by REGISTER requests and by time."""

    __slots__ = (
        "_aors",
        "_count",
        "_deadlines",
        "_default_expires",
        "_max_bindings",
        "_max_expires",
        "_min_expires",
        "_sequence",
    )

    def __init__(
        self,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_bindings_per_aor: int = 10,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires <= _MAX_DELTA_SECONDS:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        if max_bindings_per_aor < 1:
            raise ValueError("max_bindings_per_aor must be at least 1")
        self._min_expires = min_expires
        self._max_expires = max_expires
        self._default_expires = default_expires
        self._max_bindings = max_bindings_per_aor
        self._aors: dict[AddressOfRecord, dict[_Key, Binding]] = {}
        self._count = 0
        # (expires_at, tie-breaker, binding): stale entries are skipped when they surface.
        self._deadlines: list[tuple[float, int, Binding]] = []
        self._sequence = itertools.count()

    def register(self, registration: Registration, now: float) -> RegisterResult:
        """Apply a REGISTER's contacts to its AOR (RFC 3261 §10.3 steps 6 to 8)."""
        problem = self._malformation(registration)
        if problem:
            return RegisterResult(outcome=RegisterOutcome.BAD_REQUEST, detail=problem)
        aor = registration.aor
        changes: list[BindingChange] = []
        current = self._live(aor, now, changes)
        if registration.wildcard:
            if any(self._out_of_order(b, registration) for b in current.values()):
                return self._refused(RegisterOutcome.OUT_OF_ORDER, changes)
            planned: dict[_Key, Binding] = {}
            evicted: set[_Key] = set()
        else:
            plan = self._plan(registration, current, now)
            if isinstance(plan, RegisterOutcome):
                return self._refused(plan, changes)
            planned, evicted = plan
        self._commit(aor, current, planned, now, changes, evicted=evicted)
        return RegisterResult(
            outcome=RegisterOutcome.OK,
            bindings=self.bindings(aor, now),
            changes=tuple(changes),
        )

    def bindings(self, aor: AddressOfRecord, now: float) -> tuple[Binding, ...]:
        """The live bindings of ``aor``, best first: highest q, then most recently refreshed."""
        live = [b for b in self._aors.get(aor, {}).values() if b.expires_at > now]
        live.sort(key=lambda b: (-(1.0 if b.q is None else b.q), -b.updated_at))
        return tuple(live)

    def locate(self, aor: AddressOfRecord, now: float) -> Binding | None:
        """Where to reach ``aor`` now, if anywhere: its best live binding."""
        ranked = self.bindings(aor, now)
        return ranked[0] if ranked else None

    def expire(self, now: float) -> list[BindingRemoved]:
        """Remove every binding whose time has come."""
        removed: list[BindingRemoved] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, binding = heapq.heappop(self._deadlines)
            if self._is_stored(binding):
                self._remove(binding)
                removed.append(BindingRemoved(at=now, binding=binding, reason=Removal.EXPIRED))
        return removed

    def next_deadline(self) -> float | None:
        """When the next binding lapses: when to call ``expire`` next."""
        while self._deadlines and not self._is_stored(self._deadlines[0][2]):
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def __len__(self) -> int:
        """How many bindings are stored, counting any that lapsed since the last ``expire``."""
        return self._count

    # -- the steps of register ---------------------------------------------

    def _malformation(self, registration: Registration) -> str:
        if not 0 <= registration.cseq <= _MAX_CSEQ:
            return "CSeq out of range"
        if registration.expires is not None and registration.expires < 0:
            return "negative Expires"
        if registration.wildcard:
            # RFC 3261 §10.3 step 6: '*' only alone and only with Expires: 0.
            if registration.contacts:
                return "'*' must be the only contact"
            if registration.expires != 0:
                return "'*' needs Expires: 0"
        for contact in registration.contacts:
            if not contact.uri or any(c in contact.uri for c in '<> \t\r\n"'):
                return "unusable contact URI"
            if contact.expires is not None and contact.expires < 0:
                return "negative expires parameter"
            if contact.q is not None and not 0.0 <= contact.q <= 1.0:
                return "q outside 0 to 1"
            if contact.instance is not None and any(c in contact.instance for c in '"\r\n'):
                return "unusable +sip.instance"
        return ""

    def _requested(self, contact: Contact, registration: Registration) -> int:
        """The lifetime the phone asked for (RFC 3261 §10.3 step 7), before shortening."""
        if contact.expires is not None:
            seconds = contact.expires
        elif registration.expires is not None:
            seconds = registration.expires
        else:
            seconds = self._default_expires
        return min(seconds, _MAX_DELTA_SECONDS)

    @staticmethod
    def _out_of_order(binding: Binding, registration: Registration) -> bool:
        return binding.call_id == registration.call_id and registration.cseq <= binding.cseq

    def _refused(self, outcome: RegisterOutcome, changes: list[BindingChange]) -> RegisterResult:
        too_brief = outcome is RegisterOutcome.INTERVAL_TOO_BRIEF
        return RegisterResult(
            outcome=outcome,
            changes=tuple(changes),  # lapsed bindings removed on the way are still news
            min_expires=self._min_expires if too_brief else None,
            detail=_DETAILS.get(outcome, ""),
        )

    def _plan(
        self, registration: Registration, current: dict[_Key, Binding], now: float
    ) -> tuple[dict[_Key, Binding], set[_Key]] | RegisterOutcome:
        """The AOR's bindings once the contacts are applied, and those evicted; or why not."""
        requested = [self._requested(c, registration) for c in registration.contacts]
        if any(0 < seconds < min(self._min_expires, _ONE_HOUR) for seconds in requested):
            return RegisterOutcome.INTERVAL_TOO_BRIEF
        planned = dict(current)
        touched: set[_Key] = set()
        for contact, seconds in zip(registration.contacts, requested, strict=True):
            key = _binding_key(contact.uri, contact.instance, contact.reg_id)
            existing = current.get(key)  # as before this request: §10.3's checks are tentative
            if existing is not None and self._out_of_order(existing, registration):
                return RegisterOutcome.OUT_OF_ORDER
            touched.add(key)
            if seconds == 0:
                planned.pop(key, None)
            else:
                planned[key] = self._bind(registration, contact, seconds, now)
        if len(touched & planned.keys()) > self._max_bindings:
            return RegisterOutcome.TOO_MANY_CONTACTS
        return planned, self._evict(planned, touched)

    def _bind(
        self, registration: Registration, contact: Contact, seconds: int, now: float
    ) -> Binding:
        instance = contact.instance
        return Binding(
            aor=registration.aor,
            uri=contact.uri,
            q=contact.q,
            instance=instance,
            reg_id=contact.reg_id if instance is not None else None,
            call_id=registration.call_id,
            cseq=registration.cseq,
            source=registration.source,
            updated_at=now,
            expires_at=now + min(seconds, self._max_expires),
        )

    def _evict(self, planned: dict[_Key, Binding], touched: set[_Key]) -> set[_Key]:
        """Drop the least recently refreshed untouched bindings until the AOR fits."""
        evicted: set[_Key] = set()
        if len(planned) <= self._max_bindings:
            return evicted
        untouched = sorted(
            (b.updated_at, i, key)
            for i, (key, b) in enumerate(planned.items())
            if key not in touched
        )
        for _, _, key in untouched[: len(planned) - self._max_bindings]:
            del planned[key]
            evicted.add(key)
        return evicted

    def _live(
        self, aor: AddressOfRecord, now: float, changes: list[BindingChange]
    ) -> dict[_Key, Binding]:
        """The AOR's bindings, after removing any that lapsed but were not yet expired."""
        stored = self._aors.get(aor, {})
        for binding in [b for b in stored.values() if b.expires_at <= now]:
            self._remove(binding)
            changes.append(BindingRemoved(at=now, binding=binding, reason=Removal.EXPIRED))
        return dict(self._aors.get(aor, {}))

    def _commit(
        self,
        aor: AddressOfRecord,
        current: dict[_Key, Binding],
        planned: dict[_Key, Binding],
        now: float,
        changes: list[BindingChange],
        *,
        evicted: set[_Key],
    ) -> None:
        for key, binding in current.items():
            if key not in planned:
                reason = Removal.EVICTED if key in evicted else Removal.UNREGISTERED
                changes.append(BindingRemoved(at=now, binding=binding, reason=reason))
        for key, binding in planned.items():
            previous = current.get(key)
            if previous is None:
                changes.append(BindingCreated(at=now, binding=binding))
            elif previous is not binding:
                changes.append(BindingUpdated(at=now, previous=previous, binding=binding))
            if previous is not binding:
                entry = (binding.expires_at, next(self._sequence), binding)
                heapq.heappush(self._deadlines, entry)
        self._count += len(planned) - len(current)
        if planned:
            self._aors[aor] = planned
        else:
            self._aors.pop(aor, None)
        self._compact()

    def _is_stored(self, binding: Binding) -> bool:
        key = _binding_key(binding.uri, binding.instance, binding.reg_id)
        return self._aors.get(binding.aor, {}).get(key) is binding

    def _remove(self, binding: Binding) -> None:
        bindings = self._aors[binding.aor]
        del bindings[_binding_key(binding.uri, binding.instance, binding.reg_id)]
        self._count -= 1
        if not bindings:
            del self._aors[binding.aor]

    def _compact(self) -> None:
        # Refreshes leave superseded deadlines behind; rebuild once they outnumber the live.
        if len(self._deadlines) > 2 * self._count + 64:
            self._deadlines = [
                (b.expires_at, next(self._sequence), b)
                for bindings in self._aors.values()
                for b in bindings.values()
            ]
            heapq.heapify(self._deadlines)
