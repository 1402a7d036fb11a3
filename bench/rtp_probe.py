"""A control call for the SIP bench: how late the agents' SIPp sends its tone, without the server.

The bench's lateness figure is read from the server: relayed packets timed
against their RTP timestamps (``ivr.media.bridge.ArrivalClock``). That
includes the sender's own scheduling: SIPp's ``rtp_stream`` on a busy
machine sometimes oversleeps. ``ToneProbe`` calls the agents' SIPp UAS
directly (an INVITE of its own: the UAS answers anyone), takes the tone it
streams on a socket of its own, and times each packet by the kernel's
receive time (``SO_TIMESTAMPNS``, so this process's own scheduling does not
count) with the very same ``ArrivalClock``. If SIPp's packets are already
late here, the server's figure at that load is the generator's limit, not
the server's, and the bench says so.

It runs in a thread (blocking sockets, a few hundred packets) from
``start`` to ``stop``; ``stop`` hangs up and returns the counts.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import uuid
from dataclasses import dataclass

from ivr.media.bridge import ArrivalClock
from ivr.media.pacer import LatenessMeter
from ivr.rtp.packet import RtpError, RtpPacket

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same
_TIMESPEC = struct.Struct("qq")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """How the tone of one call straight from the agents' SIPp arrived."""

    answered: bool
    packets: int
    late: int  # 20 ms or more after their timestamps' place
    max_ms: float

    @property
    def late_share(self) -> float:
        return self.late / self.packets if self.packets else 0.0


class ToneProbe:
    """One call to the agents' SIPp UAS, its tone timed as the server times relayed packets."""

    def __init__(self, host: str, uas_port: int) -> None:
        self._uas = (host, uas_port)
        self._sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sip.bind((host, 0))
        self._sip.settimeout(5.0)
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind((host, 0))
        self._rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._rtp.settimeout(0.2)
        self._call_id = f"{uuid.uuid4().hex}@bench"
        self._to_tag = ""
        self._answered = False
        self._meter = LatenessMeter()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="tone probe", daemon=True)

    def start(self) -> bool:
        """Call the UAS and start timing its tone; False when it did not answer."""
        host, port = self._rtp.getsockname()[:2]
        sdp = (
            f"v=0\r\no=bench 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
        )
        self._send("INVITE", 1, sdp)
        try:
            while True:
                reply = self._sip.recv(65536).decode(errors="replace")
                status = reply[8:11]
                if status.startswith("1"):
                    continue
                break
        except TimeoutError:
            return False
        if status != "200":
            return False
        for line in reply.split("\r\n"):
            if line.lower().startswith(("to:", "t:")) and ";tag=" in line:
                self._to_tag = ";tag=" + line.split(";tag=", 1)[1].split(";")[0].strip()
        self._send("ACK", 1)
        self._answered = True
        self._thread.start()
        return True

    def stop(self) -> ProbeResult:
        """Stop timing, hang up (BYE), and say what arrived."""
        if self._answered:
            self._stopping.set()
            self._thread.join(5.0)
            self._send("BYE", 2)
            self._sip.settimeout(2.0)
            with contextlib.suppress(TimeoutError):
                self._sip.recv(65536)  # its 200, or nothing: the UAS may be gone
        self._sip.close()
        self._rtp.close()
        meter = self._meter
        return ProbeResult(
            answered=self._answered,
            packets=meter.frames,
            late=meter.late_frames,
            max_ms=round(meter.max_lateness * 1000, 1),
        )

    def _receive(self) -> None:
        clock = ArrivalClock()
        while not self._stopping.is_set():
            try:
                data, ancillary, _, _ = self._rtp.recvmsg(2048, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            arrived = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    arrived = seconds + nanoseconds / 1e9
            if arrived is None:
                continue
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                continue
            clock.arrived(packet, arrived, self._meter)

    def _send(self, method: str, cseq: int, body: str = "") -> None:
        host, port = self._sip.getsockname()[:2]
        uas = f"{self._uas[0]}:{self._uas[1]}"
        lines = [
            f"{method} sip:agent@{uas} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex}",
            f"From: <sip:probe@{host}:{port}>;tag=probe",
            f"To: <sip:agent@{uas}>{self._to_tag}",
            f"Call-ID: {self._call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:probe@{host}:{port}>",
            "Max-Forwards: 70",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        message = "\r\n".join(lines) + "\r\n\r\n" + body
        self._sip.sendto(message.encode(), self._uas)
