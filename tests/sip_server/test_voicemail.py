"""Voicemail through the running server: a SIP caller leaves a message, the API serves it.

Real server, real UDP, the demo IVR on DNIS 100 (1: English, 3: voicemail).
The caller's ``FarEnd`` sends known µ-law payloads after the beep; the WAV
served by ``/audio`` must hold exactly those samples, with only silence
around them (the wall-clock padding before the first packet and after the
last).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from server.harness import Desk, Running, running, token

from ivr.calls import Calls
from ivr.media.testing import FarEnd
from ivr.rtp.g711 import Codec
from ivr.rtp.wav import WavFormat, parse_wav
from sip_server.phone import UdpPhone, media_address, offer
from sip_server.test_calls import DEMO_IVR, eventually

CENTRE: dict[str, Any] = {"queues": [{"id": "sales"}, {"id": "support"}, {"id": "billing"}]}
CALLER = "5557001"
SILENCE = Codec.PCMU.silence
# Fifty 20 ms frames, each of its own code: a frame lost, doubled or moved shows.
VOICE = [bytes((0x10 + i,)) * 160 for i in range(50)]


@asynccontextmanager
async def leaving_a_message(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Running, UdpPhone, FarEnd, tuple[str, int]]]:
    """The server with the demo IVR; a caller on 100 who chose English, then voicemail,
    and is now being recorded (the intro and the beep are over)."""
    settings = {"sip_port": 0, "ivr_flow": DEMO_IVR, "voicemail_dir": tmp_path / "voicemail"}
    async with running(database_url, tmp_path, CENTRE, **settings) as centre:
        caller = await UdpPhone.open(centre.server.switchboard.port)
        media = await FarEnd.open()
        try:
            answer = await caller.call("100", offer(media.address[1]), caller=CALLER)
            assert answer.status == 200
            to_leg = media_address(answer)
            await eventually(lambda: len(media.datagrams) > 0)  # the welcome plays
            media.press("1", to_leg)  # English
            await asyncio.sleep(0.1)
            media.press("3", to_leg)  # leave a message
            calls: Calls = centre.server.switchboard.calls
            assert calls.messages is not None
            await eventually(lambda: bool(calls.callers()))
            call_id = calls.callers()[0].call_id
            await eventually(lambda: calls.messages.recording(call_id) is not None, timeout=20)
            yield centre, caller, media, to_leg
        finally:
            caller.close()
            media.close()


async def one_message(centre: Running) -> dict[str, Any]:
    async def filed() -> bool:
        return len((await centre.admin.get("/v1/voicemails")).json()) == 1

    await eventually(filed, timeout=10)
    return dict((await centre.admin.get("/v1/voicemails")).json()[0])


def assert_holds_only(voice: list[bytes], wav: bytes) -> None:
    """The file is µ-law, and the voice sent, in order and whole, with silence around it."""
    audio = parse_wav(wav)
    assert audio.format is WavFormat.ULAW
    before, found, after = audio.data.partition(b"".join(voice))
    assert found, "the voice sent is not in the recording"
    assert set(before) <= {SILENCE} and set(after) <= {SILENCE}


async def test_a_caller_leaves_a_message_ended_by_hash_and_a_supervisor_lists_hears_and_deletes_it(
    database_url: str, tmp_path: Path
) -> None:
    async with leaving_a_message(database_url, tmp_path) as (centre, caller, media, to_leg):
        desk = await Desk.open(centre.ws_url(), token("supervisor"))
        try:
            for frame in VOICE:
                media.send_audio(frame, to_leg)
            media.press("#", to_leg)
            bye = await caller.incoming("BYE", timeout=15)  # after "thank you"
            caller.respond(bye, 200)

            message = await one_message(centre)
            assert message["ani"] == CALLER
            assert message["dnis"] == "100"
            assert message["mailbox"] == "general"
            assert message["language"] == "en"
            assert message["seconds"] >= len(VOICE) * 0.02
            assert message["heard_at"] is None
            url = f"/v1/voicemails/{message['id']}"
            assert (await centre.admin.get(url)).json() == message
            notice = await desk.wait_for(lambda m: m["type"] == "voicemail.left")
            assert notice["data"]["id"] == message["id"]
            assert notice["data"]["ani"] == CALLER

            audio = await centre.admin.get(f"{url}/audio")
            assert audio.status_code == 200
            assert audio.headers["content-type"] == "audio/wav"
            assert_holds_only(VOICE, audio.content)

            heard = await centre.admin.patch(url, json={"heard": True})
            assert heard.status_code == 200 and heard.json()["heard_at"] is not None
            files = list((tmp_path / "voicemail").rglob("*.wav"))
            assert len(files) == 1
            assert (await centre.admin.delete(url)).status_code == 204
            assert not files[0].exists()
            for gone in (url, f"{url}/audio"):
                missing = await centre.admin.get(gone)
                assert missing.status_code == 404
                assert missing.json()["error_id"] == "unknown_voicemail"
            assert (await centre.admin.delete(url)).status_code == 404
            assert (await centre.admin.get("/v1/voicemails")).json() == []
        finally:
            await desk.close()


async def test_a_caller_who_hangs_up_while_recorded_keeps_their_message(
    database_url: str, tmp_path: Path
) -> None:
    async with leaving_a_message(database_url, tmp_path) as (centre, caller, media, to_leg):
        for frame in VOICE[:25]:
            media.send_audio(frame, to_leg)
        calls: Calls = centre.server.switchboard.calls
        assert calls.messages is not None
        recording = calls.messages.recording(calls.callers()[0].call_id)
        assert recording is not None
        await eventually(lambda: recording.samples >= 25 * 160)  # all arrived before the BYE
        assert (await caller.hang_up()).status == 200

        message = await one_message(centre)
        assert message["ani"] == CALLER
        assert message["seconds"] >= 25 * 0.02
        audio = await centre.admin.get(f"/v1/voicemails/{message['id']}/audio")
        assert_holds_only(VOICE[:25], audio.content)

        agent = centre.client(token("agent", "ann"))
        try:
            assert (await agent.get("/v1/voicemails")).status_code == 403
        finally:
            await agent.aclose()


QUICK_VOICEMAIL = """\
language: en
languages: [en]
entry_points: {"200": message}
nodes:
  message: {kind: voicemail, beep: false, max_seconds: 1, mailbox: night, after: [goodbye]}
