"""An admin changes a series' moderation settings and its host-link roster, copies a link, and
opens and leaves a series' edit form with the keyboard alone (Tab, Shift+Tab, Enter, Space,
arrows and typing; nothing is clicked) in Chromium. Each change is stored (asked of the API),
the focus lands on a sensible control after each action (never the body, even though the list
is drawn anew; back on the Edit button after "Stop editing"), and what happened ("Link
copied." included) is said in a live region that lasted across the redraw, so a screen reader
reads it out.

The confirmations before rotating and revoking are the browser's own dialogs (keyboard
operable by nature); Playwright answers them.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Locator, Page, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.browser.test_admin_console_actions import api
from tests.support.server import ServerProcess, link_token

pytestmark = pytest.mark.browser

BERLIN = ZoneInfo("Europe/Berlin")
MOST_TABS = 800  # the series list of a shared test server can be long

# Whether the focused element is the one the locator names (checked in the page, per key).
IS_FOCUSED = "element => element === document.activeElement"


async def focus_is_not_lost(page: Page) -> None:
    lost = await page.evaluate(
        "document.activeElement === null || document.activeElement === document.body"
    )
    assert not lost, "the focus fell to the body"


async def tab_to(page: Page, target: Locator, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the target has the focus: it is reachable by keyboard."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MOST_TABS):
        if await target.evaluate(IS_FOCUSED):
            return
        await page.keyboard.press(key)
    raise AssertionError(f"{target} is not reachable with {key}")


async def mark(locator: Locator) -> None:
    await locator.evaluate("element => { element.hearthMark = true; }")


async def assert_lasting_live_region(status: Locator, text: str) -> None:
    """The words are in a polite live region that existed before the action (a region drawn
    anew with its words already in it is not reliably read out)."""
    await expect(status).to_contain_text(text)
    live = await status.evaluate(
        """element => {
            const region = element.closest('[role=status],[role=alert],[aria-live]');
            return region !== null && element.hearthMark === true
                && (region.getAttribute('aria-live') || region.getAttribute('role')) !== 'off';
        }"""
    )
    assert live, "the status is not in a live region that lasted across the change"


async def test_moderation_settings_and_host_roster_by_keyboard_alone(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    title = f"Keyboard circle {secrets.token_hex(3)}"
    start = (datetime.now(BERLIN) + timedelta(days=4)).replace(
        hour=18, minute=0, second=0, microsecond=0
    )
    series = api(
        hearth_server,
        "POST",
        "/api/v1/series",
        {
            "title": title,
            "starts_at": start.isoformat(),
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
        },
    )
    sid = series["id"]
    first_link = series["host_links"][0]
    old_token = link_token(first_link["url"])
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(), headless=True
        )
        try:
            context = await browser.new_context(locale="en-GB", timezone_id="Europe/Berlin")
            await context.grant_permissions(
                ["clipboard-read", "clipboard-write"], origin=hearth_server.base_url
            )
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            keys = page.keyboard

            # --- sign in: type the token, Enter; the focus goes to the week, not the body.
            await page.goto(f"{hearth_server.base_url}/admin")
            await tab_to(page, page.get_by_test_id("admin-token"))
            await keys.type(hearth_server.admin_token)
            await keys.press("Enter")
            await expect(page.get_by_test_id("week")).to_be_visible()
            await expect(page.locator("#week-title")).to_be_focused()

            entry = page.get_by_test_id("series-list").locator(f'li[data-series-id="{sid}"]')
            opener = entry.get_by_test_id("moderation-settings")
            await tab_to(page, opener)
            await keys.press("Enter")
            moderation_status = page.get_by_test_id("moderation-status")
            await expect(page.locator("#moderation-title")).to_be_focused()
            await mark(moderation_status)

            # --- moderation settings: a refused value first, said in an alert; nothing stored.
            await tab_to(page, page.get_by_test_id("share-seconds"))
            await keys.type("5")
            await keys.press("Enter")  # Enter in a field submits the form
            error = page.get_by_test_id("moderation-error")
            await expect(error).to_contain_text("share_seconds")
            assert await error.get_attribute("role") == "alert"
            await expect(page.get_by_test_id("share-seconds")).to_be_focused()
            assert (
                api(hearth_server, "GET", f"/api/v1/series/{sid}/moderation")["share_seconds"]
                is None
            )

            # Back up with Shift+Tab to the first field and walk the form.
            await tab_to(page, page.get_by_test_id("speaking-mode"), backwards=True)
            await keys.press("ArrowDown")
            await expect(page.get_by_test_id("speaking-mode")).to_have_value("hand_raise")
            await tab_to(page, page.get_by_test_id("no-host-policy"))
            await keys.press("ArrowDown")
            await expect(page.get_by_test_id("no-host-policy")).to_have_value("hold")
            await tab_to(page, page.get_by_test_id("share-seconds"))
            await keys.press("Control+A")
            await keys.type("240")
            await tab_to(page, page.get_by_test_id("lobby"))
            await keys.press("Space")
            await expect(page.get_by_test_id("lobby")).to_be_checked()
            await tab_to(page, page.get_by_test_id("passcode"))
            await keys.type("river stone")
            crisis = page.get_by_test_id("crisis-text")
            has_crisis = await crisis.is_visible()
            if has_crisis:
                await tab_to(page, crisis)
                await keys.type("In crisis? Call 112.")
            save = page.get_by_test_id("moderation-save")
            await tab_to(page, save)
            await keys.press("Enter")
            await assert_lasting_live_region(moderation_status, "Saved.")
            await expect(error).to_be_hidden()
            await expect(save).to_be_focused()
            await focus_is_not_lost(page)
            settings = api(hearth_server, "GET", f"/api/v1/series/{sid}/moderation")
            assert settings["speaking_mode"] == "hand_raise"
            assert settings["no_host_policy"] == "hold"
            assert settings["share_seconds"] == 240
            assert settings["lobby"] is True
            assert settings["passcode_set"] is True
            if has_crisis:
                assert settings["crisis_text"] == "In crisis? Call 112."

            # Close: the focus returns to the button that opened the form.
            await tab_to(page, page.locator("#moderation-close"))
            await keys.press("Enter")
            await expect(page.get_by_test_id("moderation")).to_be_hidden()
            await expect(opener).to_be_focused()

            # --- the roster, reached backwards from the settings button.
            roster = entry.get_by_test_id("roster")
            series_status = page.get_by_test_id("series-status")
            await mark(series_status)

            # Add: typed name, Enter; the focus goes to the new link's copy button.
            await tab_to(page, roster.get_by_test_id("new-host-name"), backwards=True)
            await keys.type("Kim")
            await keys.press("Enter")
            kim = roster.locator('[data-host-name="Kim"]')
            await expect(kim.get_by_test_id("copy")).to_be_focused()
            await assert_lasting_live_region(series_status, "Host link added for “Kim”")
            kim_url = await kim.get_by_test_id("host-url").inner_text()
            kim_token = link_token(kim_url)

            # Copy it with Enter: the link is on the clipboard, and "Link copied." is said in
            # the lasting live region (the button's own "Copied" is not read out everywhere).
            await keys.press("Enter")
            await assert_lasting_live_region(series_status, "Link copied.")
            assert await page.evaluate("navigator.clipboard.readText()") == kim_url
            await expect(kim.get_by_test_id("copy")).to_be_focused()
            names = [
                h["name"] for h in api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"]
            ]
            assert names == [first_link["name"], "Kim"]

            # Rename the first link: select its name, type, Tab to "Save name", Space.
            ana = roster.locator(f'[data-link-id="{first_link["id"]}"]')
            await tab_to(page, ana.get_by_test_id("host-name"), backwards=True)
            await keys.press("Control+A")
            await keys.type("Ana (Thursdays)")
            await tab_to(page, ana.get_by_test_id("host-rename"))
            await keys.press("Space")
            await expect(ana.get_by_test_id("host-name")).to_be_focused()
            await expect(ana.get_by_test_id("host-name")).to_have_value("Ana (Thursdays)")
            await assert_lasting_live_region(series_status, "Renamed to “Ana (Thursdays)”.")
            stored = api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"]
            assert [h["name"] for h in stored] == ["Ana (Thursdays)", "Kim"]

            # Rotate: Enter on "New link" (confirmed); the focus goes to the new link's copy button.
            await tab_to(page, ana.get_by_test_id("host-rotate"))
            await keys.press("Enter")
            await expect(ana.get_by_test_id("copy")).to_be_focused()
            await assert_lasting_live_region(series_status, "the old one no longer works")
            new_token = link_token(await ana.get_by_test_id("host-url").inner_text())
            assert new_token not in (old_token, kim_token)
            stored = api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"]
            assert [(h["id"], h["name"]) for h in stored] == [
                (first_link["id"], "Ana (Thursdays)"),
                (stored[1]["id"], "Kim"),
            ]

            # Revoke Ana (not the last): the focus goes to the next link, Kim's name.
            await tab_to(page, ana.get_by_test_id("host-revoke"))
            await keys.press("Enter")
            await expect(kim.get_by_test_id("host-name")).to_be_focused()
            await assert_lasting_live_region(
                series_status, "Revoked the host link of “Ana (Thursdays)”."
            )
            stored = api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"]
            assert [h["name"] for h in stored] == ["Kim"]

            # Revoke the last one: the roster's heading takes the focus.
            await tab_to(page, kim.get_by_test_id("host-revoke"))
            await keys.press("Space")
            await expect(roster.get_by_test_id("roster-title")).to_be_focused()
            await assert_lasting_live_region(series_status, "Revoked the host link of “Kim”.")
            await focus_is_not_lost(page)
            assert api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"] == []

            # --- edit the series, then "Stop editing": the focus goes back to its Edit button.
            edit = entry.get_by_test_id("edit")
            await tab_to(page, edit)
            await keys.press("Enter")
            await expect(page.locator("#title")).to_be_focused()
            await expect(page.locator("#title")).to_have_value(title)
            await tab_to(page, page.locator("#cancel-edit"))
            await keys.press("Enter")
            await expect(edit).to_be_focused()
            await expect(page.locator("#form-title")).to_have_text("New series")
            await expect(page.locator("#cancel-edit")).to_be_hidden()
            await focus_is_not_lost(page)
            await page.screenshot(path=str(artifacts_dir / "admin-keyboard.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
