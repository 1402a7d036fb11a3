"""Agents' phones registering: a REGISTER in, its response and what changed out (sans-IO).

Theory of operation. ``Registrations.register`` takes a REGISTER (its Via
already stamped with where it came from), the peer and ``now``, and runs:

1. the per-source throttle: a source with too many recent failures is
   refused before any work (no answer over UDP, 403 over TCP: a flooder learns
   nothing, a phone on a connection is told);
2. digest authentication against the agents' SIP accounts (SHA-256 then MD5,
   RFC 8760, unless configured otherwise: SIPp 3.6 answers only the first
   challenge and only MD5, baresip 1.0 gives up on any SHA-256 challenge, so a
   centre with such phones offers MD5 alone); an unknown user and a wrong
   password get the same 401 with fresh challenges, and both count as a
   failure of that source;
3. the authenticated user may register only their own address of record (the
   To URI's user part is their username), else 403;
4. the bindings (``ivr.sip.registrar``): 200 listing every current contact,
   423 with Min-Expires, or 400.

A refusal that is the caller's fault (wrong credentials, a malformed
answer to the challenge, someone else's address) comes out as
``RegisterRefused`` for the audit log: who it claimed to be, from where, and
why, never the credentials. A first challenge is not a refusal (every phone
gets one), and neither is a request dropped from a banned source: the ban's
start is the one record of a flood, not each of its packets.

What changed comes out as notices an adapter turns into the core's commands:
``PhoneRegistered`` when an agent's phone becomes reachable (their first
binding), ``PhoneUnregistered`` when it no longer is (their last binding
removed or lapsed). ``locate`` tells where to send an agent's calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from acd.ids import AgentId
from ivr.sip.accounts import SipAccounts
from ivr.sip.digest import Algorithm, DigestAuthority, Outcome
from ivr.sip.errors import ParseError
from ivr.sip.message import Request, Response, response_to
from ivr.sip.registrar import (
    AddressOfRecord,
    Binding,
    BindingChange,
    BindingCreated,
    BindingRemoved,
    Contact,
    RegisterOutcome,
    Registrar,
    Registration,
    Source,
    Transport,
)
from ivr.sip.throttle import Admission, FailureThrottle
from ivr.sip.transaction_outputs import Peer
from ivr.sip.transactions import server_key
from ivr.sip.uri import SipUri


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneRegistered:
    """An agent's phone became reachable."""

    agent_id: AgentId
    binding: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneUnregistered:
    """An agent's phone is no longer reachable (unregistered, lapsed or pushed out)."""

    agent_id: AgentId
    reason: str


PhoneNotice = PhoneRegistered | PhoneUnregistered


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRefused:
    """A REGISTER failed authentication or authorization (for the audit log)."""

    username: str | None  # as the credentials or the To claimed it
    peer: Peer
    status: int
    reason: str
    banned: bool  # this failure brought the source to its limit: it is ignored for a while


@dataclass(frozen=True, slots=True)
class Answer:
    """What to do with one REGISTER: the response (None: drop it), what changed, any refusal."""

    response: Response | None
    notices: tuple[PhoneNotice, ...] = ()
    refused: RegisterRefused | None = None


