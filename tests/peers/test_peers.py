"""The SIP peers themselves: SIPp scenarios against SIPp, against a tiny UAS of ours, and baresip.

These pin what the acceptance tests and the load bench rely on: that each
scenario of ``loadtest/sipp`` completes against a peer that behaves, that it
fails against one that does not, and that the helpers report both. The tiny
UAS is built on our own SIP and RTP layers (``ivr.sip``, ``ivr.rtp``) with a
socket around them, no more: just enough to answer, and to hear keys.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from ivr.rtp import DtmfReceiver, RtpError, RtpPacket
from ivr.sip import ParseError, Request, parse_message, response_to, serialize
from ivr.sip.digest import Algorithm, DigestAuthority, Outcome, hashed_secrets
from peers import LOOPBACK, free_port, free_port_pair, peer_unavailable, require_binary
from peers.baresip import Account, BaresipError, Event, baresip_phone, module_dir
from peers.sipp import (
    EXIT_FATAL,
    SCENARIOS,
    Builtin,
    Direction,
    SippStep,
    parse_errors,
    parse_screen,
    parse_statistics,
    register_agents,
    run_sipp,
    start_sipp,
)

TELEPHONE_EVENT = 96  # what SIPp 3.6's play_dtmf sends, so what caller.xml offers


# -- fixtures -------------------------------------------------------------------


@pytest.fixture
def sipp() -> None:
    require_binary("sipp")


@pytest.fixture
def raw_sockets() -> None:
    """SIPp sends keys (play_dtmf) through a raw socket: root, or CAP_NET_RAW."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()
    except PermissionError:
        peer_unavailable("SIPp needs a raw socket (root or CAP_NET_RAW) to send DTMF")


@pytest.fixture
def baresip() -> None:
    require_binary("baresip")
    try:
        module_dir()
    except FileNotFoundError as exc:
        peer_unavailable(str(exc))


REALM = "tiny"
PASSWORDS = {"agent1": "secret1"}


def tiny_authority(algorithms: tuple[Algorithm, ...]) -> DigestAuthority:
    """Our own digest checks (ivr.sip.digest) for the tiny UAS's REGISTER."""

    def lookup(user: str) -> dict[Algorithm, str] | None:
        password = PASSWORDS.get(user)
        return None if password is None else hashed_secrets(user, REALM, password, algorithms)

    return DigestAuthority(
        realm=REALM, secret=b"tiny uas secret, 16+ bytes", lookup=lookup, algorithms=algorithms
    )


