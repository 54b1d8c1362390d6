"""The join page during a database outage: someone arriving is told in the server's words that
nobody new can come in right now (the door panel, not a silent, stuck page), with the
microphone released, and the page gets them in by itself once the database is back (issue 9:
recovery is automatic); the host inside stays in the circle throughout."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import expect

from tests.browser.test_client_page import browser_for, join, open_person
from tests.browser.test_states_and_devices import LIVE_TRACKS, person_in
from tests.support.own_postgres import OwnPostgres, available
from tests.support.server import ServerProcess

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not available(), reason="no PostgreSQL server binaries"),
]


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        cluster.create()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


async def test_a_newcomer_is_told_during_an_outage_and_gets_in_after_it(
    tmp_path: Path, chromium_path: Path, tones: dict[int, Path], own_postgres: OwnPostgres
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data", extra_env={"HEARTH_DATABASE_URL": own_postgres.url}
    )
    server.start()
    try:
        async with browser_for(chromium_path, tones[500]) as browser:
            circle = server.create_circle("Through an outage")
            host = await open_person(browser, urljoin(server.base_url, circle["host_url"]), 1280)
            await join(host.page, "Ana")
            lee, _ = await person_in(browser, urljoin(server.base_url, circle["join_url"]))

            await asyncio.to_thread(own_postgres.stop, "fast")
            await lee.page.get_by_test_id("display-name").fill("Lee")
            await lee.page.get_by_test_id("join").click()
            door = lee.page.get_by_test_id("door")
            await expect(door).to_be_visible(timeout=10_000)
            await expect(lee.page.get_by_test_id("door-text")).to_contain_text(
                "cannot let anyone in right now", timeout=10_000
            )
            # Waiting by itself (no "Wait" button to press), saying when, microphone off.
            await expect(lee.page.get_by_test_id("door-countdown")).to_contain_text(
                re.compile("tries again in|Trying again")
            )
            await expect(lee.page.get_by_test_id("door-wait")).to_be_hidden()
            await lee.page.wait_for_function(LIVE_TRACKS.replace("=> ", "=> 0 === "))
            assert await lee.page.evaluate("window.__tracks.length") >= 1
            await expect(lee.page.get_by_test_id("connection-state")).not_to_have_attribute(
                "data-state", "connected"
            )
            await expect(host.page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected"
            )

            await asyncio.to_thread(own_postgres.start)
            # Back: the page's own retry lets Lee in (the database may take a moment); nobody
            # pressed anything.
            await expect(lee.page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected", timeout=60_000
            )
            await expect(door).to_be_hidden()
            await expect(host.page.get_by_test_id("participant")).to_have_count(2)
            assert host.errors == lee.errors == []
    finally:
        server.stop()
