"""Dialogs (RFC 3261 §12), the ACK for a 2xx (§13.2.2.4) and its wait (§13.3.1.4), sans-IO.

Theory of operation
-------------------
A dialog is the peer-to-peer relationship an INVITE sets up: named by the
Call-ID and the two tags, it remembers what every later request needs — the
remote target (the peer's Contact), the route set (Record-Route), the two
CSeq counters — so that a BYE, INFO, REFER or re-INVITE can be built, and an
incoming one checked, without looking back at the INVITE.

``Dialogs`` is the table. On the UAS side ``create_uas(invite, contact=…)``
opens an early dialog for an INVITE we are about to answer, and
``dialog.answer(invite, status, now)`` builds each response (our To tag, our
Contact, the Record-Route copied back, §12.1.1) and moves the dialog: a 1xx
keeps it early, a 2xx confirms it, a failure ends it. On the UAC side
``apply_response(request, response)`` is given every response to our
requests: a 1xx with a To tag or a 2xx to an INVITE creates the dialog or
confirms it (the route set recomputed from the 2xx, §13.2.2.4), a failure
ends the INVITE's early dialogs (§12.3), a 481 or 408 to an in-dialog
request ends its dialog (§12.2.1.2), a 2xx to a target refresh moves the
remote target. ``apply_request(request, now)`` is given every request that
arrives: it finds the dialog by Call-ID and tags, refuses a lower CSeq with a
500 (§12.2.2) and a request for no dialog we know with a 481, applies target
refreshes, and ends the dialog on BYE.

The UAS core, not the transaction, re-sends a 2xx to an INVITE until its ACK
comes (§13.3.1.4, RFC 6026 §7.1): after ``answer`` with a 2xx, ``advance``
gives ``RetransmitAnswer`` at T1, 2*T1, … (the interval capped at T2) until
``apply_request`` sees the ACK with the INVITE's CSeq; at 64*T1 without one
it gives ``AnswerUnacknowledged`` with the BYE that ends the session. Each
dialog arms one timer in the table's schedule, so the adapter re-arms a
single timer for all of them (``next_deadline``).

Requests that start a dialog are built by ``new_request``, with ``new_tag``
and ``new_call_id`` (``ivr.sip.dialog_requests``, re-exported here).
Not done: SIPS and the secure flag, PRACK. Re-INVITE glare (§14's 491) is
the transaction user's: ``ivr.phone_hold`` for our hold of an agent's phone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from ivr.sip.dialog_requests import (
    assemble_request,
    new_call_id,
    new_request,
    new_tag,
    reusable_via,
    via_for_contact,
)
from ivr.sip.fields import NameAddress, Via
from ivr.sip.message import Request, Response, response_to
from ivr.sip.timers import Schedule, Timers
from ivr.sip.transaction_outputs import InvalidTransition, Peer, _Enum
from ivr.sip.uri import SipUri, Uri

# Requests whose Contact replaces the remote target (§12.2, RFC 3311, RFC 3515, RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
_AUTHORIZATION = ("Authorization", "Proxy-Authorization")
_ANSWER = "2xx"  # the one timer a dialog arms
ENDED_MEMORY = 4096  # dialogs remembered after they end


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogId:
    """Call-ID, local tag and remote tag (§12): the same dialog seen from our side."""

    call_id: str
    local_tag: str
    remote_tag: str  # empty for an RFC 2543 peer that sent no From tag (§12.1.1)


class DialogRole(_Enum):
    UAC = "uac"  # we sent the INVITE
    UAS = "uas"  # we received it


class DialogState(_Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class DialogTrigger(_Enum):
    PROVISIONAL = "provisional"  # a 101-199 to the dialog's INVITE
    SUCCESS = "success"  # a 2xx to an INVITE of the dialog
    FAILURE = "failure"  # a 3xx-6xx to an INVITE of the dialog
    END = "end"  # BYE sent or received, 481 or 408 (§12.2.1.2), 2xx never acknowledged


D, Tr = DialogState, DialogTrigger
DIALOG_TRANSITIONS: dict[tuple[DialogState, DialogTrigger], DialogState] = {
    (D.EARLY, Tr.PROVISIONAL): D.EARLY,
    (D.EARLY, Tr.SUCCESS): D.CONFIRMED,
    (D.EARLY, Tr.FAILURE): D.TERMINATED,  # §12.3
    (D.EARLY, Tr.END): D.TERMINATED,
    (D.CONFIRMED, Tr.PROVISIONAL): D.CONFIRMED,  # to a re-INVITE
    (D.CONFIRMED, Tr.SUCCESS): D.CONFIRMED,  # a re-INVITE, or a 2xx retransmission
    (D.CONFIRMED, Tr.FAILURE): D.CONFIRMED,  # a re-INVITE refused changes nothing (§14.1)
    (D.CONFIRMED, Tr.END): D.TERMINATED,
}
del D, Tr


def _trigger(status: int) -> DialogTrigger:
    if status < 200:
        return DialogTrigger.PROVISIONAL
    return DialogTrigger.SUCCESS if status < 300 else DialogTrigger.FAILURE


@dataclass(frozen=True, slots=True, kw_only=True)
class RetransmitAnswer:
    """Send the 2xx again (``TransactionLayer.respond(invite, response, now)``): no ACK yet."""

    dialog: DialogId
    invite: Request
    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerUnacknowledged:
    """No ACK for the 2xx in 64*T1 (§13.3.1.4): send ``bye``; the dialog has ended."""

    dialog: DialogId
    bye: Request


DialogOutput = RetransmitAnswer | AnswerUnacknowledged


@dataclass(slots=True, kw_only=True)
class _PendingAnswer:
    invite: Request
    response: Response
    cseq: int
    interval: float
    gives_up_at: float


class Dialog:
    """One dialog's state, and the requests and responses built from it."""

    __slots__ = (
        "_ack",
        "_owner",
        "_pending",
        "contact",
        "id",
        "local_address",
        "local_seq",
        "remote_address",
        "remote_seq",
        "remote_target",
        "role",
        "route_set",
        "state",
        "via",
    )

    def __init__(
        self,
        *,
        owner: Dialogs,
        id: DialogId,
        role: DialogRole,
        state: DialogState,
        local_address: NameAddress,
        remote_address: NameAddress,
        remote_target: Uri,
        route_set: tuple[NameAddress, ...],
        local_seq: int | None,
        remote_seq: int | None,
        contact: NameAddress,
        via: Via,
    ) -> None:
        self._owner = owner
        self.id = id
        self.role = role
        self.state = state
        self.local_address = local_address  # our URI, with our tag (From in our requests)
        self.remote_address = remote_address  # theirs, with their tag
        self.remote_target = remote_target  # where requests go: their Contact
        self.route_set = route_set  # the Route set, in the order our requests carry it
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.contact = contact  # ours
        self.via = via  # our sent-by, to which each request adds a fresh branch
        self._ack: Request | None = None  # the ACK for the last 2xx, re-sent for its copies
        self._pending: _PendingAnswer | None = None  # our 2xx awaiting its ACK

    def __repr__(self) -> str:
        return f"Dialog({self.id!r}, {self.role.value}, {self.state.value})"

    @property
    def awaiting_ack(self) -> bool:
        """Whether our 2xx to an INVITE is still being re-sent for want of an ACK."""
        return self._pending is not None

    def next_hop(self) -> Uri:
        """Where this dialog's requests are sent first: the top Route, else the target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def destination(self) -> Peer:
        """``next_hop()`` as an address (no DNS: a name is left for the adapter)."""
        return Peer.for_uri(self.next_hop())

    # -- building requests (§12.2.1.1) ---------------------------------------

    def request(
        self, method: str, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """A new request in this dialog, with the next local CSeq; a BYE ends the dialog."""
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"{method} is built by ack() or cancel_request(), not request()")
        if self.state is DialogState.TERMINATED:
            raise InvalidTransition(f"{method} in a terminated dialog")
        if method == "BYE" and self.role is DialogRole.UAS and self.state is DialogState.EARLY:
            raise InvalidTransition("the callee may not send BYE in an early dialog (§15)")
        self.local_seq = (self.local_seq or 0) + 1  # §8.1.1.5 lets the first be anything < 2**31
        request = self._build(method, self.local_seq, headers, body)
        if method == "BYE":
            self._apply(DialogTrigger.END)
        return request

    def ack(
        self, invite: Request, *, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (§13.2.2.4): a request of its own, fresh branch.

        The same ACK (same branch) is returned again for the same INVITE, to
        be re-sent for each retransmission of its 2xx.
        """
        cseq = invite.cseq
        if cseq is None:
            raise ValueError("an INVITE without CSeq")
        last = self._ack
        if last is not None and last.cseq is not None and last.cseq.number == cseq.number:
            return last
        credentials = [
            (name, value) for name in _AUTHORIZATION for value in invite.headers.get_all(name)
        ]
        self._ack = self._build("ACK", cseq.number, [*credentials, *headers], body)
        return self._ack

    def _build(
        self, method: str, cseq: int, headers: Iterable[tuple[str, str]], body: bytes
    ) -> Request:
        uri, routes = self.remote_target, self.route_set
        first = routes[0].uri if routes else None
        if isinstance(first, SipUri) and not first.loose_routing:
            # §12.2.1.1: a strict router: it goes in the Request-URI, the target at the end.
            uri = replace(first, params=first.params.without("method"), headers=())
            routes = (*routes[1:], NameAddress(uri=self.remote_target))
        return assemble_request(
            method,
            uri,
            via=self.via,
            routes=routes,
            from_address=self.local_address,
            to_address=self.remote_address,
            call_id=self.id.call_id,
            cseq=cseq,
            contact=self.contact if method in TARGET_REFRESH_METHODS else None,
            headers=headers,
            body=body,
        )

    # -- answering an INVITE (§12.1.1, §13.3.1.4) ------------------------------

    def answer(
        self,
        invite: Request,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Response:
        """Our response to ``invite`` (the dialog's or a re-INVITE), moving the dialog.

        A 101-199 or 2xx carries our Contact, and for the dialog's first
        INVITE the Record-Route copied back (§12.1.1). A 2xx is then re-sent
        by ``Dialogs.advance`` until its ACK comes.
        """
        if not 101 <= status <= 699:
            raise ValueError("the transaction sends 100 Trying; answer with 101-699")
        fields: list[tuple[str, str]] = []
        if status < 300:
            fields.append(("Contact", str(self.contact)))
            initial = invite.to_address is None or invite.to_address.tag is None
            if initial:
                fields += [("Record-Route", v) for v in invite.headers.get_all("Record-Route")]
        fields.extend(headers)
        response = response_to(
            invite, status, reason, to_tag=self.id.local_tag, headers=fields, body=body
        )
        self._apply(_trigger(status))
        cseq = invite.cseq
        if 200 <= status < 300 and cseq is not None and self.state is not DialogState.TERMINATED:
            timers = self._owner.timers
            self._pending = _PendingAnswer(
                invite=invite,
                response=response,
                cseq=cseq.number,
                interval=timers.t1,
                gives_up_at=now + timers.timeout,
            )
            self._owner._schedule.arm(self.id, _ANSWER, now + timers.t1)
        return response

    def _answer_timer(self, now: float) -> list[DialogOutput]:
        pending = self._pending
        if pending is None:
            return []
        if now >= pending.gives_up_at:
            self._stop_answer()
            return [AnswerUnacknowledged(dialog=self.id, bye=self.request("BYE"))]
        pending.interval = self._owner.timers.backed_off(pending.interval)  # §13.3.1.4
        next_at = min(now + pending.interval, pending.gives_up_at)
        self._owner._schedule.arm(self.id, _ANSWER, next_at)
        return [RetransmitAnswer(dialog=self.id, invite=pending.invite, response=pending.response)]

    def _stop_answer(self) -> None:
        self._pending = None
        self._owner._schedule.cancel(self.id, _ANSWER)

    # -- what arrives ----------------------------------------------------------

    def _receive_request(self, request: Request) -> Response | None:
        """Check and apply a request of this dialog (§12.2.2); a refusal, or ``None``."""
        cseq = request.cseq
        if cseq is None:
            return response_to(request, 400, "Missing CSeq")
        if request.method == "ACK":
            if self._pending is not None and cseq.number == self._pending.cseq:
                self._stop_answer()  # §13.3.1.4: the ACK ends the retransmissions
            return None
        if request.method == "CANCEL":
            return None  # its CSeq is its INVITE's: not a new request in the sequence
        if self.remote_seq is not None and cseq.number < self.remote_seq:
            return response_to(request, 500, "Out of Order")  # §12.2.2
        refresh = request.method in TARGET_REFRESH_METHODS
        contacts = request.headers.contacts() if refresh else ()  # may raise: before changes
        self.remote_seq = cseq.number
        if contacts:
            self.remote_target = contacts[0].uri
        if request.method == "BYE":
            self._apply(DialogTrigger.END)
        return None

    def _receive_response(self, request: Request, response: Response) -> None:
        """Apply a response to a request we sent in this dialog (§12.2.1.2)."""
        if response.status in (408, 481):
            self._apply(DialogTrigger.END)
        elif 200 <= response.status < 300 and request.method in TARGET_REFRESH_METHODS:
            contacts = response.headers.contacts()
            if contacts:
                self.remote_target = contacts[0].uri

    def _confirm_or_refresh(self, response: Response) -> None:
        """A UAC's early dialog hears more from its INVITE: a 1xx, or the 2xx (§13.2.2.4)."""
        contacts = response.headers.contacts()
        if contacts:
            self.remote_target = contacts[0].uri
        if 200 <= response.status < 300 and self.state is DialogState.EARLY:
            self.route_set = tuple(reversed(response.headers.record_routes()))
        self._apply(_trigger(response.status))

    def _apply(self, trigger: DialogTrigger) -> None:
        try:
            self.state = DIALOG_TRANSITIONS[(self.state, trigger)]
        except KeyError:
            raise InvalidTransition(f"{trigger.value} in a {self.state.value} dialog") from None
        if self.state is DialogState.TERMINATED:
            self._stop_answer()
            self._owner._forget(self)


class Dialogs:
    """Every live dialog, found by Call-ID and tags, and the 2xx retransmissions they owe."""

    __slots__ = ("_by_invite", "_dialogs", "_ended", "_ended_order", "_schedule", "timers")

    def __init__(self, *, timers: Timers | None = None) -> None:
        self.timers = timers or Timers()
        self._dialogs: dict[DialogId, Dialog] = {}
        # The last dialogs to end, so that a late copy of their 2xx does not revive them.
        self._ended: set[DialogId] = set()
        self._ended_order: deque[DialogId] = deque()
        # (Call-ID, local tag) -> the dialogs one INVITE of ours created (forking, §12.3)
        self._by_invite: dict[tuple[str, str], set[DialogId]] = {}
        self._schedule: Schedule[DialogId, str] = Schedule()

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __contains__(self, dialog: object) -> bool:
        return dialog in self._dialogs

    def get(self, dialog: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog)

    def remove(self, dialog: DialogId) -> None:
        """Forget a dialog without a BYE (its INVITE was cancelled, the call is torn down)."""
        found = self._dialogs.get(dialog)
        if found is not None:
            found._apply(DialogTrigger.END)

    def _forget(self, dialog: Dialog) -> None:
        if self._dialogs.pop(dialog.id, None) is not None and dialog.id not in self._ended:
            self._ended.add(dialog.id)
            self._ended_order.append(dialog.id)
            if len(self._ended_order) > ENDED_MEMORY:
                self._ended.discard(self._ended_order.popleft())
        self._schedule.cancel_all(dialog.id)
        siblings = self._by_invite.get((dialog.id.call_id, dialog.id.local_tag))
        if siblings is not None:
            siblings.discard(dialog.id)
            if not siblings:
                del self._by_invite[(dialog.id.call_id, dialog.id.local_tag)]

    def _add(self, dialog: Dialog) -> Dialog:
        self._dialogs[dialog.id] = dialog
        self._by_invite.setdefault((dialog.id.call_id, dialog.id.local_tag), set()).add(dialog.id)
        return dialog

    # -- creation -------------------------------------------------------------

    def create_uas(
        self,
        invite: Request,
        *,
        contact: NameAddress,
        local_tag: str | None = None,
        via: Via | None = None,
    ) -> Dialog:
        """An early dialog for ``invite``, which we are about to answer (§12.1.1).

        ``contact`` is ours; ``via`` (our sent-by for requests in the dialog)
        defaults to the host, port and transport of ``contact``. An INVITE
        without From, To, Call-ID, CSeq or Contact cannot make a dialog: a
        ``ValueError``, for the TU to answer 400.
        """
        to, sender, call_id, cseq = (
            invite.to_address,
            invite.from_address,
            invite.call_id,
            invite.cseq,
        )
        contacts = invite.headers.contacts()
        if invite.method != "INVITE" or to is None or sender is None or call_id is None:
            raise ValueError("not an INVITE with From, To and Call-ID")
        if to.tag is not None:
            raise ValueError("an INVITE with a To tag belongs to a dialog already")
        if cseq is None or not contacts:
            raise ValueError("an INVITE without CSeq or Contact (§8.1.1.8)")
        tag = local_tag or new_tag()
        dialog_id = DialogId(call_id=call_id, local_tag=tag, remote_tag=sender.tag or "")
        if dialog_id in self._dialogs:
            raise ValueError(f"dialog {dialog_id} exists already")
        return self._add(
            Dialog(
                owner=self,
                id=dialog_id,
                role=DialogRole.UAS,
                state=DialogState.EARLY,
                local_address=to.with_tag(tag),
                remote_address=sender,
                remote_target=contacts[0].uri,
                route_set=invite.headers.record_routes(),  # in order, for a UAS
                local_seq=None,
                remote_seq=cseq.number,
                contact=contact,
                via=via or via_for_contact(contact),
            )
        )

    def _create_uac(self, invite: Request, response: Response, dialog_id: DialogId) -> Dialog:
        """A dialog from a 1xx with a To tag or a 2xx to our INVITE (§12.1.2)."""
        contacts = response.headers.contacts()
        our_contacts = invite.headers.contacts()
        to, sender, via, cseq = (
            response.to_address,
            invite.from_address,
            invite.top_via,
            invite.cseq,
        )
        if to is None or sender is None or via is None or cseq is None or not our_contacts:
            raise ValueError("our INVITE lacks From, Via, CSeq or Contact")
        dialog = Dialog(
            owner=self,
            id=dialog_id,
            role=DialogRole.UAC,
            state=DialogState.EARLY,
            local_address=sender,
            remote_address=to,
            # §12.1.2: no Contact in the response leaves the target where the INVITE went.
            remote_target=contacts[0].uri if contacts else invite.uri,
            route_set=tuple(reversed(response.headers.record_routes())),
            local_seq=cseq.number,
            remote_seq=None,
            contact=our_contacts[0],
            via=reusable_via(via),
        )
        dialog._apply(_trigger(response.status))
        return self._add(dialog)

    # -- what arrives ----------------------------------------------------------

    def apply_request(self, request: Request, now: float) -> Dialog | Response | None:
        """Match an arriving request to its dialog and apply it (§12.2.2).

        ``None``: the request is outside any dialog (no To tag), or an ACK for
        no dialog we know (drop it). A ``Response``: send it, the request is
        refused (481: no such dialog; 500: its CSeq is lower than the last).
        A ``Dialog``: the request is in order and applied — the remote CSeq
        and target updated, the 2xx retransmissions stopped by their ACK, the
        dialog ended by a BYE (and forgotten; the TU still answers it 200).
        A malformed Contact in a target refresh raises ``ParseError`` (answer 400).
        """
        to, sender, call_id = request.to_address, request.from_address, request.call_id
        if to is None or to.tag is None or call_id is None:
            return None
        remote_tag = (sender.tag if sender is not None else None) or ""
        dialog_id = DialogId(call_id=call_id, local_tag=to.tag, remote_tag=remote_tag)
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            if request.method == "ACK":
                return None
            return response_to(request, 481)  # §12.2.2
        refusal = dialog._receive_request(request)
        return dialog if refusal is None else refusal

    def apply_response(self, request: Request, response: Response) -> Dialog | None:
        """Apply a response to a request of ours; the dialog it concerns, if any.

        Give it every response to an INVITE (forks make one dialog each: ACK
        and BYE those you do not keep) and to requests in a dialog. A
        malformed Contact or Record-Route raises ``ParseError``.
        """
        call_id, sender = request.call_id, request.from_address
        local_tag = sender.tag if sender is not None else None
        if call_id is None or local_tag is None:
            return None
        requested_to = request.to_address
        if requested_to is not None and requested_to.tag is not None:  # in a dialog
            in_dialog = DialogId(call_id=call_id, local_tag=local_tag, remote_tag=requested_to.tag)
            found = self._dialogs.get(in_dialog)
            if found is not None:
                found._receive_response(request, response)
            return found
        if request.method != "INVITE":
            return None
        if response.status >= 300:  # §12.3: ends every early dialog of this INVITE
            for dialog_id in list(self._by_invite.get((call_id, local_tag), ())):
                early = self._dialogs.get(dialog_id)
                if early is not None and early.state is DialogState.EARLY:
                    early._apply(DialogTrigger.FAILURE)
            return None
        to = response.to_address
        if to is None or to.tag is None:
            return None  # a 100, or a 1xx without a tag: no dialog (§12.1)
        dialog_id = DialogId(call_id=call_id, local_tag=local_tag, remote_tag=to.tag)
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            if dialog_id in self._ended:
                return None  # a late 2xx of a dialog that ended: ACK it with the one you hold
            return self._create_uac(request, response, dialog_id)
        dialog._confirm_or_refresh(response)
        return dialog

    # -- time -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return self._schedule.next_deadline()

    def advance(self, now: float) -> list[DialogOutput]:
        """The 2xx retransmissions due at ``now``, and the answers given up on."""
        outputs: list[DialogOutput] = []
        while (due := self._schedule.pop_due(now)) is not None:
            dialog = self._dialogs.get(due[0])
            if dialog is not None:
                outputs += dialog._answer_timer(now)
        return outputs


__all__ = [
    "DIALOG_TRANSITIONS",
    "TARGET_REFRESH_METHODS",
    "AnswerUnacknowledged",
    "Dialog",
    "DialogId",
    "DialogOutput",
    "DialogRole",
    "DialogState",
    "DialogTrigger",
    "Dialogs",
    "RetransmitAnswer",
    "new_call_id",
    "new_request",
    "new_tag",
]
