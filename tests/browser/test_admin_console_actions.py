"""An admin does the console's everyday jobs in Chromium, keyboard first: cancel, restore and
move one meeting, a series' moderation settings, the host-link roster, attendance counts and
the audit log of a meeting where a host removed someone. Bad input is refused with the
server's words and changes nothing; axe finds nothing serious in light or dark.

The meeting with attendance is real: a host and a participant join over the real signaling
(tests/support/peer.py) and the host removes the participant.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.browser.test_client_page import assert_accessible
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

pytestmark = pytest.mark.browser

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def api(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    status, answer = server.api(method, path, body)
    assert status < 300, (status, answer)
    return answer


async def show_week_of(page: Page, occurrence_id: str) -> Any:
    """Step the week view forward until it shows the occurrence (at most a few weeks)."""
    item = page.locator(f'[data-occurrence-id="{occurrence_id}"]')
    label = page.locator("#week-label")
    for _ in range(3):
        if await item.count():
            break
        before = await label.inner_text()
        await page.get_by_role("button", name="Next week").click()
        await expect(label).not_to_have_text(before)
    await expect(item).to_be_visible()
    return item


async def sign_in(page: Page, server: ServerProcess) -> None:
    await page.goto(f"{server.base_url}/admin")
    await page.get_by_test_id("admin-token").fill(server.admin_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("week")).to_be_visible()


async def test_cancel_restore_and_move_one_meeting_by_keyboard_and_refuse_the_past(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    title = f"Weekly circle {secrets.token_hex(3)}"
    start = (datetime.now(BERLIN) + timedelta(days=2)).replace(
        hour=19, minute=0, second=0, microsecond=0
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
            "rrule": f"FREQ=WEEKLY;BYDAY={WEEKDAYS[start.weekday()]}",
        },
    )
    listed = api(hearth_server, "GET", f"/api/v1/series/{series['id']}/occurrences")
    first = listed["occurrences"][0]
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(), headless=True
        )
        try:
            context = await browser.new_context(locale="en-GB", timezone_id="Europe/Berlin")
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            await sign_in(page, hearth_server)
            item = await show_week_of(page, first["id"])

            # Keyboard only: the Manage button, Enter, and the panel takes the focus.
            await item.get_by_role("button", name="Manage").focus()
            await page.keyboard.press("Enter")
            panel = page.get_by_test_id("occurrence")
            await expect(panel).to_be_visible()
            await expect(page.locator("#occurrence-title")).to_be_focused()
            await expect(page.get_by_test_id("attendance")).to_have_text(
                "Attendance: 0 people attended."
            )
            await expect(page.get_by_test_id("audit")).to_be_hidden()
            await expect(panel).to_contain_text("No moderation actions recorded.")
            await page.keyboard.press("Tab")
            await expect(page.get_by_test_id("occurrence-cancel")).to_be_focused()
            await expect(page.get_by_test_id("occurrence-cancel")).to_have_text(
                "Cancel this meeting"
            )
            await page.keyboard.press("Enter")
            await expect(panel.get_by_role("status")).to_have_text("Cancelled.")
            await expect(item).to_contain_text("(cancelled)")
            assert api(hearth_server, "GET", f"/api/v1/series/{series['id']}/occurrences")[
                "occurrences"
            ][0]["status"] == ("cancelled")
            await assert_accessible(page, artifacts_dir, "admin-occurrence-light")

            await page.get_by_role("button", name="Restore this meeting").click()
            await expect(panel.get_by_role("status")).to_have_text("Restored.")
            await expect(item).not_to_contain_text("(cancelled)")

            # The past is refused in the server's words; nothing changes.
            yesterday = datetime.now(BERLIN).date() - timedelta(days=1)
            await page.get_by_test_id("move-date").fill(yesterday.isoformat())
            await page.get_by_test_id("move-time").fill("10:00")
            await page.get_by_test_id("move").click()
            await expect(page.get_by_test_id("occurrence-error")).to_contain_text(
                "only to the future"
            )
            # No time at all: said on the page, nothing sent.
            await page.get_by_test_id("move-time").fill("")
            await page.get_by_test_id("move").click()
            await expect(page.get_by_test_id("occurrence-error")).to_have_text(
                "Choose a date and a time to move the meeting to."
            )
            unchanged = api(hearth_server, "GET", f"/api/v1/series/{series['id']}/occurrences")
            assert unchanged["occurrences"][0]["starts_at"] == first["starts_at"]

            # Moved by an hour and a half, in the series' own zone.
            await page.get_by_test_id("move-date").fill(start.date().isoformat())
            await page.get_by_test_id("move-time").fill("20:30")
            await page.get_by_test_id("move").click()
            await expect(panel.get_by_role("status")).to_have_text("Moved.")
            await expect(page.get_by_test_id("occurrence-error")).to_be_hidden()
            await expect(page.locator("#occurrence-when")).to_contain_text("Moved from")
            await expect(page.get_by_test_id("week")).to_contain_text(f"20:30 {title} (moved)")
            await page.emulate_media(color_scheme="dark")
            await assert_accessible(page, artifacts_dir, "admin-occurrence-dark")
            await page.screenshot(path=str(artifacts_dir / "admin-occurrence.png"), full_page=True)
        finally:
            await browser.close()
    assert errors == []
    body = api(hearth_server, "GET", f"/api/v1/series/{series['id']}/occurrences")
    moved = body["occurrences"][0]
    assert moved["id"] == first["id"] and moved["moved"] is True
    assert datetime.fromisoformat(moved["starts_at"]) == start.replace(hour=20, minute=30)


async def test_moderation_settings_and_the_host_roster(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    title = f"Roster circle {secrets.token_hex(3)}"
    start = (datetime.now(BERLIN) + timedelta(days=3)).replace(
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
    old_host_token = link_token(series["host_links"][0]["url"])
    errors: list[str] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(), headless=True
        )
        try:
            context = await browser.new_context(locale="en-GB", timezone_id="Europe/Berlin")
            page = await context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await sign_in(page, hearth_server)
            entry = page.get_by_test_id("series-list").locator(f'li[data-series-id="{sid}"]')

            # --- moderation settings
            await entry.get_by_test_id("moderation-settings").click()
            form = page.get_by_test_id("moderation")
            await expect(page.locator("#moderation-title")).to_be_focused()
            await expect(page.get_by_test_id("passcode-state")).to_have_text("No passcode.")
            await page.get_by_test_id("speaking-mode").select_option("hand_raise")
            await page.get_by_test_id("lobby").check()
            await page.get_by_test_id("no-host-policy").select_option("hold")
            await page.get_by_test_id("share-seconds").fill("5")
            await page.get_by_test_id("moderation-save").click()
            await expect(page.get_by_test_id("moderation-error")).to_contain_text("share_seconds")
            # Refused whole: nothing of it was stored.
            assert api(hearth_server, "GET", f"/api/v1/series/{sid}/moderation")[
                "speaking_mode"
            ] == ("open")

            await page.get_by_test_id("share-seconds").fill("180")
            await page.get_by_test_id("passcode").fill("river stone")
            crisis = page.get_by_test_id("crisis-text")
            has_crisis = await crisis.is_visible()
            if has_crisis:
                await crisis.fill("In crisis? Call 112 or your local helpline.")
            await page.get_by_test_id("moderation-save").click()
            await expect(page.get_by_test_id("moderation-status")).to_contain_text("Saved.")
            await expect(page.get_by_test_id("moderation-error")).to_be_hidden()
            await expect(page.get_by_test_id("passcode-state")).to_have_text("A passcode is set.")
            await expect(page.get_by_test_id("passcode")).to_have_value("")
            await assert_accessible(page, artifacts_dir, "admin-moderation-light")
            settings = api(hearth_server, "GET", f"/api/v1/series/{sid}/moderation")
            assert settings["speaking_mode"] == "hand_raise"
            assert settings["lobby"] is True
            assert settings["no_host_policy"] == "hold"
            assert settings["share_seconds"] == 180
            assert settings["passcode_set"] is True
            if has_crisis:
                assert settings["crisis_text"] == "In crisis? Call 112 or your local helpline."

            # Reopened: the form shows what is stored; the passcode is removed on request.
            await page.locator("#moderation-close").click()
            await expect(form).to_be_hidden()
            await entry.get_by_test_id("moderation-settings").click()
            await expect(page.get_by_test_id("share-seconds")).to_have_value("180")
            await expect(page.get_by_test_id("lobby")).to_be_checked()
            await page.get_by_test_id("passcode-remove").check()
            await page.get_by_test_id("moderation-save").click()
            await expect(page.get_by_test_id("passcode-state")).to_have_text("No passcode.")
            assert (
                api(hearth_server, "GET", f"/api/v1/series/{sid}/moderation")["passcode_set"]
                is False
            )

            # --- the host roster: add (link shown once), rename, rotate, revoke
            roster = entry.get_by_test_id("roster")
            await roster.get_by_test_id("new-host-name").fill("Kim")
            await roster.get_by_test_id("host-add").click()
            kim = roster.locator('[data-host-name="Kim"]')
            await expect(kim.get_by_test_id("host-url")).to_contain_text(
                f"{hearth_server.base_url}/c/"
            )
            kim_token = link_token(await kim.get_by_test_id("host-url").inner_text())
            # The list is drawn again after each change and the focus then moves to where the
            # admin goes next (here: Copy); only then is the change finished. Acting before it
            # raced the redraw's focus move (the next click could land elsewhere).
            await expect(kim.get_by_test_id("copy")).to_be_focused()

            first = roster.get_by_test_id("host-link").first
            await first.get_by_test_id("host-name").fill("")
            await first.get_by_test_id("host-rename").click()
            await expect(roster.get_by_test_id("roster-error")).to_contain_text("'name'")
            await first.get_by_test_id("host-name").fill("Ana (Thursdays)")
            await first.get_by_test_id("host-rename").click()
            await expect(roster.get_by_test_id("host-name").first).to_have_value("Ana (Thursdays)")
            await expect(roster.get_by_test_id("host-name").first).to_be_focused()

            ana = roster.get_by_test_id("host-link").first
            await expect(ana.get_by_test_id("host-url")).to_have_count(0)
            await ana.get_by_test_id("host-rotate").click()
            await expect(ana.get_by_test_id("host-url")).to_be_visible()
            ana_token = link_token(await ana.get_by_test_id("host-url").inner_text())
            await expect(ana.get_by_test_id("copy")).to_be_focused()
            assert ana_token != old_host_token

            kim = roster.locator('[data-host-name="Kim"]')
            await kim.get_by_test_id("host-revoke").click()
            await expect(roster.get_by_test_id("host-link")).to_have_count(1)
            await page.emulate_media(color_scheme="dark")
            await assert_accessible(page, artifacts_dir, "admin-roster-dark")
            await page.screenshot(path=str(artifacts_dir / "admin-roster.png"), full_page=True)

            # A reload forgets the shown links: they were never stored in the clear.
            await page.reload()
            await expect(page.get_by_test_id("week")).to_be_visible()
            await expect(entry.get_by_test_id("host-url")).to_have_count(0)
        finally:
            await browser.close()
    assert errors == []
    roster_now = api(hearth_server, "GET", f"/api/v1/series/{sid}")["host_links"]
    assert [(h["name"], h["url"]) for h in roster_now] == [("Ana (Thursdays)", None)]
    # Which links still open a meeting is tested in tests/unit/test_series_api.py (this
    # series meets in three days, so every link would be "not open" now).
    assert old_host_token != ana_token != kim_token


async def test_attendance_counts_and_the_audit_log_of_a_meeting(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    title = f"Live circle {secrets.token_hex(3)}"
    circle = hearth_server.create_circle(title=title)
    ana = ScriptedParticipant(hearth_server.ws_url, link_token(circle["host_url"]), "Ana", None)
    sam = ScriptedParticipant(hearth_server.ws_url, link_token(circle["join_url"]), "Sam", None)
    try:
        for person in (ana, sam):
            await person.connect()
            await person.join(muted=True)
        await ana.wait_until(lambda: len(ana.participants) == 2)
        await ana.send({"type": "remove", "participant_id": sam.me["id"]})  # type: ignore[index]
        await ana.wait_until(lambda: len(ana.participants) == 1)

        # Attendance is written with the circle's state, a moment later.
        now = datetime.now(UTC)
        listed: dict[str, Any] = {}
        query = urlencode(
            {
                "from": (now - timedelta(hours=2)).isoformat(),
                "to": (now + timedelta(hours=2)).isoformat(),
            }
        )
        for _ in range(50):
            everything = api(hearth_server, "GET", f"/api/v1/occurrences?{query}")
            listed = next(o for o in everything["occurrences"] if o["id"] == circle["id"])
            if listed["attended"] == 2:
                break
            await asyncio.sleep(0.2)
        assert (listed["present"], listed["attended"]) == (1, 2), listed

        errors: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(chromium_path), args=chromium_args(), headless=True
            )
            try:
                context = await browser.new_context(locale="en-GB", timezone_id="UTC")
                page = await context.new_page()
                page.on("pageerror", lambda error: errors.append(str(error)))
                await sign_in(page, hearth_server)
                item = await show_week_of(page, circle["id"])
                await expect(item).to_contain_text("1 in it")
                await item.get_by_role("button", name="Manage").click()
                await expect(page.get_by_test_id("attendance")).to_have_text(
                    "Attendance: 1 in it now, 2 people attended."
                )
                # Names only when the series opted in (it did not).
                await expect(page.get_by_test_id("attendees").locator("li")).to_have_count(0)
                rows = page.get_by_test_id("audit").locator("tbody tr")
                await expect(rows).to_have_count(1)
                cells = await rows.first.locator("td").all_inner_texts()
                assert cells[1:4] == ["remove", "Ana (host)", "Sam"], cells
                # A meeting under way cannot be cancelled: the server says so, nothing changes.
                await page.get_by_test_id("occurrence-cancel").click()
                await expect(page.get_by_test_id("occurrence-error")).to_contain_text("not begun")
                await assert_accessible(page, artifacts_dir, "admin-audit-light")
                await page.emulate_media(color_scheme="dark")
                await assert_accessible(page, artifacts_dir, "admin-audit-dark")
            finally:
                await browser.close()
        assert errors == []
    finally:
        await ana.close()
        await sam.close()
