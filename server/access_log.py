"""Access logging that never writes a link token.

aiohttp's default access log prints the request line, and a circle's link is a path
(``/c/<token>``): logging it would hand the room's key to whoever reads the logs. The
client's address is not logged either: hosts must never learn it, and nobody else needs it.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

_TOKEN_PATH = re.compile(r"^/c/[^/?#]+")


def redact_path(path: str) -> str:
    return _TOKEN_PATH.sub("/c/<token>", path)


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '"%s %s" %s %.1fms',
            request.method,
            redact_path(request.path),
            response.status,
            time * 1000,
        )
