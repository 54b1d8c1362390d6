"""Chromium through a node that does not run the circle: the page, its WebSocket and its
join go through that node's door, the media straight to the owner; both people hear each
other. Three real nodes, one PostgreSQL database of the test's own, Redis under its prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.test_two_people_hear_each_other import (
    ABSENT_DB,
    HEARD_DB,
    HOST_TONE,
    PARTICIPANT_TONE,
    above_floor,
    chromium,
    join,
    measure_until,
    open_page,
    row,
)
from tests.conftest import throwaway_postgres_database
from tests.nodes.conftest import Cluster

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    for url in throwaway_postgres_database():
        made = Cluster(tmp_path, url)
        made.start()
        try:
            yield made
        finally:
            made.stop()


async def test_a_page_through_a_non_owner_node_hears_and_is_heard(
    cluster: Cluster, chromium_path: Path, tones: dict[int, Path], artifacts_dir: Path
) -> None:
    first = cluster.nodes[0]
    circle = first.create_circle("Through another door")
    errors: list[str] = []
    async with (
        async_playwright() as pw,
        chromium(pw, chromium_path, tones[HOST_TONE]) as host_browser,
        chromium(pw, chromium_path, tones[PARTICIPANT_TONE]) as guest_browser,
    ):
        host = await open_page(
            host_browser, urljoin(first.base_url, circle["host_url"]), 1024, errors
        )
        await join(host, "Ana", muted=False)
        await expect(row(host, "Ana")).to_have_count(1, timeout=15_000)
        owner = cluster.owner(circle["id"])
        assert owner is not None
        door = next(n for n in cluster.nodes if n.extra_env["HEARTH_NODE_ID"] != owner)
        guest = await open_page(
            guest_browser, urljoin(door.base_url, circle["join_url"]), 360, errors
        )
        await join(guest, "Sam", muted=False)
        for page in (host, guest):
            await expect(page.get_by_test_id("participant")).to_have_count(2, timeout=15_000)

        def hears(other: int, own: int) -> Any:
            return lambda lv: above_floor(lv, other) > HEARD_DB and above_floor(lv, own) < ABSENT_DB

        host_levels = await measure_until(host, hears(PARTICIPANT_TONE, HOST_TONE))
        guest_levels = await measure_until(guest, hears(HOST_TONE, PARTICIPANT_TONE))
        print("through a door: host hears", host_levels, "participant hears", guest_levels)
        assert above_floor(host_levels, PARTICIPANT_TONE) > HEARD_DB, host_levels
        assert above_floor(guest_levels, HOST_TONE) > HEARD_DB, guest_levels
        assert above_floor(guest_levels, PARTICIPANT_TONE) < ABSENT_DB, guest_levels
        # A command through the door reaches the owner and comes back to both.
        await row(host, "Sam").get_by_test_id("mute").click()
        for page in (host, guest):
            await expect(row(page, "Sam")).to_have_attribute("data-muted", "true")
        await guest.screenshot(path=str(artifacts_dir / "node-door-guest.png"), full_page=True)
    assert errors == []
    assert cluster.owner(circle["id"]) == owner