class Registrations:
    def __init__(
        self,
        accounts: SipAccounts,
        *,
        realm: str,
        secret: bytes | None = None,
        throttle: FailureThrottle | None = None,
        registrar: Registrar | None = None,
        algorithms: Sequence[Algorithm] = (Algorithm.SHA_256, Algorithm.MD5),
    ) -> None:
        self._accounts = accounts
        self.authority = DigestAuthority(
            realm=realm,
            secret=secret or os.urandom(32),
            lookup=accounts.lookup,
            algorithms=tuple(algorithms),
        )
        self.throttle = throttle or FailureThrottle(max_failures=10, window=60.0)
        self.registrar = registrar or Registrar()
        self._aor_of: dict[AgentId, AddressOfRecord] = {}

    def register(self, request: Request, peer: Peer, now: float) -> Answer:
        if self.throttle.check(peer.host, now) is Admission.REFUSE:
            if peer.transport == "udp":
                return Answer(None)
            return Answer(response_to(request, 403, "Too many failed attempts"))
        verdict = self.authority.verify(
            request.headers.get_all("Authorization"),
            method=request.method,
            request_uri=str(request.uri),
            now=now,
        )
        if verdict.outcome is not Outcome.ACCEPTED:
            status = verdict.status or 401
            refused = None
            if verdict.outcome.counts_as_failure:
                admission = self.throttle.record_failure(peer.host, now)
                refused = RegisterRefused(
                    username=verdict.claimed_username,
                    peer=peer,
                    status=status,
                    reason=verdict.reason,
                    banned=admission is Admission.REFUSE,
                )
            response = response_to(request, status, to_tag=_to_tag(request))
            for challenge in verdict.challenges:
                response.headers.add(verdict.header_name, challenge)
            return Answer(response, refused=refused)
        account = self._accounts.by_username(verdict.username or "")
        to = request.to_address
        if (
            account is None
            or to is None
            or not isinstance(to.uri, SipUri)
            or to.uri.user != account.username
        ):
            refused = RegisterRefused(
                username=verdict.username,
                peer=peer,
                status=403,
                reason="registering an address of record that is not theirs",
                banned=False,
            )
            response = response_to(request, 403, "Not your address", to_tag=_to_tag(request))
            return Answer(response, refused=refused)
        try:
            registration = _registration(request, peer, _aor(to.uri))
        except (ParseError, ValueError) as error:
            return Answer(response_to(request, 400, f"Bad Contact: {error}"[:100]))
        result = self.registrar.register(registration, now)
        if result.outcome is not RegisterOutcome.OK:
            response = response_to(
                request, result.status, result.outcome.phrase, to_tag=_to_tag(request)
            )
            if result.min_expires is not None:
                response.headers.add("Min-Expires", str(result.min_expires))
            return Answer(response)
        self._aor_of[account.agent_id] = registration.aor
        response = response_to(request, 200, "OK", to_tag=_to_tag(request))
        for binding in result.bindings:
            response.headers.add("Contact", binding.contact_value(now))
        return Answer(response, self._notices(account.agent_id, result.changes, now))

    def expire(self, now: float) -> list[PhoneNotice]:
        """Drop the bindings that lapsed; call at ``next_deadline``."""
        removed = self.registrar.expire(now)
        notices: list[PhoneNotice] = []
        for change in removed:
            agent_id = self._agent_of(change.binding.aor)
            if agent_id is not None:
                notices.extend(self._notices(agent_id, (change,), now))
        return notices

    def next_deadline(self) -> float | None:
        return self.registrar.next_deadline()

    def locate(self, agent_id: AgentId, now: float) -> Binding | None:
        """Where the agent's phone can be reached now, if it is registered."""
        aor = self._aor_of.get(agent_id)
        return None if aor is None else self.registrar.locate(aor, now)

    def _agent_of(self, aor: AddressOfRecord) -> AgentId | None:
        for agent_id, known in self._aor_of.items():
            if known == aor:
                return agent_id
        return None

    def _notices(
        self,
        agent_id: AgentId,
        changes: tuple[BindingChange, ...] | list[BindingChange],
        now: float,
    ) -> tuple[PhoneNotice, ...]:
        aor = self._aor_of.get(agent_id)
        remaining = () if aor is None else self.registrar.bindings(aor, now)
        out: list[PhoneNotice] = []
        for change in changes:
            if isinstance(change, BindingCreated) and len(remaining) >= 1:
                if not any(isinstance(n, PhoneRegistered) for n in out):
                    out.append(PhoneRegistered(agent_id=agent_id, binding=remaining[0]))
            elif isinstance(change, BindingRemoved) and not remaining:
                out.append(PhoneUnregistered(agent_id=agent_id, reason=change.reason.value))
        return tuple(out)


def _aor(uri: SipUri) -> AddressOfRecord:
    """The canonical address of record: scheme, user and host (RFC 3261 §10.3 step 5)."""
    return AddressOfRecord(f"{uri.scheme}:{uri.user}@{uri.host.lower()}")


def _registration(request: Request, peer: Peer, aor: AddressOfRecord) -> Registration:
    headers = request.headers
    cseq, call_id = request.cseq, request.call_id
    if cseq is None or call_id is None:
        raise ValueError("no CSeq or Call-ID")
    contacts: list[Contact] = []
    wildcard = headers.contact_is_wildcard()
    if not wildcard:
        for address in headers.contacts():
            params = address.params
            expires, q, reg_id = params.get("expires"), params.get("q"), params.get("reg-id")
            instance = params.get("+sip.instance")
            contacts.append(
                Contact(
                    uri=str(address.uri),
                    expires=None if expires is None else int(expires),
                    q=None if q is None else float(q),
                    instance=None if instance is None else instance.strip('"'),
                    reg_id=None if reg_id is None else int(reg_id),
                )
            )
    return Registration(
        aor=aor,
        call_id=call_id,
        cseq=cseq.number,
        source=Source(host=peer.host, port=peer.port, transport=Transport(peer.transport)),
        contacts=tuple(contacts),
        wildcard=wildcard,
        expires=headers.expires(),
    )


def _to_tag(request: Request) -> str:
    key = server_key(request)
    return "acd" if key is None else key.to_tag
