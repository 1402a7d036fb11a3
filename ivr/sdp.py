"""SDP (RFC 8866) and the offer/answer exchange (RFC 3264) for a call's one audio stream.

Parsing keeps what phones send and what we need typed (``v``, ``o``, ``s``,
``c``, ``t``, ``m``, ``a``), and every other line as it came, so a
description serializes back to what was read, in RFC 8866 §5 order.
Malformed input (no ``v=0`` first, a line that is not ``<letter>=<value>``,
an ``o``/``c``/``t``/``m`` line of the wrong shape; a bad ``rtpmap`` or
``ptime`` when it is read) raises ``SdpError``: the peer broke the rules, and
the SIP layer answers 400.

Negotiation is for audio over plain RTP/AVP, G.711 only. ``LocalSession``
holds our side of one dialog's SDP: the origin line, whose session version
goes up whenever what we describe changes (RFC 3264 §8), our offers, and our
answers. Answering an offer (RFC 3264 §6):

* the first audio stream offering PCMU or PCMA at 8 kHz is accepted, with the
  codec that comes first in the offerer's order among those we support (or
  the codec already in use, if still offered: a re-offer does not switch
  codecs mid-call), plus telephone-event/8000 under the payload type the
  offerer gave it; every other stream is rejected with port 0;
* the answer's direction mirrors the offer's (§6.1: sendonly gets recvonly,
  recvonly gets sendonly, inactive gets inactive) within what we want;
* a stream offered ``sendonly`` or ``inactive``, or with the RFC 2543
  connection address 0.0.0.0, means the peer has put us on hold (§8.4).

No acceptable stream at all raises ``OfferNotAcceptable`` (the SIP layer
answers 488). The result of a negotiation, either way round, is an
``AudioAgreement``: codec, payload types, where to send, who sends.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from ivr.rtp.g711 import SAMPLE_RATE, Codec

TELEPHONE_EVENT = "telephone-event"
AUDIO_PROFILE = "RTP/AVP"
HOLD_ADDRESS = "0.0.0.0"  # RFC 3264 §8.4, after RFC 2543: "do not send to me"
# RFC 3551 Table 4: static payload types need no rtpmap.
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
# RFC 8866 §5: where each kind of line goes, relative to the typed ones.
_SESSION_ORDER = {"i": 1, "u": 1, "e": 1, "p": 1, "b": 3, "t": 5, "r": 5, "z": 5, "k": 6}
_MEDIA_ORDER = {"i": 1, "b": 3, "k": 4}


class SdpError(ValueError):
    """A session description that does not follow RFC 8866, or offer/answer that breaks RFC 3264."""


class OfferNotAcceptable(SdpError):
    """An offer without any audio stream we can take: no G.711 over RTP/AVP."""


class Direction(Enum):
    """Which way media flows on a stream, from the describing side (RFC 3264 §5.1)."""

    __hash__ = object.__hash__

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self is Direction.SENDRECV or self is Direction.SENDONLY

    @property
    def receives(self) -> bool:
        return self is Direction.SENDRECV or self is Direction.RECVONLY

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> Direction:
        """The same flow seen from the other side."""
        return Direction.of(sends=self.receives, receives=self.sends)

    def __and__(self, other: Direction) -> Direction:
        """The flow both directions allow."""
        return Direction.of(
            sends=self.sends and other.sends, receives=self.receives and other.receives
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """The ``o=`` line: who made the description, and which version of it this is."""

    session_id: str  # a numeric string, kept as sent
    session_version: int
    address: str
    username: str = "-"
    network_type: str = "IN"
    address_type: str = "IP4"


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """A ``c=`` line: where media goes."""

    address: str  # multicast TTL and count, if any, kept in it
    network_type: str = "IN"
    address_type: str = "IP4"

    @property
    def held(self) -> bool:
        """The RFC 2543 hold address: the describing side wants no media."""
        return self.address == HOLD_ADDRESS


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """An ``a=`` line: a flag (``a=sendonly``) or a name with a value (``a=ptime:20``)."""

    name: str
    value: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpMap:
    """An ``a=rtpmap`` attribute: what an RTP payload type stands for."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """One ``m=`` section."""

    media: str  # audio, video, application...
    port: int  # 0: the stream is rejected or disabled
    protocol: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # other lines (i, b, k, unknown), as sent

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value``; "" for a flag; None when absent."""
        for attribute in self.attributes:
            if attribute.name == name:
                return "" if attribute.value is None else attribute.value
        return None

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as RTP payload types; ``SdpError`` if one is not a number in 0..127."""
        types = tuple(_number(value, 127) for value in self.formats)
        if None in types:
            raise SdpError(f"RTP formats must be payload types (0..127), not {self.formats}")
        return types  # type: ignore[return-value]

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """The ``a=rtpmap`` lines by payload type, with the static types they may omit."""
        maps = {
            pt: RtpMap(payload_type=pt, encoding=name, clock_rate=rate)
            for pt, (name, rate) in STATIC_PAYLOAD_TYPES.items()
        }
        for attribute in self.attributes:
            if attribute.name == "rtpmap":
                rtpmap = _parse_rtpmap(attribute.value or "")
                maps[rtpmap.payload_type] = rtpmap
        return maps

    @property
    def fmtp(self) -> dict[int, str]:
        """The ``a=fmtp`` parameters by payload type."""
        parameters: dict[int, str] = {}
        for attribute in self.attributes:
            if attribute.name == "fmtp" and attribute.value:
                pt, _, value = attribute.value.partition(" ")
                number = _number(pt, 127)
                if number is not None:
                    parameters[number] = value.strip()
        return parameters

    @property
    def ptime(self) -> int | None:
        """The packet time the describing side wants to receive, in ms (RFC 8866 §6.4)."""
        value = self.attribute("ptime")
        if value is None:
            return None
        try:
            return max(int(float(value)), 1)  # some phones send "20.0"
        except (ValueError, OverflowError):
            raise SdpError(f"a=ptime:{value} is not a number") from None

    @property
    def direction(self) -> Direction | None:
        """The stream's own direction attribute, if it has one."""
        for attribute in self.attributes:
            if attribute.value is None:
                try:
                    return Direction(attribute.name)
                except ValueError:
                    continue
        return None