"""


async def test_a_message_stops_at_the_nodes_limit_and_the_caller_is_thanked_and_hung_up(
    database_url: str, tmp_path: Path
) -> None:
    flow = tmp_path / "quick.yaml"
    flow.write_text(QUICK_VOICEMAIL)
    settings = {"sip_port": 0, "ivr_flow": flow, "voicemail_dir": tmp_path / "voicemail"}
    async with running(database_url, tmp_path, CENTRE, **settings) as centre:
        caller = await UdpPhone.open(centre.server.switchboard.port)
        media = await FarEnd.open()
        try:
            answer = await caller.call("200", offer(media.address[1]), caller=CALLER)
            assert answer.status == 200
            for frame in VOICE[:10]:
                media.send_audio(frame, media_address(answer))
            bye = await caller.incoming("BYE", timeout=10)  # the limit, then "goodbye"
            caller.respond(bye, 200)
            message = await one_message(centre)
            assert message["mailbox"] == "night"
            assert message["seconds"] == 1.0  # padded to the limit, never beyond
            audio = await centre.admin.get(f"/v1/voicemails/{message['id']}/audio")
            wav = parse_wav(audio.content)
            assert len(wav.data) == 8000
            assert b"".join(VOICE[:10]) in wav.data
        finally:
            caller.close()
            media.close()


async def test_a_message_being_recorded_when_the_server_stops_is_filed_all_the_same(
    database_url: str, tmp_path: Path
) -> None:
    async with leaving_a_message(database_url, tmp_path) as (centre, _caller, media, to_leg):
        for frame in VOICE[:25]:
            media.send_audio(frame, to_leg)
        calls: Calls = centre.server.switchboard.calls
        assert calls.messages is not None
        recording = calls.messages.recording(calls.callers()[0].call_id)
        assert recording is not None
        await eventually(lambda: recording.samples >= 25 * 160)
        await centre.stop()  # the caller is still speaking

    settings = {"voicemail_dir": tmp_path / "voicemail"}
    async with running(database_url, tmp_path, CENTRE, **settings) as again:
        message = await one_message(again)
        assert message["ani"] == CALLER
        audio = await again.admin.get(f"/v1/voicemails/{message['id']}/audio")
        assert_holds_only(VOICE[:25], audio.content)
