"""The circle page through a server drain and restart (SIGTERM): people inside are told and
come back to their own seats by themselves; someone who knocks meanwhile is let in once the
server is back, without doing anything."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import expect

from tests.browser.test_client_page import Person, browser_for, join, open_person, row
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

DRAIN_SECONDS = 4


async def test_a_restart_brings_everyone_back_to_their_seat_and_lets_the_knocker_in(
    tmp_path: Path, chromium_path: Path, tones: dict[int, Path]
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data", extra_env={"HEARTH_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    )
    server.start()
    try:
        async with browser_for(chromium_path, tones[500]) as browser:
            circle = server.create_circle("Through a restart")
            join_url = urljoin(server.base_url, circle["join_url"])
            host = await open_person(browser, urljoin(server.base_url, circle["host_url"]), 1280)
            await join(host.page, "Ana")
            sam = await open_person(browser, join_url)
            await join(sam.page, "Sam")
            sam_id = await row(sam.page, "Sam").get_attribute("data-id")
            lee: Person = await open_person(browser, join_url)

            assert server.process is not None
            process = server.process
            process.send_signal(signal.SIGTERM)
            # Knocking while the server drains: refused for now in the server's words, and the
            # page keeps trying by itself (saying when).
            await lee.page.get_by_test_id("display-name").fill("Lee")
            await lee.page.get_by_test_id("join").click()
            await expect(lee.page.get_by_test_id("door-text")).to_contain_text(
                "restart", timeout=10_000
            )
            await expect(lee.page.get_by_test_id("door-countdown")).to_contain_text(
                "tries again in"
            )
            # Those inside lose the connection only when the drain time is over.
            for person in (host, sam):
                await expect(person.page.get_by_test_id("reconnecting")).to_be_visible(
                    timeout=(DRAIN_SECONDS + 10) * 1000
                )
            assert await asyncio.to_thread(process.wait, 15) == 0
            server.process = None

            server.start()
            for person in (host, sam, lee):
                await expect(person.page.get_by_test_id("connection-state")).to_have_attribute(
                    "data-state", "connected", timeout=30_000
                )
            # Sam is back in the same seat; Lee is in; nobody did anything.
            for view in (host.page, sam.page):
                await expect(view.get_by_test_id("participant")).to_have_count(3, timeout=10_000)
            assert await row(host.page, "Sam").get_attribute("data-id") == sam_id
            assert host.errors == sam.errors == lee.errors == []
    finally:
        server.stop()
