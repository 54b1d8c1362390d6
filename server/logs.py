"""Log lines that never hold a client's address or a link token, as text or as JSON.

The project's own code logs no address, token or display name. Libraries do: aiohttp's
"Error handling request from <address>" and its WebSocket warnings name the client. Rather
than chase each message, every line is scrubbed once it is formatted, exception text
included: any IP address but the loopback and unspecified ones (never a person's) becomes
``<address>``, and a circle path ``/c/<token>`` loses its token.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from server.access_log import redact_path

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Anything that could be an IPv6 address; ipaddress decides (so "18:27:44" stays).
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*(?:%\w+)?(?![\w:])")
_TOKEN_PATHS = re.compile(r"/c/[A-Za-z0-9_\-]{6,}")
# Never a person's address: what a server binds to or talks to itself on.
_HARMLESS = {"127.0.0.1", "0.0.0.0", "::1", "::"}


def _address(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    return text if text in _HARMLESS else "<address>"


def scrub(line: str) -> str:
    """The line without client addresses or link tokens."""
    line = _IPV4.sub(_address, line)
    if ":" in line:
        line = _IPV6.sub(_address, line)
    return _TOKEN_PATHS.sub(lambda m: redact_path(m.group(0)), line)


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class ScrubbingJsonFormatter(JsonFormatter):
    """One JSON object per line (python-json-logger), scrubbed like the text lines."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data.setdefault("level", record.levelname)
        log_data.setdefault("logger", record.name)


def configure_logging(log_format: str = "text", tag: str = "") -> None:
    """Root logging for ``hearth serve`` and its workers (HEARTH_LOG_FORMAT)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        fields = {"worker": tag.strip()} if tag else None
        handler.setFormatter(
            ScrubbingJsonFormatter("%(asctime)s %(message)s", static_fields=fields)
        )
    else:
        handler.setFormatter(
            ScrubbingFormatter(f"%(asctime)s %(levelname)s {tag}%(name)s %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # aioice and aiortc are chatty at INFO about every candidate pair (and its addresses).
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