def _parse_rtpmap(value: str) -> RtpMap:
    # RFC 8866 §6.6: <payload type> <encoding name>/<clock rate>[/<parameters>]
    pt, _, encoding = value.partition(" ")
    parts = encoding.strip().split("/")
    payload_type = _number(pt, 127)
    clock_rate = _number(parts[1]) if len(parts) > 1 else None
    channels = _number(parts[2]) if len(parts) == 3 else None
    if (
        payload_type is None
        or clock_rate is None
        or not parts[0]
        or len(parts) > 3
        or (len(parts) == 3 and channels is None)
    ):
        raise SdpError(f"a=rtpmap:{value[:60]} is malformed")
    return RtpMap(
        payload_type=payload_type, encoding=parts[0], clock_rate=clock_rate, channels=channels
    )


def _number(text: str, limit: int | None = None) -> int | None:
    """A decimal number of ASCII digits (no sign, no underscores), or None."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if limit is None or value <= limit else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: tuple[int, int] = (0, 0)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # other session lines (i u e p b r z k...), as sent

    @classmethod
    def parse(cls, body: str | bytes) -> SessionDescription:
        """The description in an SDP body; ``SdpError`` when it is malformed."""
        return _parse(body)

    def serialize(self) -> str:
        """The SDP text, CRLF line endings (RFC 8866 §5)."""
        return _serialize(self)

    def encode(self) -> bytes:
        """The SDP body as UTF-8 octets, ready for a SIP message."""
        return self.serialize().encode()

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The stream's connection: its own, else the session's (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """The stream's direction: its own, else the session's, else sendrecv (RFC 3264 §5.1)."""
        own = media.direction
        if own is not None:
            return own
        for attribute in self.attributes:
            if attribute.value is None and attribute.name in _DIRECTIONS:
                return Direction(attribute.name)
        return Direction.SENDRECV


_DIRECTIONS = frozenset(direction.value for direction in Direction)


def _lines(body: str | bytes) -> list[tuple[str, str]]:
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError:
            raise SdpError("an SDP body must be UTF-8") from None
    lines = []
    for raw in body.split("\n"):
        line = raw.removesuffix("\r")
        if not line:
            continue
        kind = line[0]
        if len(line) < 2 or line[1] != "=" or not ("a" <= kind <= "z"):
            raise SdpError(f"{line[:40]!r} is not an SDP line (<letter>=<value>)")
        if "\r" in line or "\0" in line:
            raise SdpError(f"{line[:40]!r} holds a CR or NUL (RFC 8866 §9)")
        lines.append((kind, line[2:]))
    return lines


def _fields(kind: str, value: str, count: int) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise SdpError(f"{kind}={value[:60]} must have {count} fields")
    return parts


def _parse_connection(value: str) -> Connection:
    network_type, address_type, address = _fields("c", value, 3)
    return Connection(network_type=network_type, address_type=address_type, address=address)


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"a={value[:60]} has no attribute name")
    return Attribute(name=name, value=rest if colon else None)


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"m={value[:60]} needs media, port, protocol and formats")
    port_text, slash, count_text = parts[1].partition("/")
    port = _number(port_text, 0xFFFF)
    port_count = _number(count_text) if slash else None
    if port is None or (slash and not port_count):
        raise SdpError(f"m={value[:60]} has a malformed port")
    return MediaDescription(
        media=parts[0],
        port=port,
        port_count=port_count,
        protocol=parts[2],
        formats=tuple(parts[3:]),
    )


@dataclass(slots=True)
class _Section:
    """A media section being read."""

    media: MediaDescription
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    def build(self) -> MediaDescription:
        return replace(
            self.media,
            connection=self.connection,
            attributes=tuple(self.attributes),
            other=tuple(self.other),
        )


def _parse(body: str | bytes) -> SessionDescription:
    lines = _lines(body)
    if not lines or lines[0] != ("v", "0"):
        raise SdpError("an SDP body starts with v=0")
    origin: Origin | None = None
    session_name = "-"
    connection: Connection | None = None
    timing: tuple[int, int] | None = None
    attributes: list[Attribute] = []
    other: list[tuple[str, str]] = []
    sections: list[_Section] = []
    for kind, value in lines[1:]:
        if kind == "m":
            sections.append(_Section(_parse_media(value)))
        elif sections:
            section = sections[-1]
            if kind == "c":
                section.connection = _parse_connection(value)
            elif kind == "a":
                section.attributes.append(_parse_attribute(value))
            else:
                section.other.append((kind, value))
        elif kind == "o":
            if origin is not None:
                raise SdpError("more than one o= line")
            origin = _parse_origin(value)
        elif kind == "s":
            session_name = value
        elif kind == "c":
            connection = _parse_connection(value)
        elif kind == "t" and timing is None:
            start, stop = (_number(part) for part in _fields("t", value, 2))
            if start is None or stop is None:
                raise SdpError(f"t={value[:60]} must be two numbers")
            timing = (start, stop)
        elif kind == "a":
            attributes.append(_parse_attribute(value))
        elif kind == "v":
            raise SdpError("more than one v= line")
        else:
            other.append((kind, value))
    if origin is None:
        raise SdpError("no o= line")
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=connection,
        timing=(0, 0) if timing is None else timing,
        attributes=tuple(attributes),
        media=tuple(section.build() for section in sections),
        other=tuple(other),
    )


def _parse_origin(value: str) -> Origin:
    username, session_id, version, network_type, address_type, address = _fields("o", value, 6)
    session_version = _number(version)
    if _number(session_id) is None or session_version is None:
        raise SdpError(f"o={value[:60]} needs a numeric session id and version")
    return Origin(
        username=username,
        session_id=session_id,
        session_version=session_version,
        network_type=network_type,
        address_type=address_type,
        address=address,
    )


def _ordered(lines: Iterable[tuple[str, str]], order: dict[str, int], at: int) -> list[str]:
    return [f"{kind}={value}" for kind, value in lines if order.get(kind, 9) == at]


def _serialize(sdp: SessionDescription) -> str:
    o = sdp.origin
    out = [
        "v=0",
        f"o={o.username} {o.session_id} {o.session_version} "
        f"{o.network_type} {o.address_type} {o.address}",
        f"s={sdp.session_name}",
    ]
    out += _ordered(sdp.other, _SESSION_ORDER, 1)
    if sdp.connection is not None:
        out.append(_connection_line(sdp.connection))
    out += _ordered(sdp.other, _SESSION_ORDER, 3)
    out.append(f"t={sdp.timing[0]} {sdp.timing[1]}")
    out += _ordered(sdp.other, _SESSION_ORDER, 5)
    out += _ordered(sdp.other, _SESSION_ORDER, 6)
    out += [_attribute_line(attribute) for attribute in sdp.attributes]
    out += _ordered(sdp.other, _SESSION_ORDER, 9)
    for media in sdp.media:
        port = media.port if media.port_count is None else f"{media.port}/{media.port_count}"
        out.append(f"m={media.media} {port} {media.protocol} {' '.join(media.formats)}")
        out += _ordered(media.other, _MEDIA_ORDER, 1)
        if media.connection is not None:
            out.append(_connection_line(media.connection))
        out += _ordered(media.other, _MEDIA_ORDER, 3)
        out += _ordered(media.other, _MEDIA_ORDER, 4)
        out += [_attribute_line(attribute) for attribute in media.attributes]
        out += _ordered(media.other, _MEDIA_ORDER, 9)
    return "\r\n".join(out) + "\r\n"


def _connection_line(connection: Connection) -> str:
    return f"c={connection.network_type} {connection.address_type} {connection.address}"


def _attribute_line(attribute: Attribute) -> str:
    if attribute.value is None:
        return f"a={attribute.name}"
    return f"a={attribute.name}:{attribute.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioAgreement:
    """What the two sides agreed for the call's audio stream."""

    codec: Codec
    payload_type: int  # the codec's payload type, as both sides number it
    telephone_event: int | None  # the telephone-event payload type, if both support it
    remote_address: str
    remote_port: int
    direction: Direction  # ours: whether we send, whether we receive
    remote_hold: bool  # the peer has put us on hold
    ptime: int | None  # the packet time the peer asked for, in ms
    media_index: int  # which m= line of the description carries the stream


