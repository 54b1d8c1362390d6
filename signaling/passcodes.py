"""Circle passcodes, kept only as slow salted hashes (scrypt, from the standard library).

A passcode is short and chosen by a person, so a plain hash of it falls to a dictionary in
seconds once a database leaks; scrypt with these costs takes about 40-60 ms and 16 MiB per
try, which makes that expensive while a person joining never notices. stdlib rather than
argon2-cffi: no new dependency, and scrypt is as memory-hard for this use.

Stored form (fits the 100-character column): ``scrypt:<log2 n>:<r>:<p>$<salt>$<hash>``,
salt and hash in unpadded URL-safe base64. Checking runs in a thread: it must not hold the
event loop that carries everyone's audio.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets

LOG2_N = 14
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
PREFIX = "scrypt:"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(passcode: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        passcode.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=1 << log2_n,
        r=r,
        p=p,
        maxmem=64 * 1024 * 1024,
        dklen=HASH_BYTES,
    )


def hash_passcode(passcode: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(passcode, salt, LOG2_N, R, P)
    return f"{PREFIX}{LOG2_N}:{R}:{P}${_b64(salt)}${_b64(digest)}"


def is_hashed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def verify_passcode(passcode: str, stored: str) -> bool:
    """True when ``passcode`` is the one ``stored`` was made from (constant-time compare)."""
    try:
        params, salt_text, digest_text = stored[len(PREFIX) :].split("$")
        log2_n, r, p = (int(part) for part in params.split(":"))
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except ValueError:
        return False
    if not (is_hashed(stored) and 10 <= log2_n <= 20 and 1 <= r <= 16 and 1 <= p <= 4):
        return False
    return hmac.compare_digest(_derive(passcode, salt, log2_n, r, p), expected)


async def check_passcode(passcode: str | None, stored: str | None) -> bool:
    """The check a join needs, off the event loop; no passcode set means any will do."""
    if not stored:
        return True
    if not passcode:
        return False
    return await asyncio.to_thread(verify_passcode, passcode, stored)
