"""The join page at a starved server: the newcomer's page is turned away with server_busy and
lands on the door panel (issue 14) in the server's words, with the microphone released and a
countdown to its own next try; it gets in by itself once the server is calm, without the
person doing anything (issue 9). The starvation is real (the server process stopped 300 ms of
every 400 ms, as in tests/integration/test_overload.py)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import expect

from rooms.overload import BUSY_MESSAGE
from tests.browser.test_client_page import browser_for, join, open_person
from tests.browser.test_states_and_devices import LIVE_TRACKS, person_in
from tests.integration.test_overload import (
    BUSY,
    CALM,
    STARVED_FROM_OUTSIDE,
    starved,
    wait_for_log,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser


async def test_a_busy_server_turns_the_page_away_and_it_knocks_again_by_itself(
    tmp_path: Path, chromium_path: Path, tones: dict[int, Path]
) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", extra_env=STARVED_FROM_OUTSIDE)
    server.start()
    try:
        async with browser_for(chromium_path, tones[500]) as browser:
            circle = server.create_circle("Under load")
            host = await open_person(browser, urljoin(server.base_url, circle["host_url"]), 1280)
            await join(host.page, "Ana")
            lee, _ = await person_in(browser, urljoin(server.base_url, circle["join_url"]))
            await lee.page.get_by_test_id("display-name").fill("Lee")
            assert server.process is not None
            with starved(server.process.pid):
                await wait_for_log(server, BUSY, 1, timeout=30)
                await lee.page.get_by_test_id("join").click()
                # Turned away: the door panel, in the server's words, waiting by itself (no
                # "Wait" button to press), the microphone released meanwhile.
                door = lee.page.get_by_test_id("door")
                await expect(door).to_be_visible(timeout=30_000)
                await expect(lee.page.get_by_test_id("door-text")).to_have_text(
                    BUSY_MESSAGE, timeout=30_000
                )
                await expect(lee.page.get_by_test_id("door-countdown")).to_contain_text(
                    re.compile("tries again in|Trying again"), timeout=30_000
                )
                await expect(lee.page.get_by_test_id("door-wait")).to_be_hidden()
                await lee.page.wait_for_function(LIVE_TRACKS.replace("=> ", "=> 0 === "))
                assert await lee.page.evaluate("window.__tracks.length") >= 1
                await expect(lee.page.get_by_test_id("connection-state")).not_to_have_attribute(
                    "data-state", "connected"
                )
            await wait_for_log(server, CALM, 1, timeout=30)
            # Calm again: the page's own retry lets Lee in; nobody pressed anything.
            await expect(lee.page.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected", timeout=40_000
            )
            await expect(door).to_be_hidden()
            await expect(host.page.get_by_test_id("participant")).to_have_count(2)
            # Lee's page was really refused while the server was busy, then let in.
            refused = re.findall(
                r"calm again: taking new arrivals \((\d+) refused\)", server.log_text()
            )
            assert refused and int(refused[0]) >= 1, server.log_text()[-2000:]
            assert host.errors == lee.errors == []
    finally:
        server.stop()
