"""An admin schedules a weekly series through the console in Chromium and sees its dates."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

BERLIN = ZoneInfo("Europe/Berlin")


def next_tuesday_in_berlin() -> date:
    today = datetime.now(BERLIN).date() + timedelta(days=1)
    return today + timedelta(days=(1 - today.weekday()) % 7)


async def test_admin_creates_a_weekly_series_through_the_form_and_sees_its_next_dates(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    title = f"Tuesday circle {secrets.token_hex(3)}"
    first = next_tuesday_in_berlin()
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(), headless=True
        )
        try:
            context = await browser.new_context(locale="en-GB", timezone_id="America/New_York")
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{hearth_server.base_url}/admin")

            await page.get_by_test_id("admin-token").fill("not-the-token")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_text("That token was not accepted.")).to_be_visible()

            await page.get_by_test_id("admin-token").fill(hearth_server.admin_token)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_test_id("week")).to_be_visible()

            await page.get_by_test_id("title").fill(title)
            await page.get_by_test_id("timezone").fill("Europe/Berlin")
            await page.get_by_test_id("first-date").fill(first.isoformat())
            await page.get_by_test_id("start-time").fill("19:00")
            await page.get_by_test_id("preset-weekly").check()
            await page.get_by_test_id("day-TU").check()
            await page.get_by_test_id("preview").click()

            preview = page.get_by_test_id("preview-list").locator("li")
            await expect(preview).to_have_count(6)
            shown = await preview.all_inner_texts()
            # In the series' zone, whatever the admin's own (New York here), across any DST.
            expected = [first + timedelta(weeks=n) for n in range(6)]
            assert shown == [f"Tue, {d.day} {d.strftime('%b %Y')}, 19:00" for d in expected]

            await page.get_by_test_id("save").click()
            entry = page.get_by_test_id("series-list").locator("li", has_text=title).first
            await expect(entry).to_be_visible()
            await expect(entry).to_contain_text("Weekly on Tuesday")
            next_dates = entry.get_by_test_id("next-dates").locator("li")
            await expect(next_dates).to_have_count(5)
            assert await next_dates.all_inner_texts() == shown[:5]
            await expect(entry).to_contain_text(f"{hearth_server.base_url}/c/")

            # The week view, in the admin's own zone: 19:00 Berlin is 13:00 in New York.
            today_there = datetime.now(ZoneInfo("America/New_York")).date()
            monday = today_there - timedelta(days=today_there.weekday())
            label = page.locator("#week-label")
            for _ in range((first - monday).days // 7):
                before = await label.inner_text()
                await page.get_by_role("button", name="Next week").click()
                await expect(label).not_to_have_text(before)
            day = page.get_by_test_id("week").locator("li", has_text=f"Tuesday {first.day}")
            await expect(day.get_by_text(f"13:00 {title}")).to_be_visible()
            await page.screenshot(path=str(artifacts_dir / "admin-console.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []

    status, body = hearth_server.api("GET", "/api/v1/series")
    assert status == 200
    (created,) = [s for s in body["series"] if s["title"] == title]
    assert created["rrule"] == "FREQ=WEEKLY;BYDAY=TU"
    assert created["timezone"] == "Europe/Berlin"
    starts = datetime.fromisoformat(created["starts_at"]).astimezone(BERLIN)
    assert (starts.date(), starts.strftime("%H:%M")) == (first, "19:00")
