"""HTTP Digest authentication as SIP uses it: challenges, verification, answers.

Theory of operation
-------------------
A registrar that wants to know who is asking answers 401 (a proxy: 407) with
one challenge per hash algorithm it accepts, best first (RFC 8760 §2.3). Each
challenge carries a nonce. The phone hashes its password with that nonce, a
nonce of its own (cnonce), a counter (nc), the method and the Request-URI, and
sends the sum back in ``Authorization``. The server stores no password, only
HA1 = H(username:realm:password) per algorithm, redoes the sum and compares
in constant time (RFC 7616 §3.4.1).

Nonces need no table. A nonce is an issue time and random bytes sealed by an
HMAC under a server secret, so the server knows its own nonces, and their age,
from the nonce alone; a forged or foreign one is simply not ours. A genuine
nonce past its lifetime, sent with the right password, earns a new challenge
marked ``stale=true`` so the phone retries without asking its user (RFC 7616
§3.3). Replays are caught by the count: the highest nc accepted for each live
nonce is remembered, in bounded memory, and a nonce forgotten early is treated
as stale, never as fresh.

An unknown user and a wrong password look the same from outside: the unknown
user is checked against a made-up HA1 (the same hashing work), and both end in
the same outcome, status, challenge and reason. That answer is a 401 with a
fresh challenge, not a 403: RFC 3261 §21.4.4 keeps 403 for "authorization
will not help", and a wrong password is exactly where it would. Repeated
failures are the throttle's business (``ivr.sip.throttle``), counted from
``Outcome.counts_as_failure``. Nodes that share a realm must share the
secret; a new secret (a restart without a stored one) only costs each phone
one extra challenge, since a nonce that is not ours is challenged, not failed.

Nothing here reads the clock or a socket: ``now`` comes with every call, and
randomness from a source the caller may replace.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import secrets
import string
import struct
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum


class Algorithm(Enum):
    """A digest algorithm, by its IANA token (RFC 7616 §6.1, RFC 8760 §2.1)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"
    SHA_512_256 = "SHA-512-256"
    SHA_512_256_SESS = "SHA-512-256-sess"

    @property
    def base(self) -> Algorithm:
        """The algorithm without ``-sess``: the one an HA1 is stored under."""
        return _BASES[self]

    @property
    def session(self) -> bool:
        """Whether HA1 is re-keyed with the nonce and cnonce (RFC 7616 §3.4.2)."""
        return self is not self.base

    @property
    def hex_length(self) -> int:
        """The length of one of its digests written in lower-case hex."""
        return 32 if self.base is Algorithm.MD5 else 64

    @classmethod
    def from_token(cls, token: str) -> Algorithm | None:
        """The algorithm a challenge or credentials name (tokens are case-insensitive)."""
        return _BY_TOKEN.get(token.lower())


_BASES = {a: Algorithm(a.value.removesuffix("-sess")) for a in Algorithm}
_HASHLIB_NAMES = {
    Algorithm.MD5: "md5",
    Algorithm.SHA_256: "sha256",
    Algorithm.SHA_512_256: "sha512_256",
}
_STRENGTH = {Algorithm.MD5: 0, Algorithm.SHA_256: 1, Algorithm.SHA_512_256: 2}
_BY_TOKEN = {a.value.lower(): a for a in Algorithm}


class DigestError(ValueError):
    """A challenge or credentials this module cannot use."""


