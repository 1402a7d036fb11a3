"""The server's settings: command-line options over environment variables over defaults.

Every setting has an ``ACD_`` environment variable (``ACD_DATABASE_URL``,
``ACD_PORT``...). Secrets never have a built-in value: the token-signing key
comes from ``ACD_JWT_SECRET`` or, when that is unset, from a key file created
once with mode 0600 beside the database, which ``acd token`` reads too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from api.logs import LogFormat


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ACD_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite+aiosqlite:///./acd.db"
    config: Path | None = Field(default=None, description="queues, agents and customers (YAML)")
    demo: bool = Field(default=False, description="load the shipped demo configuration")
    spool_path: Path = Path("./acd.spool")
    jwt_secret: str | None = None
    secret_file: Path = Path("./acd.secret")
    token_minutes: int = 12 * 60
    metrics_token: str | None = None  # when set, /metrics wants this bearer token
    drain_seconds: float = 30.0  # how long calls in progress may take to finish on SIGTERM
    replay_events: int = 10_000  # events kept in memory for desktops that reconnect
    idempotency_entries: int = 50_000
    journal_commit_interval: float = 0.005  # seconds between the starts of two commits, at least
    heap_refresh_seconds: float = 600.0  # a full garbage collection at most this often (api.heap)
    sip_port: int | None = None  # SIP on UDP and TCP at `host`; None: no SIP side
    ivr_flow: Path | None = None  # the IVR flow for SIP callers; the demo's with --demo
    sip_digest: str = "SHA-256,MD5"  # challenges offered, best first; "MD5" for older phones
    sip_realm: str = "acd"  # digest realm of the registrar: changing it voids every SIP password
    # Where to call customers back: a SIP URI template with ``{number}`` (a trunk, e.g.
    # "sip:{number}@10.0.0.5:5060"); unset, the Contact of the SIP caller who asked.
    sip_callback_uri: str | None = Field(default=None, pattern=r"^sips?:.*\{number\}")
    sip_callback_ring_seconds: float = Field(default=30.0, gt=0)  # then the customer is "no_answer"
    # Overflow to another site over SIP: "bridge" (we call the site and relay) or "redirect"
    # (302 to the site for a caller who dialled a queue and is not answered yet; else bridge).
    sip_overflow: Literal["bridge", "redirect"] = "bridge"
    ws_queue: int = 2_000  # messages buffered per desktop before it is cut off as lagging
    voicemail_dir: Path | None = None  # callers' messages (WAV); None: see voicemail_directory()
    log_format: LogFormat = LogFormat.JSON  # one JSON object a line; "text" for a terminal
    log_level: str = "INFO"
    audit_log: Path | None = None  # also append the audit records (JSON lines) to this file

    def voicemail_directory(self) -> Path:
        """Where messages are recorded: ``voicemail_dir``, else ``voicemail/`` beside the
        SQLite file, else ``./var/voicemail`` (PostgreSQL has no directory of ours)."""
        if self.voicemail_dir is not None:
            return self.voicemail_dir
        url = make_url(self.database_url)
        database = url.database
        if url.get_backend_name() == "sqlite" and database and database != ":memory:":
            return Path(database).parent / "voicemail"
        return Path("./var/voicemail")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    # Reports (docs/KPIS.md): intervals on this zone's clock; an abandon after less
    # waiting than this is a short abandon; a resolved call is a first-call
    # resolution if the caller does not call again within the window.
    report_timezone: str = "UTC"
    short_abandon_seconds: float = Field(default=20.0, ge=0)
    fcr_window_hours: float = Field(default=72.0, ge=0)

    @field_validator("report_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"no time zone {value!r} (an IANA name: UTC, Europe/Paris)") from None
        return value

    def signing_key(self) -> str:
        """The HS256 key: from the environment, else the key file (created on first use)."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.secret_file
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        return key
