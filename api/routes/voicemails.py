"""Messages callers left in the IVR's voicemail: listed, read, listened to, marked, deleted.

Supervisors and admins only: a message is a caller's own words. The row is
in the store (``api.store.voicemails``), the audio a WAV file under the
voicemail directory; deleting a message removes both.
"""

from __future__ import annotations

import logging
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from acd.errors import CommandRejected
from api import audit
from api.deps import ServerDep, StaffDep
from api.errors import ERROR_RESPONSES
from api.schemas import Name, VoicemailPatch, VoicemailPublic
from api.server import Server, Unavailable
from api.store import voicemails
from api.store.voicemails import Voicemail

router = APIRouter(prefix="/v1/voicemails", tags=["voicemail"], responses=ERROR_RESPONSES)
log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # the column is a BIGINT: a larger id cannot name a message
VoicemailId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def _db(server: Server, work: Any) -> Any:
    """Run a store call; the database being down is a 503, not a 500."""
    try:
        return await work
    except Exception as error:
        if not await server.database.ping():
            raise Unavailable("database_unavailable", "the database is unreachable") from None
        raise error


async def _found(server: Server, voicemail_id: int) -> Voicemail:
    found = await _db(server, voicemails.get_voicemail(server.database, voicemail_id))
    if found is None:
        raise CommandRejected("unknown_voicemail", f"no voicemail {voicemail_id}")
    return found  # type: ignore[no-any-return]


def _file(server: Server, message: Voicemail) -> FilePath:
    """The message's WAV file, which must lie in the voicemail directory."""
    directory = server.settings.voicemail_directory().resolve()
    path = (directory / message["path"]).resolve()
    if not path.is_relative_to(directory):
        raise CommandRejected("voicemail_audio_missing", f"voicemail {message['id']} has no audio")
    return path


@router.get("", summary="Messages left, newest first")
async def list_voicemails(
    server: ServerDep,
    _: StaffDep,
    mailbox: Annotated[Name | None, Query(description="only this mailbox's")] = None,
    heard: Annotated[bool | None, Query(description="only those heard (or not)")] = None,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="the next page: ids below the last seen")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[VoicemailPublic]:
    found = await _db(
        server,
        voicemails.list_voicemails(
            server.database, mailbox=mailbox, heard=heard, before=before, limit=limit
        ),
    )
    return [VoicemailPublic.model_validate(m) for m in found]


@router.get("/{voicemail_id}", summary="A message")
async def get_voicemail(
    voicemail_id: VoicemailId, server: ServerDep, _: StaffDep
) -> VoicemailPublic:
    return VoicemailPublic.model_validate(await _found(server, voicemail_id))


@router.get(
    "/{voicemail_id}/audio",
    summary="A message's audio (8 kHz µ-law WAV)",
    response_class=FileResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "the recording"}},
)
async def get_voicemail_audio(
    voicemail_id: VoicemailId, server: ServerDep, principal: StaffDep
) -> FileResponse:
    message = await _found(server, voicemail_id)
    path = _file(server, message)
    if not path.is_file():
        raise CommandRejected(
            "voicemail_audio_missing", f"voicemail {voicemail_id}'s audio file is missing"
        )
    audit.acted_for(
        principal, "listen_voicemail", None, message["call_id"], voicemail_id=voicemail_id
    )
    return FileResponse(path, media_type="audio/wav", filename=f"voicemail-{voicemail_id}.wav")


@router.patch("/{voicemail_id}", summary="Mark a message heard, or not heard")
async def patch_voicemail(
    voicemail_id: VoicemailId, patch: VoicemailPatch, server: ServerDep, principal: StaffDep
) -> VoicemailPublic:
    found = await _db(server, voicemails.mark_heard(server.database, voicemail_id, patch.heard))
    if found is None:
        raise CommandRejected("unknown_voicemail", f"no voicemail {voicemail_id}")
    audit.acted_for(
        principal,
        "mark_voicemail",
        None,
        found["call_id"],
        voicemail_id=voicemail_id,
        heard=patch.heard,
    )
    return VoicemailPublic.model_validate(found)


@router.delete("/{voicemail_id}", status_code=204, summary="Delete a message and its audio")
async def delete_voicemail(
    voicemail_id: VoicemailId, server: ServerDep, principal: StaffDep
) -> None:
    gone = await _db(server, voicemails.delete_voicemail(server.database, voicemail_id))
    if gone is None:
        raise CommandRejected("unknown_voicemail", f"no voicemail {voicemail_id}")
    audit.acted_for(principal, "delete_voicemail", None, gone["call_id"], voicemail_id=voicemail_id)
    try:
        _file(server, gone).unlink(missing_ok=True)
    except (OSError, CommandRejected) as error:  # the row is gone: the file is only disk space
        log.warning(
            "voicemail %s deleted but not its file %s: %s", voicemail_id, gone["path"], error
        )
