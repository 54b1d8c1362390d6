"""Settings: one typed model, read strictly from the environment (the CLI overrides it).

Every field ``name`` is set by the variable ``HEARTH_<NAME>``; adding a setting is one line
in ``Settings`` (and a row in README.md's configuration table). A value that does not fit
its type stops the start with a message naming the variable: ``HEARTH_AUDIO_FORWARDING=false``
is false, ``HEARTH_PORT=eighty`` is an error, never a silent default.

pydantic does the conversion and the checks (the same library as the API's models). The
environment is passed in as a mapping instead of being read by ``Settings()`` itself
(pydantic-settings' way), so that a test building ``Settings(...)`` never picks up whatever
HEARTH_ variables the machine running it happens to have.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent

ENV_PREFIX = "HEARTH_"


def _web_dir() -> Path:
    # An installed wheel carries the client as server/web (pyproject.toml maps the
    # repository's top-level web/ there); a checkout or editable install serves web/ itself.
    packaged = Path(__file__).resolve().parent / "web"
    return packaged if (packaged / "index.html").is_file() else REPO_ROOT / "web"


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_DATA_DIR = Path("data")
DEFAULT_ATTENDANCE_DAYS = 30
# Seats in a circle when the admin names no capacity (HEARTH_DEFAULT_CAPACITY).
DEFAULT_CAPACITY = 30
MAX_CAPACITY = 1000
DEFAULT_BUSY_LAG_MS = 25
DEFAULT_BUSY_MIN_SEATED = 12
DEFAULT_BUSY_MIN_CPU_PERCENT = 10
DEFAULT_DRAIN_SECONDS = 20
# Nice value a process carrying live audio asks for (server/priority.py says why).
DEFAULT_NICE = -10
# How to reach help now, for a deployment that has not set its own region's numbers
# (HEARTH_CRISIS_TEXT): emergency numbers, crisis lines, and where to find one elsewhere.
DEFAULT_CRISIS_TEXT = (
    "If you are in danger or thinking of ending your life, please reach out now. "
    "Call your local emergency number: 112 in the European Union, 911 in the US and Canada, "
    "999 in the UK, 000 in Australia. To talk to someone: call or text 988 in the US and "
    "Canada; call 116 123 (Samaritans) in the UK and Ireland. Elsewhere, findahelpline.com "
    "lists free, confidential crisis lines in your country."
)

Positive = Annotated[int, Field(ge=1)]
Whole = Annotated[int, Field(ge=0)]
PositiveRate = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ConfigError(ValueError):
    """A setting from the environment that cannot be used; the message names the variable."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    host: str = DEFAULT_HOST
    port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_PORT
    data_dir: Path = DEFAULT_DATA_DIR
    # SQLAlchemy URL; empty means SQLite in data_dir.
    database_url: str = ""
    # Absolute base for the links the API hands out; empty means the request's own origin.
    public_url: str = ""
    # When set, this bearer token is accepted for the admin API (never stored, never logged).
    admin_token: str | None = Field(default=None, repr=False)
    # Addresses the media relay offers as ICE host candidates; empty means every interface.
    ice_addresses: tuple[str, ...] = ()
    # Forward a lone speaker's packets unchanged (the default); off, every tick is mixed and
    # encoded (the benchmark's "mixing only" design, docs/performance.md).
    audio_forwarding: bool = True
    # Listeners' RTP written by the audio path itself (the default), or by aiortc's sender.
    audio_direct_rtp: bool = True
    web_dir: Path = Field(default_factory=_web_dir)
    # Days attendance (who sat in an occurrence, by display name) is kept after they left.
    attendance_days: Positive = DEFAULT_ATTENDANCE_DAYS
    # Days moderation records (the audit log) are kept; purged at start and every hour.
    audit_retention_days: Positive = DEFAULT_ATTENDANCE_DAYS
    # Processes running live circles (``hearth serve --workers N``); 1 runs everything in
    # one process. With more, a front process serves pages and the API and pipes each
    # WebSocket to the worker that hosts its circle (docs/performance.md).
    workers: Positive = 1
    # Seconds a WebSocket may stay open without joining before the server closes it (4408):
    # a page joins at once, so only an idle or abusive client ever waits this long.
    join_timeout_seconds: Positive = 30
    # Capacity of a circle whose admin named none (one-off circles and series alike).
    default_capacity: Annotated[int, Field(ge=1, le=MAX_CAPACITY)] = DEFAULT_CAPACITY
    # Event-loop lag (ms) past which new arrivals are refused with server_busy, so the live
    # circles keep their audio; 0 turns the refusal off (docs/architecture.md).
    busy_lag_ms: Whole = DEFAULT_BUSY_LAG_MS
    # ... but only when the lag is the process's own doing: at least this many people are
    # seated in its circles and it uses at least this share of a core (percent). A process
    # that lags with fewer, or on a small slice of the CPU, is on a slow machine: it admits.
    busy_min_seated: Whole = DEFAULT_BUSY_MIN_SEATED
    busy_min_cpu_percent: Whole = DEFAULT_BUSY_MIN_CPU_PERCENT
    # Scheduling priority (a nice value, -20 to 19) the serving processes ask for, so audio
    # keeps its share of a busy machine's CPU; without the privilege they run as started.
    nice: Annotated[int, Field(ge=-20, le=19)] = DEFAULT_NICE
    # On SIGTERM: seconds live circles may go on (no new arrivals) before everyone is told
    # to reconnect (1012) and the process exits; it exits sooner once nobody is connected.
    drain_seconds: Whole = DEFAULT_DRAIN_SECONDS
    # While the database is away, unstored writes a live circle keeps before it refuses
    # participants' commands (hosts' and co-hosts' at twice this): memory stays bounded.
    outage_keep_limit: Positive = 1000
    # Limits on what a stranger controls (docs/protocol.md, "Limits"; README table).
    # Messages per socket: a burst, then a sustained rate; a long flood closes it (4429).
    message_rate: PositiveRate = 10.0
    message_burst: Positive = 40
    flood_close_after: Positive = 50
    # Renames per socket: a burst, then one per this many seconds; every rename is audited.
    rename_burst: Positive = 3
    rename_every_seconds: Positive = 30
    # Wrong passcodes per socket before it is closed (4429); then delays per circle, device
    # key and address double from 1 s up to passcode_max_delay_seconds.
    passcode_tries_per_socket: Positive = 3
    passcode_free_failures: Positive = 5
    passcode_max_delay_seconds: Positive = 300
    # People waiting in one lobby, and how long a lobby place is held (closed with 4431).
    lobby_size: Positive = 50
    lobby_idle_seconds: Positive = 1800
    # WebSockets per client address that have not joined yet (more are closed with 4430).
    unjoined_sockets_per_address: Positive = 50
    # POST /circle-info per client address: a burst, then this many a second (429 past it).
    circle_info_rate: PositiveRate = 5.0
    circle_info_burst: Positive = 20
    # ... and from all addresses together, per process (a flood spread over many addresses).
    circle_info_total_rate: PositiveRate = 50.0
    # Origins allowed to open the WebSocket; empty means this server's own origin
    # (public_url when set, else the Host the request came to). See docs/protocol.md.
    allowed_origins: tuple[str, ...] = ()

    # Production mode (HEARTH_PRODUCTION=1) refuses to start without public_url, so that no
    # link handed out is ever built from a request's Host header (docs/deploy.md).
    production: bool = False
    # The address people reach the server's media at when it sits behind a 1:1 NAT (most
    # clouds): written into the answer beside the interface address (Janus's
    # nat_1_1_mapping, LiveKit's node_ip). Empty: the interface addresses themselves.
    media_public_address: str = ""
    # UDP ports media binds to (inclusive, "40000-40999"), so a firewall can open exactly
    # them; None: any.
    media_ports: tuple[int, int] | None = None
    # TURN (coturn's use-auth-secret): the shared secret Hearth derives short-lived
    # credentials from, the URLs the page is given, and how long credentials last.
    turn_secret: str | None = Field(default=None, repr=False)
    turn_urls: tuple[str, ...] = ()
    turn_ttl_seconds: Positive = 12 * 3600
    # Prometheus metrics on their own listener (0: none), on metrics_host.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_host: str = "127.0.0.1"
    # Several nodes (docs/architecture.md, "Nodes"): the Redis they share; empty runs one
    # node exactly as before. Needs PostgreSQL as the database.
    redis_url: str = Field(default="", repr=False)
    # Keys in Redis start with this (several deployments, or tests, may share one Redis).
    redis_prefix: str = "hearth:"
    # This node's id in the registry; empty: a random one at each start.
    node_id: str = ""
    # Where the other nodes reach this one (HTTP and WebSocket); empty: http://host:port.
    node_url: str = ""
    # "text" (the default) or "json": one JSON object per log line.
    log_format: Literal["text", "json"] = "text"
    # The crisis-resources panel's text wherever a series sets none of its own (the series'
    # moderation settings, crisis_text). Set it to the numbers of the region you serve.
    crisis_text: Annotated[str, Field(min_length=1, max_length=4000)] = DEFAULT_CRISIS_TEXT

    @field_validator("media_ports", mode="before")
    @classmethod
    def _port_range(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        raw = value.strip()
        if not raw:
            return None
        low, _, high = raw.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"must be like 40000-40999, not {raw!r}") from None
        return first, last

    @field_validator("media_ports")
    @classmethod
    def _ports_in_order(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1024 <= value[0] <= value[1] <= 65535:
            raise ValueError(f"must be within 1024-65535, low to high: {value[0]}-{value[1]}")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("turn_secret")
    @classmethod
    def _no_empty_secret(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("ice_addresses", "allowed_origins", "turn_urls", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins_without_slash(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(origin.rstrip("/") for origin in value)

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("admin_token")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hearth.db').resolve()}"

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with the given values (None: keep), validated like the environment's."""
        kept = {name: value for name, value in changes.items() if value is not None}
        return Settings.model_validate({**self.model_dump(), **kept})


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def settings_from_env(env: Mapping[str, str] = os.environ) -> Settings:
    """Settings from ``HEARTH_*`` variables; raises ConfigError naming the first bad one.

    A variable set to the empty string counts as unset (``HEARTH_DATABASE_URL=`` keeps
    SQLite), as a shell's ``VAR=`` usually means.
    """
    values = {
        name: env[env_name(name)].strip()
        for name in Settings.model_fields
        if env.get(env_name(name), "").strip()
    }
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        given = values.get(field, "")
        raise ConfigError(
            f"{env_name(field)}={given!r} is not usable: {first['msg']}"
            if field != "admin_token"
            else f"{env_name(field)} is not usable: {first['msg']}"
        ) from None
    if settings.production and not settings.public_url:
        raise ConfigError(
            "HEARTH_PRODUCTION is set, so HEARTH_PUBLIC_URL must be too (e.g. "
            "https://circles.example.org): every link handed out is built from it"
        )
    if settings.redis_url and make_url(settings.effective_database_url).get_backend_name() != (
        "postgresql"
    ):
        raise ConfigError(
            "HEARTH_REDIS_URL (several nodes) needs HEARTH_DATABASE_URL on PostgreSQL: "
            "every node must read and write the same database"
        )
    if settings.turn_urls and not settings.turn_secret:
        raise ConfigError("HEARTH_TURN_URLS needs HEARTH_TURN_SECRET (coturn's static-auth-secret)")
    return settings