@dataclass
class TinyUas:
    """Answers INVITE, OPTIONS, BYE and REGISTER on loopback; hears RTP keys.

    One dialog per INVITE branch. ``copies_make_calls`` makes it a broken
    server that answers each copy of a retransmitted INVITE as a new call, and
    resends the first call's 2xx when an ACK comes, as its Timer G would.
    REGISTER goes through ``authority``: a 401 with its challenges, or 200.
    """

    copies_make_calls: bool = False
    authority: DigestAuthority | None = None
    outcomes: list[Outcome] = field(default_factory=list)  # of each REGISTER's credentials
    port: int = 0
    rtp_port: int = 0
    invites: int = 0
    dialogs: int = 0
    acks: int = 0
    byes: int = 0
    options: int = 0
    digits: str = ""
    _answers: dict[str, bytes] = field(default_factory=dict)
    _keys: DtmfReceiver = field(default_factory=DtmfReceiver)
    _sip: asyncio.DatagramTransport | None = None
    _rtp: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sip, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_sip), local_addr=(LOOPBACK, 0)
        )
        rtp, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self._on_rtp), local_addr=(LOOPBACK, 0)
        )
        self._sip, self._rtp = sip, rtp
        self.port = sip.get_extra_info("sockname")[1]
        self.rtp_port = rtp.get_extra_info("sockname")[1]

    def close(self) -> None:
        for transport in (self._sip, self._rtp):
            if transport is not None:
                transport.close()

    def _on_sip(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            request = parse_message(data)
        except ParseError:
            return
        if not isinstance(request, Request):
            return
        reply = self._answer(request)
        if reply and self._sip is not None:
            self._sip.sendto(reply, source)

    def _answer(self, request: Request) -> bytes | None:
        if request.method == "INVITE":
            self.invites += 1
            via = request.top_via
            branch = (via.branch if via else None) or ""
            if branch in self._answers and not self.copies_make_calls:
                return self._answers[branch]  # RFC 3261 §17.2.1, RFC 6026 §7.1: the same answer
            self.dialogs += 1
            sdp = (
                "v=0\r\no=tiny 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {self.rtp_port} RTP/AVP 0 {TELEPHONE_EVENT}\r\n"
                f"a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000\r\n"
            ).encode()
            answer = serialize(
                response_to(
                    request,
                    200,
                    to_tag=f"tiny{self.dialogs}",
                    headers=[
                        ("Contact", f"<sip:tiny@{self.address}>"),
                        ("Content-Type", "application/sdp"),
                    ],
                    body=sdp,
                )
            )
            self._answers.setdefault(branch, answer)
            self._answers.setdefault("first", answer)
            return answer
        if request.method == "ACK":
            self.acks += 1
            return self._answers["first"] if self.copies_make_calls and self.dialogs > 1 else None
        if request.method == "BYE":
            self.byes += 1
            return serialize(response_to(request, 200))
        if request.method == "OPTIONS":
            self.options += 1
            return serialize(response_to(request, 200))
        if request.method == "REGISTER" and self.authority is not None:
            return self._register(request, self.authority)
        return serialize(response_to(request, 501))

    def _register(self, request: Request, authority: DigestAuthority) -> bytes:
        verdict = authority.verify(
            request.headers.get_all("Authorization"),
            method="REGISTER",
            request_uri=str(request.uri),
            now=asyncio.get_running_loop().time(),
        )
        self.outcomes.append(verdict.outcome)
        if verdict.outcome is Outcome.ACCEPTED:
            contact = request.headers.get("Contact") or ""
            return serialize(
                response_to(request, 200, to_tag="reg", headers=[("Contact", contact)])
            )
        challenges = [(verdict.header_name, value) for value in verdict.challenges]
        status = verdict.status or 500
        return serialize(response_to(request, status, to_tag="reg", headers=challenges))

    def _on_rtp(self, data: bytes, source: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type == TELEPHONE_EVENT:
            pressed = self._keys.receive(packet)
            if pressed is not None:
                self.digits += pressed.digit


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, handle: Callable[[bytes, tuple[str, int]], None]) -> None:
        self._handle = handle

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._handle(data, addr)


@asynccontextmanager
async def tiny(
    *, copies_make_calls: bool = False, algorithms: tuple[Algorithm, ...] | None = None
) -> AsyncIterator[TinyUas]:
    """A running tiny UAS (a registrar too, given digest ``algorithms``), closed after."""
    authority = None if algorithms is None else tiny_authority(algorithms)
    uas = TinyUas(copies_make_calls=copies_make_calls, authority=authority)
    await uas.start()
    try:
        yield uas
    finally:
        uas.close()


@pytest.fixture
async def tiny_uas() -> AsyncIterator[TinyUas]:
    async with tiny() as uas:
        yield uas


OUR_DEFAULT = (Algorithm.SHA_256, Algorithm.MD5)  # DigestAuthority's, best first
MD5_ONLY = (Algorithm.MD5,)


# -- reading what SIPp wrote (no SIPp needed) -------------------------------------

CLIENT_SCREEN = """\
------------------------------ Scenario Screen -------- [1-9]: Change Screen --
                                 Messages  Retrans   Timeout   Unexpected-Msg
      INVITE ---------->  B-RTD1 1         0         0                         
         100 <----------         0         0         0         0               
         200 <----------  E-RTD1 1         0         0         0               
         ACK ---------->         1         0                                   
       Pause [    500ms]         1                             0        
              [ NOP ]              
         BYE <----------         0         0         7         0               
         BYE ---------->         1         2         0                         
         200 <----------         1         0         0         0               
Last Error: Call-Id: 2-28802@127.0.0.1, receive timeout on message calle...
"""  # noqa: W291 -- SIPp pads its screen lines

SERVER_SCREEN = """\
                                 Messages  Retrans   Timeout   Unexpected-Msg
  ----------> INVITE             1         0         0         0               
  <---------- 180                1         0                                   
  [    $ring] Pause              1                             0        
  <---------- 200                1         3         0                         
  ----------> ACK                0         0         0         1               
------- Waiting for active calls to end. Press [q] again to force exit. -------
"""  # noqa: W291


def test_a_client_screen_is_read_step_by_step() -> None:
    steps = parse_screen(CLIENT_SCREEN)
    assert [s.label for s in steps if s.name != "NOP"] == [
        "INVITE ---------->",
        "100 <----------",
        "200 <----------",
        "ACK ---------->",
        "Pause [ 500ms]",
        "BYE <----------",
        "BYE ---------->",
        "200 <----------",
    ]
    assert steps[0] == SippStep(
        label="INVITE ---------->", name="INVITE", direction=Direction.SENT, messages=1
    )
    waited_for_bye = steps[6]
    assert (waited_for_bye.direction, waited_for_bye.timeouts) == (Direction.RECEIVED, 7)
    assert steps[7].retransmissions == 2


def test_a_server_screen_reads_its_arrows_the_other_way_round() -> None:
    steps = parse_screen(SERVER_SCREEN)
    assert [(s.name, s.direction) for s in steps] == [
        ("INVITE", Direction.RECEIVED),
        ("180", Direction.SENT),
        ("Pause", None),
        ("200", Direction.SENT),
        ("ACK", Direction.RECEIVED),
    ]
    assert steps[3].retransmissions == 3
    assert steps[4].unexpected == 1


def test_the_last_statistics_row_is_the_final_count() -> None:
    text = (
        "StartTime;SuccessfulCall(C);FailedCall(C);\n"
        "2026-12-02\t12:04:28;0;0;\n"
        "2026-12-02\t12:04:29;3;1;\n"
    )
    assert parse_statistics(text) == {
        "StartTime": "2026-12-02\t12:04:29",
        "SuccessfulCall(C)": "3",
        "FailedCall(C)": "1",
    }


def test_the_talk_loops_ticks_are_not_errors() -> None:
    log = (
        "2026-12-02\t12:09:37.815204\t1796213377.815204: Call-Id: 2-1@127.0.0.1, receive "
        "timeout on message caller:12, jumping to label 14"
        "2026-12-02\t12:09:38.000000\t1796213378.000000: Aborting call on unexpected message "
        "for Call-Id '2-1@127.0.0.1': while expecting '200' (index 4), received 'SIP/2.0 486 "
        "Busy Here\nVia: SIP/2.0/UDP 127.0.0.1:5060\n'\n"
    )
    errors = parse_errors(log)
    assert len(errors) == 1
    assert errors[0].startswith("2026-12-02\t12:09:38") and "486 Busy Here\nVia" in errors[0]


# -- SIPp against SIPp ------------------------------------------------------------


async def test_a_sipp_client_completes_a_call_with_a_sipp_server(sipp: None) -> None:
    async with await start_sipp(Builtin("uas")) as server:
        client = await run_sipp(Builtin("uac"), server.address, calls=1, timeout=5)
        # The built-in uas waits 4 s after each call (timewait): stopped, not awaited.
        served = await server.stop(grace=0.5)
    assert client.ok, client.explain()
    assert (client.successful, client.sent("ACK"), client.sent("BYE")) == (1, 1, 1)
    assert client.received("200") == 2  # one for the INVITE, one for the BYE
    assert served.received("INVITE") == served.received("BYE") == 1, served.explain()


async def test_the_caller_reaches_an_agent_phone_and_hangs_up(sipp: None) -> None:
    async with await start_sipp("agent_answer", variables={"ring_ms": 100}) as agents:
        caller = await run_sipp(
            "caller",
            agents.address,
            service="100",
            variables={"talk_ms": 300},
            rtp_echo=True,
            timeout=5,
        )
        agent = await agents.stop()
    assert caller.ok, caller.explain()
    assert (caller.received("180"), caller.sent("ACK"), caller.sent("BYE")) == (1, 1, 1)
    assert agent.successful == 1, agent.explain()
    assert agent.received("ACK") == agent.received("BYE") == 1
    assert agent.sent("BYE") == 0


async def test_an_agent_phone_can_keep_answering_calls_at_a_rate(sipp: None) -> None:
    async with await start_sipp("agent_answer", variables={"talk_ms": 100}) as agents:
        callers = await run_sipp(
            "caller_load",
            agents.address,
            calls=4,
            rate=20,
            injection=SCENARIOS / "callers.csv",
            variables={"talk_ms": 0, "dtmf_delay_ms": 0},
            rtp_echo=True,
            timeout=8,
        )
        agent = await agents.stop()
    assert callers.ok, callers.explain()
    assert callers.successful == agent.successful == 4, agent.explain()


async def test_an_agent_registers_with_the_right_password(
    sipp: None,
) -> None:
    account = {"user": "agent1", "password": "secret1"}
    async with await start_sipp("registrar", calls=1, variables=account) as registrar:
        results = await register_agents(
            registrar.address, {"agent1": "secret1"}, contact_port=5070, timeout=5
        )
        registered = await registrar.wait(5)
    assert results["agent1"].ok, results["agent1"].explain()
    assert results["agent1"].received("401") == results["agent1"].received("200") == 1
    assert registered.ok and registered.sent("200") == 1, registered.explain()


async def test_a_wrong_password_fails_the_registration_on_both_sides(sipp: None) -> None:
    account = {"user": "agent1", "password": "secret1"}
    async with await start_sipp("registrar", calls=1, variables=account) as registrar:
        results = await register_agents(
            registrar.address, {"agent1": "guess"}, contact_port=5070, timeout=5
        )
        registered = await registrar.wait(5)
    assert not results["agent1"].ok and results["agent1"].failed == 1
    assert registered.failed == 1 and registered.sent("403") == 1, registered.explain()


async def test_the_brute_force_counts_every_refused_guess(sipp: None) -> None:
    account = {"user": "agent1", "password": "secret1"}
    async with await start_sipp("registrar", calls=3, variables=account) as registrar:
        guesses = await run_sipp(
            "register_bruteforce",
            registrar.address,
            calls=3,
            rate=50,
            injection=SCENARIOS / "register_bruteforce.csv",
            timeout=5,
        )
        refused = await registrar.wait(5)
    assert guesses.ok, guesses.explain()
    assert guesses.sent("REGISTER") == 6
    assert (guesses.received("401"), guesses.received("403")) == (3, 3)
    assert refused.failed == 3 and refused.sent("403") == 3, refused.explain()
    assert refused.sent("200") == 0


# -- SIPp against our tiny UAS ----------------------------------------------------


async def test_the_caller_presses_its_digits_as_rfc4733_events(
    sipp: None, raw_sockets: None, tiny_uas: TinyUas
) -> None:
    caller = await run_sipp(
        "caller",
        tiny_uas.address,
        service="100",
        # play_dtmf takes 400 ms + (keys + 1) x 2 x tone_ms: 900 ms here.
        variables={"digits": "42#1", "tone_ms": 50, "dtmf_delay_ms": 0, "talk_ms": 1100},
        timeout=6,
    )
    assert caller.ok, caller.explain()
    assert tiny_uas.digits == "42#1"
    assert (tiny_uas.dialogs, tiny_uas.acks, tiny_uas.byes) == (1, 1, 1)


async def test_an_options_ping_is_answered(sipp: None, tiny_uas: TinyUas) -> None:
    ping = await run_sipp("options", tiny_uas.address, calls=3, rate=50, timeout=5)
    assert ping.ok and ping.received("200") == 3, ping.explain()
    assert tiny_uas.options == 3


async def test_an_unanswered_options_ping_fails(sipp: None) -> None:
    nobody = f"{LOOPBACK}:{free_port()}"
    ping = await run_sipp("options", nobody, timeout=5)
    assert not ping.ok and ping.failed == 1
    assert ping.timeouts("200") == 1


async def test_the_copies_of_a_retransmitted_invite_make_one_call(
    sipp: None, tiny_uas: TinyUas
) -> None:
    copies = await run_sipp(
        "invite_retransmit",
        tiny_uas.address,
        service="100",
        extra=["-pause_msg_ign"],
        timeout=6,
    )
    assert copies.ok, copies.explain()
    assert copies.sent("INVITE") == 3
    assert (tiny_uas.invites, tiny_uas.dialogs, tiny_uas.acks, tiny_uas.byes) == (3, 1, 1, 1)


async def test_the_retransmission_scenario_fails_a_server_that_makes_three_calls(
    sipp: None,
) -> None:
    async with tiny(copies_make_calls=True) as broken:
        copies = await run_sipp(
            "invite_retransmit",
            broken.address,
            service="100",
            extra=["-pause_msg_ign"],
            timeout=6,
        )
    assert copies.failed == 1, copies.explain()
    assert broken.dialogs == 3


@pytest.mark.parametrize("algorithms", [OUR_DEFAULT, MD5_ONLY], ids=["sha256-md5", "md5"])
async def test_each_guess_is_a_wrong_password_to_our_digest_checks(
    sipp: None, algorithms: tuple[Algorithm, ...]
) -> None:
    async with tiny(algorithms=algorithms) as registrar:
        guesses = await run_sipp(
            "register_bruteforce",
            registrar.address,
            calls=3,
            rate=50,
            injection=SCENARIOS / "register_bruteforce.csv",
            timeout=5,
        )
    assert guesses.ok and guesses.received("401") == 6, guesses.explain()
    # Refused, not malformed: each guess counts against the source as a failed password.
    assert registrar.outcomes == [Outcome.CHALLENGED, Outcome.REFUSED] * 3


async def test_sipp_agents_register_with_our_digest_checks_offering_md5_alone(sipp: None) -> None:
    async with tiny(algorithms=MD5_ONLY) as registrar:
        results = await register_agents(
            registrar.address, {"agent1": "secret1"}, contact_port=5070, timeout=5
        )
    assert results["agent1"].ok, results["agent1"].explain()
    assert registrar.outcomes == [Outcome.CHALLENGED, Outcome.ACCEPTED]


async def test_sipp_agents_cannot_register_with_our_default_sha256_first(sipp: None) -> None:
    async with tiny(algorithms=OUR_DEFAULT) as registrar:
        results = await register_agents(
            registrar.address, {"agent1": "secret1"}, contact_port=5070, timeout=5
        )
    assert results["agent1"].exit_code == EXIT_FATAL, results["agent1"].explain()
    assert registrar.outcomes == [Outcome.CHALLENGED]


# -- baresip ----------------------------------------------------------------------


async def test_baresip_registers_with_digest_and_answers_a_call_by_itself(
    sipp: None, baresip: None
) -> None:
    credentials = {"user": "agent1", "password": "secret1"}
    async with await start_sipp("registrar", calls=1, variables=credentials) as registrar:
        account = Account(user="agent1", password="secret1", registrar=registrar.address)
        async with await baresip_phone(account) as phone:
            await phone.wait_registered()
            caller = await run_sipp(
                "caller",
                phone.address,
                service="agent1",
                variables={"talk_ms": 500},
                media_port=free_port_pair(),
                timeout=5,
            )
            await phone.wait_for(Event.CLOSED)
        registered = await registrar.wait(5)
    assert registered.ok, registered.explain()
    assert caller.ok, caller.explain()
    assert (caller.received("180"), caller.sent("ACK"), caller.sent("BYE")) == (1, 1, 1)
    assert phone.count(Event.ANSWERED) == phone.count(Event.ESTABLISHED) == 1, phone.log


async def test_baresip_1_0_cannot_register_where_sha256_is_offered(
    sipp: None, baresip: None
) -> None:
    # libre refuses the whole 401 when a challenge uses an algorithm it lacks.
    credentials = {"user": "agent1", "password": "secret1", "challenges": "md5-first"}
    async with await start_sipp("registrar", calls=1, variables=credentials) as registrar:
        account = Account(user="agent1", password="secret1", registrar=registrar.address)
        async with await baresip_phone(account) as phone:
            with pytest.raises(BaresipError, match="registration failed"):
                await phone.wait_registered()
        await registrar.stop(grace=0.1)  # still waiting for the second REGISTER
