"""The host panel in Chromium: lobby admit, next speaker and remove, enforced by the server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.browser.test_two_people_hear_each_other import chromium, join, open_page, row
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser


def mark(page: Page, name: str) -> object:
    return row(page, name).get_by_test_id("person-mark")


async def test_host_panel_admits_from_the_lobby_gives_the_floor_and_removes(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    circle = hearth_server.create_circle("Host panel circle")
    host_url = urljoin(hearth_server.base_url, circle["host_url"])
    join_url = urljoin(hearth_server.base_url, circle["join_url"])
    errors: list[str] = []

    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        # Each page has a browser context of its own: its own storage, so its own device key.
        host = await open_page(browser, host_url, 1024, errors)
        await join(host, "Ana", muted=True)
        await expect(host.get_by_test_id("host-panel")).to_be_visible(timeout=10_000)
        await host.get_by_test_id("lobby-toggle").click()
        await expect(host.get_by_test_id("lobby-toggle")).to_have_text("Turn lobby off")

        sam = await open_page(browser, join_url, 400, errors)
        await join(sam, "Sam", muted=True)
        await expect(sam.get_by_test_id("lobby-position")).to_have_text(
            "You are number 1 of 1 waiting.", timeout=10_000
        )
        kim = await open_page(browser, join_url, 400, errors)
        await join(kim, "Kim", muted=True)
        await expect(kim.get_by_test_id("lobby-position")).to_have_text(
            "You are number 2 of 2 waiting.", timeout=10_000
        )
        await expect(sam.get_by_test_id("participant")).to_have_count(0)

        waiting = host.get_by_test_id("waiting-person")
        await expect(waiting).to_have_count(2)
        await waiting.filter(has_text="Sam").get_by_test_id("admit").click()
        await expect(row(sam, "Sam")).to_contain_text("(you)", timeout=10_000)
        await expect(kim.get_by_test_id("lobby-position")).to_have_text(
            "You are number 1 of 1 waiting."
        )
        await host.get_by_test_id("waiting-person").get_by_test_id("admit").click()
        for page in (host, sam, kim):
            await expect(page.get_by_test_id("participant")).to_have_count(3, timeout=10_000)

        # Hand-raise: hands in order, "next" gives the floor to the first.
        await host.get_by_test_id("mode").click()
        await expect(host.get_by_test_id("mode")).to_have_text("Switch to open floor")
        await sam.get_by_test_id("raise-hand").click()
        await expect(sam.get_by_test_id("lower-hand")).to_be_visible()
        await kim.get_by_test_id("raise-hand").click()
        await expect(host.get_by_test_id("queued")).to_have_text(["Sam", "Kim"])
        await host.get_by_test_id("next").click()
        await expect(mark(host, "Sam")).to_have_text("has the floor")
        await expect(sam.get_by_test_id("end-my-turn")).to_be_visible()
        await expect(host.get_by_test_id("queued")).to_have_text(["Kim"])
        await host.get_by_test_id("next").click()
        await expect(mark(kim, "Kim")).to_have_text("has the floor")
        await expect(mark(kim, "Sam")).to_have_text("")
        # A participant's page shows no host tools.
        await expect(kim.get_by_test_id("host-panel")).to_be_hidden()
        await expect(kim.locator('[data-testid="remove"]:visible')).to_have_count(0)

        # Remove: one click; Sam's page says so and does not reconnect.
        await row(host, "Sam").get_by_test_id("remove").click()
        await expect(sam.get_by_test_id("final")).to_contain_text("removed", timeout=10_000)
        for page in (host, kim):
            await expect(page.get_by_test_id("participant")).to_have_count(2)
        await expect(host.get_by_test_id("bans")).to_contain_text("Sam")
        await host.screenshot(path=str(artifacts_dir / "host-panel.png"), full_page=True)

        # Back from the same browser under another name: refused.
        again = await sam.context.new_page()
        await again.goto(join_url)
        await join(again, "Someone New", muted=True)
        await expect(again.locator("#join-status")).to_have_text(
            "You cannot enter this circle.", timeout=10_000
        )
        await expect(host.get_by_test_id("participant")).to_have_count(2)

    assert errors == []


async def test_someone_turned_away_from_the_lobby_may_ask_again_but_a_removed_person_may_not(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    circle = hearth_server.create_circle("Lobby circle")
    host_url = urljoin(hearth_server.base_url, circle["host_url"])
    join_url = urljoin(hearth_server.base_url, circle["join_url"])
    errors: list[str] = []

    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        host = await open_page(browser, host_url, 1024, errors)
        await join(host, "Ana", muted=True)
        await host.get_by_test_id("lobby-toggle").click()
        await expect(host.get_by_test_id("lobby-toggle")).to_have_text("Turn lobby off")

        lee = await open_page(browser, join_url, 400, errors)
        await join(lee, "Lee", muted=True)
        await expect(lee.get_by_test_id("lobby-position")).to_be_visible(timeout=10_000)
        await host.get_by_test_id("waiting-person").get_by_test_id("deny").click()
        await expect(lee.get_by_test_id("final")).to_contain_text("did not let you in")
        await expect(lee.get_by_test_id("ask-again")).to_be_visible()

        # Asking again puts Lee back in the lobby, where the host sees the knock.
        await lee.get_by_test_id("ask-again").click()
        await join(lee, "Lee", muted=True)
        await expect(lee.get_by_test_id("lobby-position")).to_have_text(
            "You are number 1 of 1 waiting.", timeout=10_000
        )
        await expect(host.get_by_test_id("waiting-person")).to_have_count(1)
        await host.get_by_test_id("waiting-person").get_by_test_id("admit").click()
        await expect(row(lee, "Lee")).to_contain_text("(you)", timeout=10_000)

        # A removal is final: no "ask again".
        await row(host, "Lee").get_by_test_id("remove").click()
        await expect(lee.get_by_test_id("final")).to_contain_text("removed", timeout=10_000)
        await expect(lee.get_by_test_id("ask-again")).to_be_hidden()

    assert errors == []


async def test_the_join_page_asks_for_a_passcode_only_when_the_circle_has_one(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    guarded = hearth_server.create_circle("Guarded circle")
    path = f"/api/v1/circles/{guarded['id']}/moderation"
    _, settings = hearth_server.api("GET", path)
    assert hearth_server.api("PUT", path, {**settings, "passcode": "olive"})[0] == 200
    plain = hearth_server.create_circle("Plain circle")
    errors: list[str] = []

    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        for circle in (guarded, plain):
            host = await open_page(
                browser, urljoin(hearth_server.base_url, circle["host_url"]), 1024, errors
            )
            await join(host, "Ana", muted=True)
            await expect(host.get_by_test_id("host-panel")).to_be_visible(timeout=10_000)

        plain_page = await open_page(
            browser, urljoin(hearth_server.base_url, plain["join_url"]), 400, errors
        )
        await expect(plain_page.get_by_text("Join Plain circle")).to_be_visible(timeout=10_000)
        await expect(plain_page.get_by_test_id("passcode")).to_be_hidden()

        sam = await open_page(
            browser, urljoin(hearth_server.base_url, guarded["join_url"]), 400, errors
        )
        await expect(sam.get_by_test_id("passcode")).to_be_visible(timeout=10_000)
        # Without it the server refuses; with it Sam is in.
        await join(sam, "Sam", muted=True)
        await expect(sam.locator("#join-status")).to_have_text("This circle needs its passcode.")
        await sam.get_by_test_id("passcode").fill("olive")
        await sam.get_by_test_id("join").click()
        await expect(row(sam, "Sam")).to_contain_text("(you)", timeout=10_000)

    assert errors == []


async def test_ending_the_circle_tells_everyone_honestly_and_nobody_knocks_again(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    circle = hearth_server.create_circle("Ending circle")
    errors: list[str] = []
    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        host = await open_page(
            browser, urljoin(hearth_server.base_url, circle["host_url"]), 1024, errors
        )
        await join(host, "Ana", muted=True)
        sam = await open_page(
            browser, urljoin(hearth_server.base_url, circle["join_url"]), 400, errors
        )
        await join(sam, "Sam", muted=True)
        await expect(sam.get_by_test_id("participant")).to_have_count(2, timeout=10_000)

        # One slip of the mouse must not end a circle: the first click only asks.
        await host.get_by_test_id("end").click()
        await expect(sam.get_by_test_id("participant")).to_have_count(2)
        await host.get_by_test_id("end-confirm").click()
        for page in (host, sam):
            await expect(page.get_by_test_id("final")).to_contain_text(
                "The circle has ended", timeout=10_000
            )
        await expect(sam.get_by_test_id("connection-state")).to_have_attribute("data-state", "left")
        # The link now opens a closed circle: a new visitor is told so.
        late = await open_page(
            browser, urljoin(hearth_server.base_url, circle["join_url"]), 400, errors
        )
        await join(late, "Lee", muted=True)
        await expect(late.get_by_text("This circle is not open right now")).to_be_visible(
            timeout=10_000
        )
    assert errors == []


async def test_a_name_that_looks_like_the_hosts_is_refused_at_the_door(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    circle = hearth_server.create_circle("Lookalike circle")
    errors: list[str] = []
    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        host = await open_page(
            browser, urljoin(hearth_server.base_url, circle["host_url"]), 1024, errors
        )
        await join(host, "Ana", muted=True)
        await expect(host.get_by_test_id("host-panel")).to_be_visible(timeout=10_000)
        guest = await open_page(
            browser, urljoin(hearth_server.base_url, circle["join_url"]), 400, errors
        )
        await join(guest, "\u0410na", muted=True)  # a Cyrillic A
        await expect(guest.get_by_text("looks like a host's name")).to_be_visible(timeout=10_000)
        # Still at the door, with a name to change; another name gets in.
        await join(guest, "Sam", muted=True)
        await expect(row(guest, "Sam")).to_contain_text("(you)", timeout=10_000)
        await expect(row(host, "Sam")).to_be_visible(timeout=10_000)
    assert errors == []
