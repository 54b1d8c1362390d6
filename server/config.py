"""Settings, read from the environment (and the CLI, which overrides them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = Path("data")
DEFAULT_ATTENDANCE_DAYS = 30
DEFAULT_BUSY_LAG_MS = 200
DEFAULT_DRAIN_SECONDS = 20


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # Absolute base for the links the API hands out; empty means the request's own origin.
    public_url: str = ""
    # When set, this bearer token is accepted for the admin API (never stored, never logged).
    admin_token: str | None = field(default=None, repr=False)
    # Addresses the media relay offers as ICE host candidates; empty means every interface.
    ice_addresses: tuple[str, ...] = ()
    # Forward a lone speaker's packets unchanged (the default); off, every tick is mixed and
    # encoded (the benchmark's "mixing only" design, docs/performance.md).
    audio_forwarding: bool = True
    # Listeners' RTP written by the audio path itself (the default), or by aiortc's sender.
    audio_direct_rtp: bool = True
    web_dir: Path = REPO_ROOT / "web"
    # Days attendance (who sat in an occurrence, by display name) is kept after they left.
    attendance_days: int = DEFAULT_ATTENDANCE_DAYS
    # Days moderation records (the audit log) are kept; purged at start and every hour.
    audit_retention_days: int = DEFAULT_ATTENDANCE_DAYS
    # Processes running live circles (``hearth serve --workers N``); 1 runs everything in
    # one process. With more, a front process serves pages and the API and pipes each
    # WebSocket to the worker that hosts its circle (docs/performance.md).
    workers: int = 1
    # Seconds a WebSocket may stay open without joining before the server closes it (4408):
    # a page joins at once, so only an idle or abusive client ever waits this long.
    join_timeout_seconds: int = 30
    # Event-loop lag (ms) past which new arrivals are refused with server_busy, so the live
    # circles keep their audio; 0 turns the refusal off (docs/architecture.md).
    busy_lag_ms: int = DEFAULT_BUSY_LAG_MS
    # On SIGTERM: seconds live circles may go on (no new arrivals) before everyone is told
    # to reconnect (1012) and the process exits; it exits sooner once nobody is connected.
    drain_seconds: int = DEFAULT_DRAIN_SECONDS
    # Limits on what a stranger controls (docs/protocol.md, "Limits"; README table).
    # Messages per socket: a burst, then a sustained rate; a long flood closes it (4429).
    message_rate: float = 10.0
    message_burst: int = 40
    flood_close_after: int = 50
    # Renames per socket: a burst, then one per this many seconds; every rename is audited.
    rename_burst: int = 3
    rename_every_seconds: int = 30
    # Wrong passcodes per socket before it is closed (4429); then delays per circle, device
    # key and address double from 1 s up to passcode_max_delay_seconds.
    passcode_tries_per_socket: int = 3
    passcode_free_failures: int = 5
    passcode_max_delay_seconds: int = 300
    # People waiting in one lobby, and how long a lobby place is held (closed with 4431).
    lobby_size: int = 50
    lobby_idle_seconds: int = 1800
    # WebSockets per client address that have not joined yet (more are closed with 4430).
    unjoined_sockets_per_address: int = 50
    # POST /circle-info per client address: a burst, then this many a second (429 past it).
    circle_info_rate: float = 5.0
    circle_info_burst: int = 20
    # ... and from all addresses together, per process (a flood spread over many addresses).
    circle_info_total_rate: float = 50.0
    # Origins allowed to open the WebSocket; empty means this server's own origin
    # (public_url when set, else the Host the request came to). See docs/protocol.md.
    allowed_origins: tuple[str, ...] = ()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hearth.db').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    ice = tuple(a.strip() for a in env.get("HEARTH_ICE_ADDRESSES", "").split(",") if a.strip())
    return Settings(
        host=env.get("HEARTH_HOST", DEFAULT_HOST),
        port=int(env.get("HEARTH_PORT", str(DEFAULT_PORT))),
        data_dir=Path(env.get("HEARTH_DATA_DIR", str(DEFAULT_DATA_DIR))),
        database_url=env.get("HEARTH_DATABASE_URL", ""),
        public_url=env.get("HEARTH_PUBLIC_URL", "").rstrip("/"),
        admin_token=env.get("HEARTH_ADMIN_TOKEN") or None,
        ice_addresses=ice,
        attendance_days=_positive_int(env, "HEARTH_ATTENDANCE_DAYS", DEFAULT_ATTENDANCE_DAYS),
        audit_retention_days=_positive_int(
            env, "HEARTH_AUDIT_RETENTION_DAYS", DEFAULT_ATTENDANCE_DAYS
        ),
        audio_forwarding=env.get("HEARTH_AUDIO_FORWARDING", "1") != "0",
        audio_direct_rtp=env.get("HEARTH_AUDIO_DIRECT_RTP", "1") != "0",
        workers=_positive_int(env, "HEARTH_WORKERS", 1),
        join_timeout_seconds=_positive_int(env, "HEARTH_JOIN_TIMEOUT_SECONDS", 30),
        busy_lag_ms=_whole_number(env, "HEARTH_BUSY_LAG_MS", DEFAULT_BUSY_LAG_MS),
        drain_seconds=_whole_number(env, "HEARTH_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS),
        message_rate=_positive_float(env, "HEARTH_MESSAGE_RATE", 10.0),
        message_burst=_positive_int(env, "HEARTH_MESSAGE_BURST", 40),
        flood_close_after=_positive_int(env, "HEARTH_FLOOD_CLOSE_AFTER", 50),
        rename_burst=_positive_int(env, "HEARTH_RENAME_BURST", 3),
        rename_every_seconds=_positive_int(env, "HEARTH_RENAME_EVERY_SECONDS", 30),
        passcode_tries_per_socket=_positive_int(env, "HEARTH_PASSCODE_TRIES_PER_SOCKET", 3),
        passcode_free_failures=_positive_int(env, "HEARTH_PASSCODE_FREE_FAILURES", 5),
        passcode_max_delay_seconds=_positive_int(env, "HEARTH_PASSCODE_MAX_DELAY_SECONDS", 300),
        lobby_size=_positive_int(env, "HEARTH_LOBBY_SIZE", 50),
        lobby_idle_seconds=_positive_int(env, "HEARTH_LOBBY_IDLE_SECONDS", 1800),
        unjoined_sockets_per_address=_positive_int(env, "HEARTH_UNJOINED_SOCKETS_PER_ADDRESS", 50),
        circle_info_rate=_positive_float(env, "HEARTH_CIRCLE_INFO_RATE", 5.0),
        circle_info_burst=_positive_int(env, "HEARTH_CIRCLE_INFO_BURST", 20),
        circle_info_total_rate=_positive_float(env, "HEARTH_CIRCLE_INFO_TOTAL_RATE", 50.0),
        allowed_origins=tuple(
            o.strip().rstrip("/")
            for o in env.get("HEARTH_ALLOWED_ORIGINS", "").split(",")
            if o.strip()
        ),
    )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def _whole_number(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)
def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a number above 0, not {raw!r}")
    return value
