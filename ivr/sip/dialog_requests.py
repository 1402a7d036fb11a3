"""Requests built from scratch: identifiers and the mandatory fields (RFC 3261 §8.1.1).

``new_request`` builds a request outside any dialog — an INVITE to an
agent's phone or to a backup centre, an OPTIONS ping — with every field
§8.1.1 requires: To, From with a fresh tag, a new Call-ID, CSeq, Max-Forwards
70, a Via with a fresh branch (``ivr.sip.transactions.new_branch``) and, for
an INVITE, a Contact. ``ivr.sip.dialogs`` builds requests inside a dialog
with the same ``assemble_request``. The identifiers are random enough to be
unique in space and time without coordination: tags of 64 bits (§19.3 asks
for 32), Call-IDs of 128 (§8.1.1.4).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from ivr.sip.fields import NameAddress, Via
from ivr.sip.grammar import Params
from ivr.sip.headers import Headers
from ivr.sip.message import Request
from ivr.sip.transactions import new_branch
from ivr.sip.uri import SipUri, Uri

MAX_FORWARDS = "70"  # RFC 3261 §8.1.1.6


def new_tag() -> str:
    """A From or To tag: 64 random bits, more than §19.3's 32."""
    return secrets.token_hex(8)


def new_call_id(host: str | None = None) -> str:
    """A Call-ID unique in space and time (§8.1.1.4): 128 random bits, ``@host`` if given."""
    word = secrets.token_hex(16)
    return word if host is None else f"{word}@{host}"


def assemble_request(
    method: str,
    uri: Uri,
    *,
    via: Via,
    routes: Iterable[NameAddress],
    from_address: NameAddress,
    to_address: NameAddress,
    call_id: str,
    cseq: int,
    contact: NameAddress | None,
    headers: Iterable[tuple[str, str]],
    body: bytes,
) -> Request:
    """A request with the fields of §8.1.1 in the usual order, and a fresh branch in ``via``."""
    fields = [
        ("Via", str(via.with_param("branch", new_branch()))),
        ("Max-Forwards", MAX_FORWARDS),
        *(("Route", str(route)) for route in routes),
        ("From", str(from_address)),
        ("To", str(to_address)),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        fields.append(("Contact", str(contact)))
    fields.extend(headers)
    return Request(method=method, uri=uri, headers=Headers(fields), body=body)


def new_request(
    method: str,
    *,
    uri: Uri,
    from_address: NameAddress,
    to_address: NameAddress,
    via: Via,
    contact: NameAddress | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    routes: Iterable[NameAddress] = (),
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Request:
    """A request outside any dialog (§8.1.1): an INVITE to an agent's phone or another site.

    ``from_address`` gets a fresh tag unless it has one; ``via`` (our
    sent-by, with ``rport`` if wanted) gets a fresh branch; a Call-ID is made
    up from ``via``'s host unless given. An INVITE needs ``contact``
    (§8.1.1.8). ``headers`` (Content-Type, Supported, Allow…) follow the
    mandatory ones.
    """
    if method == "INVITE" and contact is None:
        raise ValueError("an INVITE needs a Contact (RFC 3261 §8.1.1.8)")
    return assemble_request(
        method,
        uri,
        via=via,
        routes=routes,
        from_address=from_address if from_address.tag else from_address.with_tag(new_tag()),
        to_address=to_address,
        call_id=call_id or new_call_id(via.host if ":" not in via.host else None),
        cseq=cseq,
        contact=contact,
        headers=headers,
        body=body,
    )


def via_for_contact(contact: NameAddress) -> Via:
    """Our Via (no branch yet) for the host, port and transport of our Contact, with rport."""
    uri = contact.uri
    if not isinstance(uri, SipUri):
        raise ValueError("our Contact must be a SIP URI")
    return Via(
        transport=(uri.transport or "udp").upper(),
        host=uri.host,
        port=uri.port,
        params=Params([("rport", None)]),  # RFC 3581: answer us where we sent from
    )


def reusable_via(via: Via) -> Via:
    """``via`` without what belongs to one hop (branch, received, rport's value)."""
    params = via.params.without("branch").without("received")
    if "rport" in params:
        params = params.with_param("rport")
    return Via(transport=via.transport, host=via.host, port=via.port, params=params)


__all__ = [
    "MAX_FORWARDS",
    "assemble_request",
    "new_call_id",
    "new_request",
    "new_tag",
    "reusable_via",
    "via_for_contact",
]
