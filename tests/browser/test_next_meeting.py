"""A person who opens a circle's link before it opens is told when the next meeting starts, in
their own time zone and language; a link nobody issued learns no date (issue 11, item 3)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.support.server import ServerProcess


async def knock(browser: Browser, url: str, timezone: str, errors: list[str]) -> Page:
    context = await browser.new_context(locale="en-US", timezone_id=timezone)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.get_by_test_id("display-name").fill("Robin")
    await page.get_by_test_id("join-muted").set_checked(True)
    await page.get_by_test_id("join").click()
    await expect(page.get_by_test_id("not-open")).to_be_visible(timeout=15_000)
    return page


async def test_the_closed_door_says_when_the_next_meeting_starts_in_the_visitors_time(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    # Three days ahead at 18:00 UTC: 13:00 in New York (EST in winter, EDT in summer: 14:00),
    # 03:00 the next day in Tokyo. The page must say the visitor's own time, not the server's.
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    circle = hearth_server.create_circle(
        f"Circle on {starts:%A} {secrets.token_hex(2)}",
        starts_at=starts.isoformat(),
        timezone="UTC",
    )
    url = urljoin(hearth_server.base_url, circle["join_url"])
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(), headless=True
        )
        try:
            new_york = await knock(browser, url, "America/New_York", errors)
            said = new_york.get_by_test_id("not-open-next")
            await expect(said).to_be_visible()
            local = starts.astimezone(ZoneInfo("America/New_York"))
            await expect(said).to_contain_text(f"{local:%A}")
            await expect(said).to_contain_text(f"{local.day}")
            await expect(said).to_contain_text(f"{local.hour % 12 or 12}:00")
            await expect(said).to_contain_text("(your time)")

            tokyo = await knock(browser, url, "Asia/Tokyo", errors)
            local = starts.astimezone(ZoneInfo("Asia/Tokyo"))
            await expect(tokyo.get_by_test_id("not-open-next")).to_contain_text(
                f"{local:%A}, {local:%B} {local.day} at {local.hour % 12 or 12}:00"
            )

            # A link nobody issued: the same closed door, and no date at all.
            unknown = await knock(
                browser, f"{hearth_server.base_url}/c/{secrets.token_urlsafe(16)}", "UTC", errors
            )
            await expect(unknown.get_by_test_id("not-open-next")).to_be_hidden()
        finally:
            await browser.close()
    assert errors == [], errors
