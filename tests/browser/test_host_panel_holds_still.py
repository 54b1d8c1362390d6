"""The host's panel under pressure, in Chromium at laptop size and at phone size (390x844, touch).

- Flood and click, the way it failed (issue 14): a scripted client raises and lowers its hand
  about 20 times a second and renames itself every 0.25 s while the host aims at its Remove and
  clicks 250 ms later, twenty times at each size. Every click must remove the disruptor or do
  nothing; never another action, never another person. The counts go to
  test-artifacts/flood-and-click.json.
- What needs the host (five people knocking, a support signal, hands) is on the first screen of
  a phone, with the way to act on it; host buttons are at least 44 px tall on touch; a filter
  finds a person among 30; a skip link takes the keyboard to the host tools (the Tab count goes
  to test-artifacts/host-tab-count.json); making a co-host asks first.
- What screen readers are told, collected from the live regions over a scripted scenario with
  a MutationObserver: each moment once, in the second person to the speaker, with reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.browser.test_client_page import axe_violations
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CLICKS_PER_SIZE = 20

# Everything the live regions say, as it is said (a region's text each time it changes).
LISTEN_JS = """
(() => {
    window.__spoken = [];
    document.addEventListener('DOMContentLoaded', () => {
        const regions = document.querySelectorAll('[aria-live], [role="status"], [role="alert"]');
        for (const node of regions) {
            const name = node.id || node.dataset.testid || node.className;
            new MutationObserver(() => {
                const text = node.textContent.trim();
                if (text && !node.closest('[hidden]')) window.__spoken.push({ region: name, text });
            }).observe(node, { childList: true, characterData: true, subtree: true });
        }
    });
})();
"""


@pytest.fixture(scope="module")
def loose_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose message and rename limits let a flood through, as a slower or busier
    deployment might: the page must hold still whatever the server lets reach it."""
    data_dir = Path(tmp_path_factory.mktemp("hearth-host-panel"))
    process = ServerProcess(
        data_dir=data_dir,
        extra_env={
            "HEARTH_MESSAGE_RATE": "200",
            "HEARTH_MESSAGE_BURST": "1000",
            "HEARTH_RENAME_BURST": "100000",
            "HEARTH_FLOOD_CLOSE_AFTER": "100000",
        },
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def renaming_circle(server: ServerProcess, title: str) -> dict[str, Any]:
    circle = server.create_circle(title)
    path = f"/api/v1/circles/{circle['id']}/moderation"
    _, settings = server.api("GET", path)
    assert server.api("PUT", path, {**settings, "allow_rename": True})[0] == 200
    return circle


@asynccontextmanager
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=chromium_args(None), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


class HostPage:
    """The host's page, with every message it sends to the server (through Playwright's
    WebSocket route) and the page errors."""

    def __init__(self, page: Page, context: BrowserContext) -> None:
        self.page = page
        self.context = context
        self.sent: list[dict[str, Any]] = []
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))


async def open_page(
    browser: Browser, url: str, viewport: dict[str, int], *, phone: bool, clock: bool = False
) -> HostPage:
    if phone:
        context = await browser.new_context(viewport=viewport, has_touch=True, is_mobile=True)
    else:
        context = await browser.new_context(viewport=viewport)
    await context.add_init_script(LISTEN_JS)
    if clock:
        await context.clock.install()
    page = await context.new_page()
    host = HostPage(page, context)

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def outgoing(message: str | bytes) -> None:
            if isinstance(message, str):
                host.sent.append(json.loads(message))
            server.send(message)

        ws.on_message(outgoing)

    await context.route_web_socket("**/ws", route)
    await page.goto(url)
    return host


async def join(page: Page, name: str) -> None:
    await page.get_by_test_id("display-name").fill(name)
    await page.get_by_test_id("join").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "connected", timeout=15_000
    )


async def spoken(page: Page) -> list[str]:
    said: list[dict[str, str]] = await page.evaluate("window.__spoken")
    return [entry["text"] for entry in said]


def times_said(lines: list[str], sentence: str) -> int:
    return sum(line.count(sentence) for line in lines)


async def person(server: ServerProcess, token: str, name: str) -> ScriptedParticipant:
    p = ScriptedParticipant(server.ws_url, token, name, None)
    await p.connect()
    await p.join(muted=True)
    return p


async def leave(p: ScriptedParticipant) -> None:
    with contextlib.suppress(Exception):
        if p.closed_code is None:
            await p.send({"type": "leave"})
    await p.close()


def row(page: Page, participant_id: str) -> Any:
    return page.locator(f'[data-testid="participant"][data-id="{participant_id}"]')


# Names of every length, one of them a bystander's: the label, the row and its marks change.
DISRUPTIVE_NAMES = [
    "X",
    "Somebody with a very long name indeed",
    "Bea",
    "Zz",
    "Another quite long name for the row",
    "Dee",
]


