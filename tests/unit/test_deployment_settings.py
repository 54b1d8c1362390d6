"""Deployment settings and the pieces they switch on: production mode, the media port range,
the public address in answers, TURN credentials, scrubbed logs, links never from Host."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from server.app import create_app
from server.config import Settings, settings_from_env
from server.logs import ScrubbingFormatter, scrub
from signaling import peer
from tests.unit.test_api import ADMIN_TOKEN, AUTH

WEEKLY = {
    "title": "Tuesday circle",
    "starts_at": "2026-10-06T19:00:00+02:00",
    "timezone": "Europe/Berlin",
    "duration_minutes": 90,
    "rrule": "FREQ=WEEKLY;BYDAY=TU",
    "public": True,
}


def test_production_mode_refuses_to_start_without_a_public_url() -> None:
    with pytest.raises(ValueError, match="HEARTH_PUBLIC_URL"):
        settings_from_env({"HEARTH_PRODUCTION": "1"})
    settings = settings_from_env(
        {"HEARTH_PRODUCTION": "1", "HEARTH_PUBLIC_URL": "https://circles.example.org/"}
    )
    assert settings.production and settings.public_url == "https://circles.example.org"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("", None), ("40000-40999", (40000, 40999)), ("50000", (50000, 50000))],
)
def test_media_ports_are_a_range(raw: str, parsed: tuple[int, int] | None) -> None:
    assert settings_from_env({"HEARTH_MEDIA_PORTS": raw}).media_ports == parsed


@pytest.mark.parametrize("raw", ["40999-40000", "80-90", "a-b", "40000-70000"])
def test_a_media_port_range_that_cannot_work_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="HEARTH_MEDIA_PORTS"):
        settings_from_env({"HEARTH_MEDIA_PORTS": raw})


def test_turn_urls_without_a_secret_and_an_unknown_log_format_are_refused() -> None:
    with pytest.raises(ValueError, match="HEARTH_TURN_SECRET"):
        settings_from_env({"HEARTH_TURN_URLS": "turn:turn.example.org:3478"})
    with pytest.raises(ValueError, match="HEARTH_LOG_FORMAT"):
        settings_from_env({"HEARTH_LOG_FORMAT": "xml"})


def test_turn_credentials_follow_the_turn_rest_scheme_and_expire() -> None:
    config = peer.TurnConfig("s3cret", ("turn:t.example.org:3478",), ttl_seconds=600)
    username, password = peer.turn_credentials(config, now=1_000_000)
    expiry, _, random_id = username.partition(":")
    assert int(expiry) == 1_000_600 and random_id
    digest = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert password == base64.b64encode(digest).decode()
    # A fresh id each time: two pages never share a username.
    assert peer.turn_credentials(config, now=1_000_000)[0] != username


def test_the_page_gets_no_ice_servers_without_turn_and_only_ours_with_it() -> None:
    peer.use_turn(None)
    assert peer.ice_servers_for_page() == []
    peer.use_turn(peer.TurnConfig("s", ("turns:turn.example.org:443?transport=tcp",)))
    try:
        (server,) = peer.ice_servers_for_page()
        assert server["urls"] == ["turns:turn.example.org:443?transport=tcp"]
        assert set(server) == {"urls", "username", "credential"}
    finally:
        peer.use_turn(None)


def test_a_public_address_is_offered_beside_each_ipv4_host_candidate() -> None:
    sdp = (
        "v=0\r\nm=audio 40001 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1a 1 udp 2130706431 10.0.0.5 40001 typ host\r\n"
        "a=candidate:2b 1 udp 2130706431 fd00::5 40002 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    out = peer.with_public_address(sdp, "203.0.113.10")
    lines = out.split("\r\n")
    assert "a=candidate:1a 1 udp 2130706431 10.0.0.5 40001 typ host" in lines
    assert "a=candidate:1an 1 udp 2130706430 203.0.113.10 40001 typ host" in lines
    assert sum("fd00::5" in line for line in lines) == 1
    assert out.endswith("\r\n")
    assert peer.with_public_address(sdp, "") == sdp


async def test_media_sockets_bind_only_inside_the_port_range() -> None:
    import aioice.ice

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
    # One port of the three is taken: the range skips it.
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", first + 1))
    peer.use_media_ports((first, first + 2))
    try:
        loop = aioice.ice.asyncio.get_running_loop()
        transports = []
        for _ in range(2):
            transport, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
            )
            transports.append(transport)
        ports = {t.get_extra_info("sockname")[1] for t in transports}
        assert ports == {first, first + 2}
        with pytest.raises(OSError, match="every media port"):
            await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
            )
        for transport in transports:
            transport.close()
    finally:
        taken.close()
        peer.use_media_ports(None)
    assert aioice.ice.asyncio is asyncio


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Error handling request from 198.51.100.7", "Error handling request from <address>"),
        ("peer 2001:db8::7 left", "peer <address> left"),
        ("at 18:27:44 nothing", "at 18:27:44 nothing"),
        ("GET /c/Abc123_-xyzLONGTOKEN 200", "GET /c/<token> 200"),
        ("listening on 127.0.0.1:8080", "listening on 127.0.0.1:8080"),
        ("version 1.2.3.4.5", "version 1.2.3.4.5"),
    ],
)
def test_log_lines_are_scrubbed_of_addresses_and_link_tokens(line: str, expected: str) -> None:
    assert scrub(line) == expected


def test_exception_text_is_scrubbed_too() -> None:
    try:
        raise ConnectionResetError("reset by 198.51.100.7")
    except ConnectionResetError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", None, True)
        import sys

        record.exc_info = sys.exc_info()
    text = ScrubbingFormatter("%(message)s").format(record)
    assert "198.51.100.7" not in text and "<address>" in text


async def _feed(aiohttp_client: Any, tmp_path: Path, public_url: str, host: str) -> Any:
    settings = Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, public_url=public_url)
    client = await aiohttp_client(create_app(settings))
    created = await client.post("/api/v1/series", json=WEEKLY, headers=AUTH)
    assert created.status == 201
    return await client.get("/api/v1/feeds/calendar.ics", headers={"Host": host})


async def test_feed_links_never_come_from_a_strangers_host_header(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    response = await _feed(aiohttp_client, tmp_path, "", "evil.example")
    calendar = Calendar.from_ical(await response.read())
    (event,) = calendar.walk("VEVENT")
    assert "evil.example" not in str(event["url"])
    assert str(event["url"]).startswith("http://127.0.0.1:8080/c/")
    # Built without HEARTH_PUBLIC_URL: never kept by a shared cache.
    assert response.headers["Cache-Control"] == "no-store"


async def test_feed_links_come_from_the_public_url_and_may_then_be_cached(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    response = await _feed(aiohttp_client, tmp_path, "https://circles.example.org", "evil.example")
    (event,) = Calendar.from_ical(await response.read()).walk("VEVENT")
    assert str(event["url"]).startswith("https://circles.example.org/c/")
    assert response.headers["Cache-Control"] == "public, max-age=300"


async def test_readiness_reports_a_reason_a_check_gives(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    from server.health import not_ready_while

    app = create_app(Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN))
    draining = {"on": False}
    not_ready_while(app, lambda: "draining" if draining["on"] else None)
    client = await aiohttp_client(app)
    assert (await client.get("/readyz")).status == 200
    draining["on"] = True
    response = await client.get("/readyz")
    assert response.status == 503 and await response.json() == {"status": "draining"}
    assert (await client.get("/healthz")).status == 200