def _address_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _codec_of(rtpmap: RtpMap | None) -> Codec | None:
    if rtpmap is None or rtpmap.clock_rate != SAMPLE_RATE or rtpmap.channels not in (None, 1):
        return None
    try:
        return Codec(rtpmap.encoding.upper())  # RFC 4855 §3: names are case-insensitive
    except ValueError:
        return None


def _telephone_event(media: MediaDescription, maps: dict[int, RtpMap]) -> int | None:
    for pt in media.payload_types:
        rtpmap = maps.get(pt)
        if (
            rtpmap
            and rtpmap.encoding.lower() == TELEPHONE_EVENT
            and rtpmap.clock_rate == SAMPLE_RATE
        ):
            return pt
    return None


def _codecs(
    media: MediaDescription, maps: dict[int, RtpMap], supported: Sequence[Codec]
) -> list[tuple[Codec, int]]:
    """The supported codecs a stream lists, with their payload types, in its order."""
    found = []
    for pt in media.payload_types:
        codec = _codec_of(maps.get(pt))
        if codec is not None and codec in supported:
            found.append((codec, pt))
    return found


def _agree(
    sdp: SessionDescription,
    index: int,
    chosen: tuple[Codec, int],
    maps: dict[int, RtpMap],
    wanted: Direction,
) -> AudioAgreement:
    """The agreement on the peer's stream ``index``, from our side."""
    media = sdp.media[index]
    connection = sdp.connection_for(media)
    if connection is None:
        raise SdpError("an audio stream with no c= line, in it or in the session")
    theirs = sdp.direction_for(media)
    if connection.held:
        # RFC 3264 §8.4: the old 0.0.0.0 hold: the peer will not receive,
        # whatever its direction says.
        theirs = Direction.of(sends=theirs.sends, receives=False)
    return AudioAgreement(
        codec=chosen[0],
        payload_type=chosen[1],
        telephone_event=_telephone_event(media, maps),
        remote_address=connection.address,
        remote_port=media.port,
        direction=theirs.reversed() & wanted,  # RFC 3264 §6.1
        remote_hold=not theirs.receives,  # sendonly or inactive: hold (§8.4)
        ptime=media.ptime,
        media_index=index,
    )


