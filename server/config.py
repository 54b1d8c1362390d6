"""Settings, read from the environment (and the CLI, which overrides them)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _web_dir() -> Path:
    # An installed wheel carries the client as server/web (pyproject.toml maps the
    # repository's top-level web/ there); a checkout or editable install serves web/ itself.
    packaged = Path(__file__).resolve().parent / "web"
    return packaged if (packaged / "index.html").is_file() else REPO_ROOT / "web"


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = Path("data")
DEFAULT_ATTENDANCE_DAYS = 30


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
    web_dir: Path = field(default_factory=_web_dir)
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
    # Production mode (HEARTH_PRODUCTION=1) refuses to start without public_url, so that no
    # link handed out is ever built from a request's Host header (docs/deploy.md).
    production: bool = False
    # The address people reach the server's media at when it sits behind a 1:1 NAT (most
    # clouds): written into the answer in place of the interface address (Janus's
    # nat_1_1_mapping, LiveKit's node_ip). Empty: the interface addresses themselves.
    media_public_address: str = ""
    # UDP ports media binds to (inclusive), so a firewall can open exactly them; None: any.
    media_ports: tuple[int, int] | None = None
    # TURN (coturn's use-auth-secret): the shared secret Hearth derives short-lived
    # credentials from, the URLs the page is given, and how long credentials last.
    turn_secret: str | None = field(default=None, repr=False)
    turn_urls: tuple[str, ...] = ()
    turn_ttl_seconds: int = 12 * 3600
    # Prometheus metrics on their own listener (0: none), on metrics_host.
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # "text" (the default) or "json": one JSON object per log line.
    log_format: str = "text"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hearth.db').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    ice = tuple(a.strip() for a in env.get("HEARTH_ICE_ADDRESSES", "").split(",") if a.strip())
    settings = Settings(
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
        production=env.get("HEARTH_PRODUCTION", "0") not in ("", "0"),
        media_public_address=env.get("HEARTH_MEDIA_PUBLIC_ADDRESS", "").strip(),
        media_ports=_port_range(env.get("HEARTH_MEDIA_PORTS", "")),
        turn_secret=env.get("HEARTH_TURN_SECRET") or None,
        turn_urls=tuple(u.strip() for u in env.get("HEARTH_TURN_URLS", "").split(",") if u.strip()),
        turn_ttl_seconds=_positive_int(env, "HEARTH_TURN_TTL_SECONDS", 12 * 3600),
        metrics_port=int(env.get("HEARTH_METRICS_PORT", "0") or "0"),
        metrics_host=env.get("HEARTH_METRICS_HOST", "127.0.0.1"),
        log_format=_choice(env, "HEARTH_LOG_FORMAT", ("text", "json")),
    )
    if settings.production and not settings.public_url:
        raise ValueError(
            "HEARTH_PRODUCTION is set, so HEARTH_PUBLIC_URL must be too (e.g. "
            "https://circles.example.org): every link handed out is built from it"
        )
    if settings.turn_urls and not settings.turn_secret:
        raise ValueError("HEARTH_TURN_URLS needs HEARTH_TURN_SECRET (coturn's static-auth-secret)")
    return settings


def _port_range(raw: str) -> tuple[int, int] | None:
    raw = raw.strip()
    if not raw:
        return None
    low, _, high = raw.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"HEARTH_MEDIA_PORTS must be like 40000-40999, not {raw!r}") from None
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"HEARTH_MEDIA_PORTS must be within 1024-65535, low to high: {raw!r}")
    return first, last


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or allowed[0]
    if raw not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)