async def flood(disruptor: ScriptedParticipant, stop: asyncio.Event) -> int:
    """Hand up and down about 20 times a second, a new name every 0.25 s. Returns how many
    messages it sent."""
    sent = 0
    raised = False
    next_rename = time.monotonic()
    names = 0
    while not stop.is_set() and disruptor.closed_code is None:
        raised = not raised
        try:
            await disruptor.send({"type": "raise_hand" if raised else "lower_hand"})
            sent += 1
            if time.monotonic() >= next_rename:
                name = DISRUPTIVE_NAMES[names % len(DISRUPTIVE_NAMES)]
                await disruptor.send({"type": "rename", "display_name": name})
                names += 1
                sent += 1
                next_rename += 0.25
        except Exception:
            break
        await asyncio.sleep(0.05)
    return sent


async def flood_and_click(
    server: ServerProcess, browser: Browser, size: str
) -> dict[str, Any]:
    circle = renaming_circle(server, f"Flood circle {size}")
    token = link_token(circle["join_url"])
    phone = size == "phone"
    host = await open_page(
        browser,
        urljoin(server.base_url, circle["host_url"]),
        PHONE if phone else LAPTOP,
        phone=phone,
    )
    page = host.page
    await join(page, "Ana")
    # Others before and after the disruptor, so a slip lands on somebody.
    before = [await person(server, token, name) for name in ("Bea", "Cal", "Dan")]
    outcome: dict[str, Any] = {"removed": 0, "no_op": 0, "wrong": 0, "wrong_actions": []}
    flood_messages = 0
    try:
        for trial in range(CLICKS_PER_SIZE):
            disruptor = await person(server, token, f"Dee {trial}")
            after = await person(server, token, f"Eve {trial}")
            assert disruptor.me is not None and after.me is not None
            target = disruptor.me["id"]
            await expect(row(page, after.me["id"])).to_have_count(1, timeout=10_000)
            stop = asyncio.Event()
            flooding = asyncio.get_running_loop().create_task(flood(disruptor, stop))
            # The flood reaches the page before the host aims.
            await asyncio.sleep(0.8)
            remove = row(page, target).get_by_test_id("remove")
            await remove.scroll_into_view_if_needed()
            await asyncio.sleep(0.2)
            box = await remove.bounding_box()
            assert box is not None, "the disruptor's Remove is not on screen"
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            mark = len(host.sent)
            # Human speed: the click comes 250 ms after the aim.
            await asyncio.sleep(0.25)
            if phone:
                await page.touchscreen.tap(x, y)
            else:
                await page.mouse.click(x, y)
            await asyncio.sleep(1.0)
            stop.set()
            flood_messages += await flooding
            actions = host.sent[mark:]
            removes = [
                a for a in actions if a.get("type") == "remove" and a.get("participant_id") == target
            ]
            others = [a for a in actions if a not in removes]
            # Actions that only open a question count as a slip too.
            asked = await page.evaluate(
                """() => Boolean(document.querySelector('dialog[open]'))
                    || !document.querySelector('[data-testid="end-confirm"]').hidden"""
            )
            if others or asked:
                outcome["wrong"] += 1
                outcome["wrong_actions"].append(others or ["a confirmation opened"])
            elif removes:
                with contextlib.suppress(TimeoutError):
                    await disruptor.wait_until(lambda d=disruptor: d.closed_code is not None, 10)
                told = [m.get("code") for m in disruptor.messages if m["type"] == "error"]
                assert "removed" in told, told
                outcome["removed"] += 1
            else:
                outcome["no_op"] += 1
            await leave(disruptor)
            await leave(after)
            await expect(page.get_by_test_id("participant")).to_have_count(4, timeout=10_000)
        # Nobody else was touched: still there, still muted, no role given.
        for p in before:
            assert p.closed_code is None
            mine = p.participants[p.me["id"]] if p.me else None
            assert mine is not None and mine["muted"] and mine["role"] == "participant", mine
    finally:
        for p in before:
            await leave(p)
        await host.context.close()
    outcome["flood_messages"] = flood_messages
    assert host.errors == [], host.errors
    return outcome


async def test_flood_and_click_every_click_removes_the_disruptor_or_does_nothing(
    loose_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    results: dict[str, Any] = {}
    async with chromium(chromium_path) as browser:
        for size in ("laptop", "phone"):
            results[size] = await flood_and_click(loose_server, browser, size)
    (artifacts_dir / "flood-and-click.json").write_text(json.dumps(results, indent=2))
    print("flood-and-click:", json.dumps(results))
    for size, outcome in results.items():
        assert outcome["wrong"] == 0, (size, outcome)
        assert outcome["removed"] + outcome["no_op"] == CLICKS_PER_SIZE, (size, outcome)
        # A page that moved everything out of reach would pass the line above with no-ops.
        assert outcome["removed"] >= CLICKS_PER_SIZE * 0.9, (size, outcome)
