"""The audit log: who failed to authenticate, who changed the configuration, who acted for whom.

One record per fact on the ``acd.audit`` logger, at INFO whatever the log
level, with ``"audit": true`` and these fields (``api.logs`` masks them like
any other):

- ``event``: ``auth_failed`` (a missing, malformed, expired or forged token
  on REST or the WebSocket, a wrong metrics token, a SIP digest failure),
  ``access_denied`` (a valid token whose role may not do this),
  ``admin_change`` (queues, agents, customers and their numbers, SIP
  credentials, tokens issued, disaster mode) or ``supervisor_action`` (a
  supervisor or an admin running an agent's softphone command for them, or
  listening to, marking or deleting a caller's voicemail);
- ``channel``: ``rest``, ``ws`` or ``sip``; ``source``: the peer's address;
- for the last three, ``actor`` (the token's subject) and ``role``;
- for a change, ``action`` (``create``, ``update``, ``delete``), ``target``
  (what kind of thing) and ``target_id``, and for a partial update the
  ``fields`` named, never their values.

What is never written: a token, a password, a digest response or hash. A
failure's ``reason`` is the verifier's own (PyJWT's message, the digest
check's reason), which names the fault and not the secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import Enum
from typing import Any

from api.auth import Principal
from api.logs import AUDIT_LOGGER
from ivr.registrations import RegisterRefused

log = logging.getLogger(AUDIT_LOGGER)


class Channel(Enum):
    REST = "rest"
    WS = "ws"
    SIP = "sip"


class Action(Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


def auth_failed(channel: Channel, source: str, reason: str, **more: Any) -> None:
    """Credentials were missing or refused."""
    log.info(
        "authentication failed (%s) from %s: %s",
        channel.value,
        source,
        reason,
        extra={
            "event": "auth_failed",
            "channel": channel.value,
            "source": source,
            "reason": reason[:200],
            **more,
        },
    )


def register_refused(refused: RegisterRefused) -> None:
    """A SIP REGISTER failed digest authentication, or named an address not its user's."""
    peer = refused.peer
    auth_failed(
        Channel.SIP,
        f"{peer.host}:{peer.port}",
        refused.reason,
        transport=peer.transport,
        username=refused.username,
        status=refused.status,
        banned=refused.banned,
    )


def access_denied(principal: Principal, source: str, what: str, needed: str) -> None:
    """A valid token tried what its role may not do."""
    log.info(
        "%s %s (%s) may not %s",
        principal.role.value,
        principal.subject,
        source,
        what,
        extra={
            "event": "access_denied",
            "channel": Channel.REST.value,
            "source": source,
            **_actor(principal),
            "what": what,
            "needed": needed,
        },
    )


def changed(
    principal: Principal,
    action: Action,
    target: str,
    target_id: str,
    *,
    fields: Iterable[str] = (),
    **more: Any,
) -> None:
    """A change of the configuration (or of who may connect) went through."""
    names = sorted(fields)
    log.info(
        "%s %s: %s %s %s",
        principal.role.value,
        principal.subject,
        action.value,
        target,
        target_id,
        extra={
            "event": "admin_change",
            **_actor(principal),
            "action": action.value,
            "target": target,
            "target_id": target_id,
            **({"fields": names} if names else {}),
            **more,
        },
    )


def acted_for(
    principal: Principal,
    command: str,
    agent_id: str | None,
    call_id: str | None,
    **more: Any,
) -> None:
    """A supervisor or an admin ran a softphone command (for an agent, or on a call), or
    handled a caller's voicemail (listened to it, marked it, deleted it)."""
    log.info(
        "%s %s ran %s for agent %s on call %s",
        principal.role.value,
        principal.subject,
        command,
        agent_id or "-",
        call_id or "-",
        extra={
            "event": "supervisor_action",
            **_actor(principal),
            "command": command,
            "agent_id": agent_id,
            "call_id": call_id,
            **more,
        },
    )


def _actor(principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {"actor": principal.subject, "role": principal.role.value}
    if principal.teams:
        out["teams"] = sorted(principal.teams)
    return out