class DigestSyntaxError(DigestError):
    """An ``Authorization`` or ``WWW-Authenticate`` value that does not parse."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthValue:
    """One parsed challenge or set of credentials: its scheme and parameters (names lower-case)."""

    scheme: str
    params: Mapping[str, str]


MAX_VALUE_LENGTH = 8192  # far beyond any real header value; bounds the parser's work
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")
_WHITESPACE = " \t"
_NC = re.compile(r"[0-9a-fA-F]{8}")  # RFC 7616 §3.4: nc-value = 8LHEX
_HEX = frozenset(string.hexdigits)
_DIGEST_SCHEME = re.compile(r"[ \t]*digest(?:[ \t]|$)", re.IGNORECASE)


def parse_auth_value(value: str) -> AuthValue:
    """Parse ``scheme name=value, name="quoted \\" value", ...`` (RFC 3261 §25.1).

    Raises ``DigestSyntaxError``, and only that, for anything malformed:
    control characters, unterminated quotes, a missing ``=``, empty or
    duplicated parameters. Header folding must already be undone.
    """
    if len(value) > MAX_VALUE_LENGTH:
        raise DigestSyntaxError("header value too long")
    for char in value:
        if (char < " " and char != "\t") or char == "\x7f":
            raise DigestSyntaxError("control character in header value")
        if "\ud800" <= char <= "\udfff":  # a lone surrogate: not text, cannot be hashed
            raise DigestSyntaxError("undecodable character in header value")
    end = len(value)
    i = _skip_whitespace(value, 0)
    start = i
    while i < end and value[i] in _TOKEN_CHARS:
        i += 1
    scheme = value[start:i]
    if not scheme:
        raise DigestSyntaxError("no authentication scheme")
    if i < end and value[i] not in _WHITESPACE:
        raise DigestSyntaxError("the scheme must be followed by whitespace")
    params: dict[str, str] = {}
    i = _skip_whitespace(value, i)
    while i < end:
        start = i
        while i < end and value[i] in _TOKEN_CHARS:
            i += 1
        name = value[start:i].lower()
        if not name:
            raise DigestSyntaxError(f"parameter name expected at offset {start}")
        i = _skip_whitespace(value, i)
        if i >= end or value[i] != "=":
            raise DigestSyntaxError(f"'=' expected after {name!r}")
        i = _skip_whitespace(value, i + 1)
        if i < end and value[i] == '"':
            text, i = _read_quoted(value, i)
        else:
            # Lenient on purpose: some phones send unquoted URIs (uri=sip:x@y),
            # which are not tokens; anything up to a comma or space will do.
            start = i
            while i < end and value[i] not in ' \t,"':
                i += 1
            text = value[start:i]
            if not text or not text.isascii():
                raise DigestSyntaxError(f"value expected for {name!r}")
        if name in params:
            raise DigestSyntaxError(f"duplicate parameter {name!r}")
        params[name] = text
        i = _skip_whitespace(value, i)
        if i < end:
            if value[i] != ",":
                raise DigestSyntaxError(f"',' expected at offset {i}")
            i = _skip_whitespace(value, i + 1)
            if i >= end:
                raise DigestSyntaxError("trailing comma")
    return AuthValue(scheme=scheme, params=params)


def _skip_whitespace(value: str, i: int) -> int:
    while i < len(value) and value[i] in _WHITESPACE:
        i += 1
    return i


def _read_quoted(value: str, i: int) -> tuple[str, int]:
    """The text of the quoted string opening at ``i``, and the index after it."""
    out: list[str] = []
    i += 1
    while i < len(value):
        char = value[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":  # quoted-pair (RFC 3261 §25.1)
            if i + 1 >= len(value):
                break
            out.append(value[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    raise DigestSyntaxError("unterminated quoted string")


def _quote(text: str) -> str:
    if any(char < " " or char == "\x7f" for char in text):
        # A CR or LF here would let a value smuggle a header into the message.
        raise DigestError("control character in a value to quote")
    if any("\ud800" <= char <= "\udfff" for char in text):
        raise DigestError("lone surrogate in a value to quote")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hash(algorithm: Algorithm, data: bytes) -> str:
    base = algorithm.base
    # MD5 stays usable on FIPS builds: older phones offer nothing else.
    digest = hashlib.new(_HASHLIB_NAMES[base], data, usedforsecurity=base is not Algorithm.MD5)
    return digest.hexdigest()


def _h(algorithm: Algorithm, text: str) -> str:
    return _hash(algorithm, text.encode("utf-8"))


def ha1(username: str, realm: str, password: str, algorithm: Algorithm) -> str:
    """H(username:realm:password) in hex: what to store instead of the password (RFC 7616 §3.4.2).

    A ``-sess`` algorithm uses its base algorithm's HA1. The value is bound to
    the realm: changing the realm means every user must set a password again.
    """
    return _h(algorithm.base, f"{username}:{realm}:{password}")


def hashed_secrets(
    username: str,
    realm: str,
    password: str,
    algorithms: Sequence[Algorithm] = (Algorithm.SHA_256, Algorithm.MD5),
) -> dict[Algorithm, str]:
    """The HA1 of a user under each algorithm: the record a ``Lookup`` returns."""
    return {a.base: ha1(username, realm, password, a) for a in algorithms}


def _response(
    *,
    algorithm: Algorithm,
    secret: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str | None,
    method: str,
    uri: str,
    body: bytes = b"",
) -> str:
    """The ``response`` parameter (RFC 7616 §3.4.1); ``qop`` None is RFC 2069's form."""
    key = secret
    if algorithm.session:
        key = _h(algorithm, f"{secret}:{nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 = f"{a2}:{_hash(algorithm, body)}"
    ha2 = _h(algorithm, a2)
    if qop is None:
        return _h(algorithm, f"{key}:{nonce}:{ha2}")
    return _h(algorithm, f"{key}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


class Outcome(Enum):
    """What became of a request's credentials."""

    ACCEPTED = "accepted"  # process the request as Verdict.username
    CHALLENGED = "challenged"  # no usable credentials for our realm: ask for some
    STALE = "stale"  # right password, worn-out nonce or count: ask again with stale=true
    REFUSED = "refused"  # wrong password or unknown user, on purpose indistinguishable
    MALFORMED = "malformed"  # broken, or not an answer to our challenge: 400

    @property
    def counts_as_failure(self) -> bool:
        """Whether a brute-force throttle should count it against the source."""
        return self is Outcome.REFUSED or self is Outcome.MALFORMED


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The outcome of checking one request, with the SIP answer to give when it is not ACCEPTED."""

    outcome: Outcome
    status: int | None  # None when accepted; else 401/407, or 400 when malformed
    header_name: str  # "WWW-Authenticate" or "Proxy-Authenticate"
    challenges: tuple[str, ...]  # one header value each, in this order; empty for 400 and OK
    username: str | None  # the authenticated user, when accepted
    claimed_username: str | None  # whoever the credentials named, for logs and throttling
    reason: str  # for logs, never for the peer


# What the caller stores per user: the HA1 under each base algorithm, or None if unknown.
Lookup = Callable[[str], Mapping[Algorithm, str] | None]

_NONCE_BODY = 8 + 12  # signed milliseconds, then random bytes
_NONCE_SEAL = 16  # truncated HMAC-SHA-256
_NONCE_LENGTH = (_NONCE_BODY + _NONCE_SEAL) * 4 // 3
_CLOCK_SLACK = 1.0  # a nonce issued "in the future" by this much is a clock step back


class DigestAuthority:
    """The server side: issues challenges and checks ``Authorization`` values against them."""

    __slots__ = (
        "_algorithms",
        "_counts",
        "_lifetime",
        "_lookup",
        "_opaque",
        "_proxy",
        "_random",
        "_realm",
        "_realm_bytes",
        "_secret",
        "_strict_uri",
    )

    def __init__(
        self,
        *,
        realm: str,
        secret: bytes,
        lookup: Lookup,
        algorithms: Sequence[Algorithm] = (Algorithm.SHA_256, Algorithm.MD5),
        nonce_lifetime: float = 300.0,
        max_tracked_nonces: int = 10_000,
        proxy: bool = False,
        strict_uri: bool = True,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``strict_uri=False`` accepts credentials whose ``uri`` is not the Request-URI.

        RFC 3261 §22.4 allows that when a proxy on the way has retargeted the
        request; the response still covers the ``uri`` the phone signed, and
        the nonce count still stops replays.
        """
        if not realm:
            raise ValueError("a realm is required")
        _quote(realm)  # refuses control characters now rather than on the first challenge
        if len(secret) < 16:
            raise ValueError("the nonce secret must be at least 16 bytes")
        if not algorithms or len(set(algorithms)) != len(algorithms):
            raise ValueError("algorithms must be a non-empty list without repeats")
        if not nonce_lifetime > 0:
            raise ValueError("nonce_lifetime must be positive")
        self._realm = realm
        self._realm_bytes = realm.encode("utf-8")
        self._secret = secret
        self._lookup = lookup
        self._algorithms = tuple(algorithms)
        self._lifetime = float(nonce_lifetime)
        self._counts = _NonceCounts(max_tracked_nonces)
        self._proxy = proxy
        self._strict_uri = strict_uri
        self._random = random_bytes
        seal = hmac.new(secret, b"opaque\0" + self._realm_bytes, hashlib.sha256).digest()
        self._opaque = base64.urlsafe_b64encode(seal[:12]).decode("ascii")

    @property
    def realm(self) -> str:
        return self._realm

    @property
    def header_name(self) -> str:
        """The header the challenges go in (RFC 3261 §22.2, §22.3)."""
        return "Proxy-Authenticate" if self._proxy else "WWW-Authenticate"

    @property
    def challenge_status(self) -> int:
        return 407 if self._proxy else 401

    def challenge(self, now: float, *, stale: bool = False) -> tuple[str, ...]:
        """Fresh challenges, one per algorithm, best first (RFC 8760 §2.3), sharing one nonce."""
        nonce = self._issue_nonce(now)
        return tuple(self._challenge_value(a, nonce, stale) for a in self._algorithms)

    def verify(
        self, authorizations: Sequence[str], *, method: str, request_uri: str, now: float
    ) -> Verdict:
        """Check a request's ``Authorization`` (or ``Proxy-Authorization``) values.

        ``authorizations`` holds every such value the request carried, in
        order; only those for our realm are considered (RFC 3261 §22.3).
        Never raises for anything the peer sent.
        """
        self._counts.forget_expired(now, self._lifetime)
        ours: list[AuthValue] = []
        unreadable = False
        for value in authorizations:
            try:
                parsed = parse_auth_value(value)
            except DigestSyntaxError:
                # Another scheme's syntax (Bearer's token68, say) is not ours to judge.
                unreadable = unreadable or _DIGEST_SCHEME.match(value) is not None
                continue
            if parsed.scheme.lower() != "digest":
                continue
            realm = parsed.params.get("realm")
            if realm == self._realm:
                ours.append(parsed)
            elif realm is None:
                unreadable = True
        if len(ours) > 1:
            return self._malformed("several credentials for our realm", None)
        if ours:
            return self._check(ours[0], method, request_uri, now)
        if unreadable:
            return self._malformed("unreadable credentials", None)
        reason = "credentials for another realm" if authorizations else "no credentials"
        return self._ask(Outcome.CHALLENGED, reason, None, now)

    def _check(self, credentials: AuthValue, method: str, request_uri: str, now: float) -> Verdict:
        p = credentials.params
        claimed = p.get("username")
        if claimed is None:
            # RFC 7616 §3.4.4's username* and userhash are not offered, so not accepted.
            return self._malformed("no username", None)
        missing = [n for n in ("nonce", "uri", "response", "qop", "nc", "cnonce") if n not in p]
        if missing:
            return self._malformed("missing " + ", ".join(missing), claimed)
        if p.get("userhash", "false").lower() != "false":
            return self._malformed("userhash was not offered", claimed)
        algorithm = Algorithm.from_token(p.get("algorithm", "MD5"))  # RFC 7616 §3.3: MD5 if absent
        if algorithm is None or algorithm not in self._algorithms:
            return self._malformed("algorithm was not offered", claimed)
        if p["qop"].lower() != "auth":  # the only qop offered
            return self._malformed("qop must be auth", claimed)
        nc = p["nc"]
        if not _NC.fullmatch(nc) or int(nc, 16) == 0:
            return self._malformed("nc must be 8 hex digits, not zero", claimed)
        response = p["response"].lower()
        if len(response) != algorithm.hex_length or not _HEX.issuperset(response):
            return self._malformed("response is not a digest", claimed)
        cnonce = p["cnonce"]
        if not cnonce:
            return self._malformed("empty cnonce", claimed)
        if self._strict_uri and not _same_uri(p["uri"], request_uri):
            # RFC 7616 §3.4.6 (and RFC 2617 §3.2.2.5 before it): 400 Bad Request.
            return self._malformed("uri does not match the Request-URI", claimed)
        nonce = p["nonce"]
        issued = self._open_nonce(nonce)
        if issued is None:
            # Forged, garbled, or sealed by a previous process's secret: nothing
            # to check it against, so the phone gets a nonce of ours to answer.
            return self._ask(Outcome.CHALLENGED, "nonce is not ours", claimed, now)
        if "opaque" in p and p["opaque"] != self._opaque:
            # Checked only now: after a restart with a new secret, an old opaque
            # comes with an old nonce, which deserves a challenge, not a 400.
            return self._malformed("opaque is not ours", claimed)

        stored = self._lookup(claimed)
        secret = None if stored is None else stored.get(algorithm.base)
        known = secret is not None
        decoy = self._decoy(claimed, algorithm)  # computed either way, so both paths cost alike
        key = secret.lower() if secret is not None else decoy
        expected = _response(
            algorithm=algorithm,
            secret=key,
            nonce=nonce,
            nc=nc,
            cnonce=cnonce,
            qop="auth",
            method=method,
            uri=p["uri"],
        )
        matches = hmac.compare_digest(expected.encode("ascii"), response.encode("ascii"))
        if not (matches and known):
            # One reason for both, so nothing downstream can tell them apart.
            return self._ask(Outcome.REFUSED, "credentials refused", claimed, now)
        age = now - issued
        if age > self._lifetime or age < -_CLOCK_SLACK:
            # RFC 7616 §3.3: stale only when the digest was valid for the nonce.
            return self._ask(Outcome.STALE, "nonce expired", claimed, now)
        if not self._counts.admit(nonce, issued, int(nc, 16)):
            # A replay, or a phone reusing its count: either way, a new nonce.
            return self._ask(Outcome.STALE, "nonce count not increasing", claimed, now)
        return Verdict(
            outcome=Outcome.ACCEPTED,
            status=None,
            header_name=self.header_name,
            challenges=(),
            username=claimed,
            claimed_username=claimed,
            reason="accepted",
        )

    def _ask(self, outcome: Outcome, reason: str, claimed: str | None, now: float) -> Verdict:
        return Verdict(
            outcome=outcome,
            status=self.challenge_status,
            header_name=self.header_name,
            challenges=self.challenge(now, stale=outcome is Outcome.STALE),
            username=None,
            claimed_username=claimed,
            reason=reason,
        )

    def _malformed(self, reason: str, claimed: str | None) -> Verdict:
        return Verdict(
            outcome=Outcome.MALFORMED,
            status=400,
            header_name=self.header_name,
            challenges=(),
            username=None,
            claimed_username=claimed,
            reason=reason,
        )

    def _challenge_value(self, algorithm: Algorithm, nonce: str, stale: bool) -> str:
        parts = [
            f"realm={_quote(self._realm)}",
            f"nonce={_quote(nonce)}",
            f"opaque={_quote(self._opaque)}",
            f"algorithm={algorithm.value}",
            'qop="auth"',
        ]
        if stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)

    def _decoy(self, username: str, algorithm: Algorithm) -> str:
        """An HA1 for a user who does not exist: costs what a real one does, matches nothing."""
        seed = hmac.new(self._secret, b"decoy\0" + username.encode("utf-8"), hashlib.sha256)
        return _h(algorithm, seed.hexdigest())

    def _issue_nonce(self, now: float) -> str:
        if not math.isfinite(now):
            raise ValueError("now must be a finite number of seconds")
        random_part = self._random(_NONCE_BODY - 8)
        if len(random_part) != _NONCE_BODY - 8:
            raise ValueError("random_bytes returned the wrong number of bytes")
        body = struct.pack(">q", math.floor(now * 1000)) + random_part
        return base64.urlsafe_b64encode(body + self._seal(body)).decode("ascii")

    def _open_nonce(self, nonce: str) -> float | None:
        """When one of our nonces was issued, or None if it is not ours."""
        if len(nonce) != _NONCE_LENGTH:
            return None
        try:
            raw = base64.b64decode(nonce.encode("ascii"), altchars=b"-_", validate=True)
        except (UnicodeEncodeError, binascii.Error):
            return None
        body, seal = raw[:_NONCE_BODY], raw[_NONCE_BODY:]
        if not hmac.compare_digest(seal, self._seal(body)):
            return None
        (milliseconds,) = struct.unpack(">q", body[:8])
        return float(milliseconds) / 1000

    def _seal(self, body: bytes) -> bytes:
        # The realm is sealed in too: a nonce from one realm is no good in another.
        message = b"nonce\0" + self._realm_bytes + b"\0" + body
        return hmac.new(self._secret, message, hashlib.sha256).digest()[:_NONCE_SEAL]


class _NonceCounts:
    """The highest nonce count accepted per nonce, for nonces still alive.

    Entries go in when a nonce is first accepted, so the oldest come first and
    expiry trims from the front. Past ``capacity`` the oldest is dropped, and
    the watermark remembers its issue time: a nonce issued no later than that
    and not in the table may have been dropped, so it is never taken as new.
    """

    __slots__ = ("_capacity", "_seen", "_watermark")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        self._capacity = capacity
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._watermark = -math.inf

    def admit(self, nonce: str, issued: float, nc: int) -> bool:
        """Record ``nc`` for ``nonce`` if it is higher than any accepted before."""
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._watermark:
                return False
            self._seen[nonce] = (issued, nc)
            while len(self._seen) > self._capacity:
                _, (dropped_issued, _) = self._seen.popitem(last=False)
                self._watermark = max(self._watermark, dropped_issued)
            return True
        if nc <= entry[1]:
            return False
        self._seen[nonce] = (entry[0], nc)
        return True

    def forget_expired(self, now: float, lifetime: float) -> None:
        # Expired nonces are refused on their timestamp, so their counts can go.
        while self._seen:
            issued, _ = next(iter(self._seen.values()))
            if now - issued <= lifetime:
                break
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)