class LocalSession:
    """Our side of one dialog's SDP: the origin, its version, our offers and answers."""

    __slots__ = (
        "_last_body",
        "_offer",
        "address",
        "agreed_codec",
        "codecs",
        "ptime",
        "session_id",
        "session_version",
        "telephone_event",
        "username",
    )

    def __init__(
        self,
        *,
        address: str,
        codecs: Sequence[Codec] = (Codec.PCMU, Codec.PCMA),
        telephone_event: int | None = 101,
        ptime: int = 20,
        session_id: int | None = None,
        session_version: int = 1,
        username: str = "-",
    ) -> None:
        self.address = address  # where we receive media
        self.codecs = tuple(codecs)  # in our order of preference, for our offers
        self.telephone_event = telephone_event  # the payload type we offer it under
        self.ptime = ptime
        self.session_id = secrets.randbits(62) if session_id is None else session_id
        self.session_version = session_version  # of the next description, unless unchanged
        self.username = username
        self._last_body: SessionDescription | None = None  # the last one we gave, sans origin
        self._offer: SessionDescription | None = None
        self.agreed_codec: Codec | None = None

    def offer(self, *, port: int, direction: Direction = Direction.SENDRECV) -> SessionDescription:
        """Our offer of one audio stream (put the peer on hold with ``SENDONLY``)."""
        maps = [(codec.payload_type, codec.value) for codec in self.codecs]
        media = self._media(port, direction, maps, self.telephone_event)
        self._offer = self._describe((media,))
        return self._offer

    def answer(
        self,
        offer: SessionDescription,
        *,
        port: int,
        direction: Direction = Direction.SENDRECV,
    ) -> tuple[SessionDescription, AudioAgreement]:
        """Our answer to the peer's ``offer``, and what it agrees (RFC 3264 §6)."""
        answers: list[MediaDescription] = []
        agreement: AudioAgreement | None = None
        for index, media in enumerate(offer.media):
            offered: list[tuple[Codec, int]] = []
            if (
                agreement is None
                and media.media == "audio"
                and media.port != 0
                and media.protocol.upper() == AUDIO_PROFILE
            ):
                maps = media.rtpmaps
                offered = _codecs(media, maps, self.codecs)
            if not offered:
                # RFC 3264 §6: a rejected stream is answered with port 0.
                answers.append(
                    MediaDescription(
                        media=media.media,
                        port=0,
                        protocol=media.protocol,
                        formats=media.formats[:1],
                    )
                )
                continue
            # The codec in use, if still offered, else the offerer's first.
            chosen = next((c for c in offered if c[0] is self.agreed_codec), offered[0])
            agreement = _agree(offer, index, chosen, maps, direction)
            answers.append(
                self._media(
                    port,
                    agreement.direction,
                    [(chosen[1], chosen[0].value)],
                    agreement.telephone_event,
                )
            )
        if agreement is None:
            raise OfferNotAcceptable("no audio stream offers PCMU or PCMA over RTP/AVP")
        self.agreed_codec = agreement.codec
        return self._describe(tuple(answers)), agreement

    def accept(self, answer: SessionDescription) -> AudioAgreement:
        """What the peer's ``answer`` to our last offer agrees (RFC 3264 §7)."""
        offer = self._offer
        if offer is None:
            raise RuntimeError("no offer of ours to accept an answer to")
        if len(answer.media) != len(offer.media):
            raise SdpError(f"an answer with {len(answer.media)} streams to an offer of one")
        media = answer.media[0]
        if media.port == 0:
            raise OfferNotAcceptable("the peer rejected our audio stream")
        maps = {**offer.media[0].rtpmaps, **media.rtpmaps}  # it may rely on our rtpmaps
        chosen = _codecs(media, maps, self.codecs)
        if not chosen:
            raise SdpError("the answer has none of the codecs we offered")
        agreement = _agree(answer, 0, chosen[0], maps, offer.direction_for(offer.media[0]))
        self.agreed_codec = agreement.codec
        return agreement

    def _media(
        self, port: int, direction: Direction, maps: list[tuple[int, str]], event: int | None
    ) -> MediaDescription:
        formats = [str(pt) for pt, _ in maps]
        attributes = [Attribute(name="rtpmap", value=f"{pt} {name}/8000") for pt, name in maps]
        if event is not None:
            formats.append(str(event))
            attributes.append(Attribute(name="rtpmap", value=f"{event} {TELEPHONE_EVENT}/8000"))
            # RFC 4733 §2.4.1: the DTMF keys are the events we handle.
            attributes.append(Attribute(name="fmtp", value=f"{event} 0-15"))
        attributes.append(Attribute(name="ptime", value=str(self.ptime)))
        attributes.append(Attribute(name=direction.value))
        return MediaDescription(
            media="audio",
            port=port,
            protocol=AUDIO_PROFILE,
            formats=tuple(formats),
            attributes=tuple(attributes),
        )

    def _describe(self, media: tuple[MediaDescription, ...]) -> SessionDescription:
        body = SessionDescription(
            origin=Origin(session_id="0", session_version=0, address=self.address),
            connection=Connection(address=self.address, address_type=_address_type(self.address)),
            media=media,
        )
        # RFC 3264 §8: a new version only when the description changed.
        if self._last_body is not None and body != self._last_body:
            self.session_version += 1
        self._last_body = body
        origin = Origin(
            username=self.username,
            session_id=str(self.session_id),
            session_version=self.session_version,
            address=self.address,
            address_type=_address_type(self.address),
        )
        return replace(body, origin=origin)
