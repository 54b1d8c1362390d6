"""Who may use the admin API: a bearer token, checked without ever being logged.

Two kinds of token are accepted: the one in the settings (HEARTH_ADMIN_TOKEN, for
deployments that manage secrets themselves) and those stored, hashed, in admin_tokens.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import hdrs, web

from server.appkeys import DATABASE, SETTINGS
from server.errors import UNAUTHORIZED, ApiError
from server.storage.repository import AdminTokenStore

log = logging.getLogger(__name__)

# RFC 6750: a missing token gets a bare challenge, a wrong one says "invalid_token".
_NO_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hearth-admin"'}
_BAD_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="hearth-admin", error="invalid_token"'}


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def is_admin_token(request: web.Request, token: str) -> bool:
    try:
        # aiohttp keeps a header's non-UTF-8 bytes as lone surrogates: no token has them.
        token.encode("utf-8")
    except UnicodeEncodeError:
        return False
    configured = request.app[SETTINGS].admin_token
    # Bytes, because compare_digest refuses str with non-ASCII characters.
    if configured and hmac.compare_digest(token.encode(), configured.encode()):
        return True
    return await AdminTokenStore(request.app[DATABASE]).verify(token)


async def require_admin(request: web.Request) -> None:
    """Return when the request carries an admin token; otherwise raise 401 ``unauthorized``."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            401, UNAUTHORIZED, "An admin bearer token is required.", headers=_NO_TOKEN_CHALLENGE
        )
    if not await is_admin_token(request, token):
        # The token itself is never logged, not even a prefix of it.
        log.info("refused an admin request: unknown or revoked token")
        raise ApiError(
            401,
            UNAUTHORIZED,
            "The admin token is not valid.",
            headers=_BAD_TOKEN_CHALLENGE,
        )