def _same_uri(claimed: str, request_uri: str) -> bool:
    """Equal, or equal once the case-insensitive scheme and host are folded (RFC 3261 §19.1.4)."""
    return claimed == request_uri or _fold_uri(claimed) == _fold_uri(request_uri)


def _fold_uri(uri: str) -> str:
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return uri
    cut = min((i for i in (rest.find(";"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:cut].rpartition("@")
    return f"{scheme.lower()}:{userinfo}{at}{hostport.lower()}{rest[cut:]}"


# The client side: answering a server that challenges us.


def choose_challenge(values: Sequence[str]) -> str | None:
    """The challenge to answer: the strongest Digest algorithm we support, the topmost on a tie.

    RFC 8760 §2.4 says to use the topmost supported challenge unless local
    policy says otherwise; this is such a policy, because challenges are not
    integrity-protected and putting MD5 on top is the downgrade §3 warns of.
    """
    best: tuple[int, str] | None = None
    for value in values:
        try:
            parsed = parse_auth_value(value)
        except DigestSyntaxError:
            continue
        if parsed.scheme.lower() != "digest" or "nonce" not in parsed.params:
            continue
        algorithm = Algorithm.from_token(parsed.params.get("algorithm", "MD5"))
        if algorithm is None or _qop_to_use(parsed.params.get("qop")) == "":
            continue
        strength = _STRENGTH[algorithm.base]
        if best is None or strength > best[0]:
            best = (strength, value)
    return None if best is None else best[1]


def answer_challenge(
    challenge: str,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str | None = None,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` (or ``Proxy-Authorization``) value answering ``challenge``.

    ``uri`` is the Request-URI of the request being retried; ``body`` matters
    only if the server insists on qop=auth-int. ``cnonce`` is random unless
    given. Raises ``DigestError`` for a challenge we cannot answer.
    """
    parsed = parse_auth_value(challenge)
    if parsed.scheme.lower() != "digest":
        raise DigestError(f"not a Digest challenge: {parsed.scheme}")
    p = parsed.params
    realm, nonce = p.get("realm"), p.get("nonce")
    if realm is None or nonce is None:
        raise DigestError("the challenge lacks a realm or nonce")
    algorithm = Algorithm.from_token(p.get("algorithm", "MD5"))
    if algorithm is None:
        raise DigestError(f"unsupported algorithm {p.get('algorithm')!r}")
    qop = _qop_to_use(p.get("qop"))
    if qop == "":
        raise DigestError(f"no supported qop in {p.get('qop')!r}")
    if qop is None and algorithm.session:
        raise DigestError("a -sess algorithm needs a qop to carry the cnonce")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise DigestError("nc must fit in 8 hex digits")
    cnonce = secrets.token_hex(16) if cnonce is None else cnonce
    nc_text = f"{nc:08x}"
    response = _response(
        algorithm=algorithm,
        secret=ha1(username, realm, password, algorithm),
        nonce=nonce,
        nc=nc_text,
        cnonce=cnonce,
        qop=qop,
        method=method,
        uri=uri,
        body=body,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
    ]
    if "algorithm" in p:
        parts.append(f"algorithm={algorithm.value}")
    if qop is not None:
        parts += [f"cnonce={_quote(cnonce)}", f"qop={qop}", f"nc={nc_text}"]
    if "opaque" in p:
        parts.append(f"opaque={_quote(p['opaque'])}")
    return "Digest " + ", ".join(parts)


def _qop_to_use(offered: str | None) -> str | None:
    """ "auth" if offered, else "auth-int"; None when no qop was offered, "" when none we know."""
    if offered is None:
        return None
    options = {option.strip().lower() for option in offered.split(",")}
    if "auth" in options:
        return "auth"
    if "auth-int" in options:
        return "auth-int"
    return ""
