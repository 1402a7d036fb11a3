"""SIP and SIPS URIs (RFC 3261 §19.1), and every other scheme kept opaque.

``parse_uri`` reads ``sip:`` and ``sips:`` URIs into ``SipUri``: user and
password (``%HH`` escapes decoded, so ``sip:%75ser@h`` and ``sip:user@h`` hold
the same user), host (an IPv6 reference is stored without its brackets, ready
for a socket call), port, ``;`` parameters and ``?`` headers, each component
checked against its character set in RFC 3261 §25.1. Any other scheme
(``tel:``, ``mailto:``, an unknown one) becomes an ``AbsoluteUri`` that keeps
the text after the colon as it came: a request for such a URI is well formed
and is answered 416 by the application (RFC 3261 §8.2.2.1, RFC 4475 §3.3.2),
not rejected by the parser.

``str()`` writes a URI in canonical form, escaping only what each component
requires, so ``parse_uri(str(uri)) == uri``. Equality is the URI comparison of
RFC 3261 §19.1.4: user and password case-sensitive, host and parameters
case-insensitive, an explicit port never equal to an absent one, the user /
ttl / method / maddr / transport parameters significant when only one URI
has them, other one-sided parameters ignored, headers always significant.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote as _percent_encode
from urllib.parse import unquote as _percent_decode

from ivr.sip.errors import ParseError
from ivr.sip.grammar import NO_PARAMS, Params

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# RFC 3261 §25.1 character sets, with "%" admitted and its escapes checked separately.
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
_PASSWORD = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
_PARAM_TEXT = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
_HEADER_TEXT = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*")
_OPAQUE = re.compile(r"[A-Za-z0-9\-_.!~*'();/?:@&=+$,%\[\]#]+")  # RFC 2396 uric (and RFC 3986's)
_HOSTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# What each component may carry unescaped on output, beyond alphanumerics and "-_.~".
_USER_SAFE = "!*'()&=+$,;?/"
_PASSWORD_SAFE = "!*'()&=+$,"
_PARAM_SAFE = "!*'()[]/:&+$"
_HEADER_SAFE = "!*'()[]/?:+$"
# RFC 3261 §19.1.4: these parameters make two URIs differ even when only one has them
# (transport: "can resolve to different transports", the section's own example).
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def _decode(text: str, what: str) -> str:
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise ParseError(f"invalid % escape in URI {what}")
    return _percent_decode(text, errors="surrogateescape")


def _encode(text: str, safe: str) -> str:
    return _percent_encode(text, safe=safe, errors="surrogateescape")


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` as (host, port); an IPv6 reference's brackets are removed (§25.1)."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise ParseError("unterminated IPv6 reference")
        host = text[1:close]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ParseError(f"invalid IPv6 address {host!r}") from None
        rest = text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise ParseError("unexpected text after an IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_or_empty = text.partition(":")
        if _HOSTNAME.fullmatch(host) is None:
            raise ParseError(f"invalid host {host!r}")
        port_text = port_text_or_empty if colon else None
    if port_text is None:
        return host, None
    if not (0 < len(port_text) <= 5 and port_text.isascii() and port_text.isdigit()):
        raise ParseError(f"invalid port {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise ParseError(f"port {port} out of range")
    return host, port


def format_host(host: str) -> str:
    """``host`` as written in a URI or Via: an IPv6 address goes between brackets."""
    return f"[{host}]" if ":" in host else host


def _host_key(host: str) -> str:
    """The host as compared: case-folded, an IPv6 address in its compressed form."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            pass
    return host.lower()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class SipUri:
    """A ``sip:`` or ``sips:`` URI; text components are held unescaped."""

    scheme: str = "sip"  # "sip" or "sips", lower case
    user: str | None = None
    password: str | None = None
    host: str  # an IPv6 address without brackets
    port: int | None = None
    params: Params = NO_PARAMS  # names and values unescaped
    headers: tuple[tuple[str, str], ...] = ()  # the ?name=value part, unescaped

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_encode(self.user, _USER_SAFE))
            if self.password is not None:
                parts += (":", _encode(self.password, _PASSWORD_SAFE))
            parts.append("@")
        parts.append(format_host(self.host))
        if self.port is not None:
            parts += (":", str(self.port))
        for name, value in self.params:
            parts += (";", _encode(name, _PARAM_SAFE))
            if value is not None:
                parts += ("=", _encode(value, _PARAM_SAFE))
        if self.headers:
            parts.append("?")
            parts.append(
                "&".join(
                    f"{_encode(n, _HEADER_SAFE)}={_encode(v, _HEADER_SAFE)}"
                    for n, v in self.headers
                )
            )
        return "".join(parts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if (
            self.scheme != other.scheme
            or self.user != other.user
            or self.password != other.password
            or self.port != other.port
            or _host_key(self.host) != _host_key(other.host)
        ):
            return False
        mine = {n.lower(): v for n, v in self.params}
        theirs = {n.lower(): v for n, v in other.params}
        for name in mine.keys() & theirs.keys():
            a, b = mine[name], theirs[name]
            if (a is None) != (b is None) or (
                a is not None and b is not None and a.lower() != b.lower()
            ):
                return False
        for name in _SIGNIFICANT_PARAMS:
            if (name in mine) != (name in theirs):
                return False
        return {(n.lower(), v) for n, v in self.headers} == {
            (n.lower(), v) for n, v in other.headers
        }

    def __hash__(self) -> int:
        return hash((self.scheme, self.user, self.password, _host_key(self.host), self.port))

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    @property
    def host_port(self) -> str:
        """``host[:port]`` as written on the wire."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower case (RFC 3261 §19.1.1)."""
        value = self.params.get("transport")
        return None if value is None else value.lower()

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def loose_routing(self) -> bool:
        """Whether the URI carries ``;lr`` (RFC 3261 §19.1.1, §16.12.1.1)."""
        return "lr" in self.params


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """A URI of any scheme but sip and sips, kept as text (RFC 3261 §25.1 absoluteURI)."""

    scheme: str  # lower case
    opaque: str  # everything after the first colon, as it came

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """The URI in ``text``; ``ParseError`` when it is not a URI at all."""
    scheme, colon, rest = text.partition(":")
    if not colon or _SCHEME.fullmatch(scheme) is None:
        raise ParseError(f"not a URI: {text[:80]!r}")
    scheme = scheme.lower()
    if scheme == "sip" or scheme == "sips":
        return _parse_sip(scheme, rest)
    if _OPAQUE.fullmatch(rest) is None:
        raise ParseError(f"invalid characters in {scheme}: URI")
    return AbsoluteUri(scheme=scheme, opaque=rest)


def _parse_sip(scheme: str, text: str) -> SipUri:
    # "@" appears unescaped only to end the userinfo: no other component admits it (§25.1).
    userinfo, at, hostpart = text.rpartition("@")
    user = password = None
    if at:
        user_text, colon, password_text = userinfo.partition(":")
        if _USER.fullmatch(user_text) is None:
            raise ParseError("invalid user in SIP URI")
        user = _decode(user_text, "user")
        if colon:
            if _PASSWORD.fullmatch(password_text) is None:
                raise ParseError("invalid password in SIP URI")
            password = _decode(password_text, "password")
    hostpart, question, headers_text = hostpart.partition("?")
    hostport, semicolon, params_text = hostpart.partition(";")
    host, port = parse_hostport(hostport)
    params = _parse_uri_params(params_text) if semicolon else NO_PARAMS
    headers = _parse_uri_headers(headers_text) if question else ()
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
    )


def _parse_uri_params(text: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if _PARAM_TEXT.fullmatch(name) is None:
            raise ParseError("empty or invalid URI parameter")
        if not equals:
            items.append((_decode(name, "parameter"), None))
        elif _PARAM_TEXT.fullmatch(value) is None:
            raise ParseError(f"invalid value for URI parameter {name!r}")
        else:
            items.append((_decode(name, "parameter"), _decode(value, "parameter")))
    return Params(items)


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, equals, value = part.partition("=")
        if not name or not equals or _HEADER_TEXT.fullmatch(name) is None:
            raise ParseError("invalid URI header")
        if _HEADER_TEXT.fullmatch(value) is None:
            raise ParseError(f"invalid value for URI header {name!r}")
        headers.append((_decode(name, "header"), _decode(value, "header")))
    return tuple(headers)
