"""The join page during a database outage: someone arriving is told in words that nobody new
can come in right now (not a silent, stuck page), and gets in by pressing Join again once
the database is back; the host inside stays in the circle throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import expect

from tests.browser.test_client_page import browser_for, join, open_person
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
            lee = await open_person(browser, urljoin(server.base_url, circle["join_url"]))

            await asyncio.to_thread(own_postgres.stop, "fast")
            await lee.page.get_by_test_id("display-name").fill("Lee")
            await lee.page.get_by_test_id("join").click()
            await expect(lee.page.locator("#join-status")).to_contain_text(
                "cannot let anyone in right now", timeout=10_000
            )
            await expect(lee.page.get_by_test_id("join")).to_be_enabled()
            await expect(host.page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected"
            )

            await asyncio.to_thread(own_postgres.start)
            # Back: the same button lets Lee in (the database may take a moment).
            for _ in range(20):
                await lee.page.get_by_test_id("join").click()
                try:
                    await expect(lee.page.get_by_test_id("connection-state")).to_have_attribute(
                        "data-state", "connected", timeout=3_000
                    )
                    break
                except AssertionError:
                    continue
            await expect(lee.page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected"
            )
            await expect(host.page.get_by_test_id("participant")).to_have_count(2)
            assert host.errors == lee.errors == []
    finally:
        server.stop()
