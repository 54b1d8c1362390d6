"""The circle page as a person meets it: the microphone check before joining, listening when the
microphone is refused, a dropped connection that mends itself, the keyboard alone, and an
accessibility scan (axe-core, injected from tests/browser/node_modules) of both views.

One Chromium per test with several contexts (people) in it, to keep the CPU use modest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"

# Runs axe for WCAG 2.x A/AA (2.2 included) and best practices; returns the violations.
AXE_RUN_JS = """
async () => {
    const result = await axe.run(document, {
        runOnly: {
            type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'],
        },
    });
    return {
        passes: result.passes.length,
        violations: result.violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
        })),
    };
}
"""


@asynccontextmanager
async def browser_for(
    chromium_path: Path, fake_audio: Path | None, *, deny_microphone: bool = False
) -> AsyncIterator[Browser]:
    args = chromium_args(fake_audio)
    if deny_microphone:
        # No automatic "allow": the permission prompt is answered "deny", as a person might.
        args = [a for a in args if a != "--use-fake-ui-for-media-stream"]
        args.append("--deny-permission-prompts")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path), args=args, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


class Person:
    """One person's page, with what it printed as errors and every address it asked for."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))


async def open_person(browser: Browser, url: str, width: int = 360) -> Person:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    person = Person(await context.new_page())
    await person.page.goto(url)
    return person


async def join(page: Page, name: str, *, muted: bool = True) -> None:
    await page.get_by_test_id("display-name").fill(name)
    if not await page.get_by_test_id("join-muted").is_disabled():
        await page.get_by_test_id("join-muted").set_checked(muted)
    await page.get_by_test_id("join").click()
    await expect(page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "connected", timeout=10_000
    )


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="participant"][data-name="{name}"]')


SETTLE_TRANSITIONS_JS = """
async () => {
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    // Transitions only: the "Joining" spinner is an endless animation that never finishes.
    const transitions = document.getAnimations().filter((a) => a instanceof CSSTransition);
    await Promise.all(transitions.map((a) => a.finished.catch(() => undefined)));
}
"""


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    # Evaluated through the DevTools protocol: the page's own CSP (script-src 'self') would
    # rightly refuse an injected <script>, and the test must not loosen it.
    await page.evaluate(AXE.read_text() + "\n;undefined")
    # Colours ease over 0.15 s (style.css), so a scan just after a colour-scheme switch would
    # measure a button halfway between its light and dark colours. Let a frame start any
    # transition, then wait until every running one has finished.
    await page.evaluate(SETTLE_TRANSITIONS_JS)
    result = await page.evaluate(AXE_RUN_JS)
    # A scan that checked nothing would pass anything.
    assert result["passes"] >= 10, result
    violations: list[dict[str, Any]] = result["violations"]
    return violations


async def assert_accessible(page: Page, artifacts: Path, name: str) -> None:
    violations = await axe_violations(page)
    (artifacts / f"axe-{name}.json").write_text(json.dumps(violations, indent=2))
    grave = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert grave == [], grave


async def screenshots(page: Page, artifacts: Path, name: str) -> None:
    for width in (360, 1280):
        await page.set_viewport_size({"width": width, "height": 800})
        await page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        # Nothing sticks out sideways at either width.
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{name} at {width}px scrolls sideways by {overflow}px"


def only_this_server(person: Person, base_url: str) -> None:
    outside = [u for u in person.requests if not u.startswith((base_url, "data:", "blob:"))]
    assert outside == [], outside


async def open_circle(server: ServerProcess, browser: Browser, title: str) -> tuple[Person, str]:
    """A circle with its host (Ana) in it, and the participants' link."""
    circle = server.create_circle(title)
    host = await open_person(browser, urljoin(server.base_url, circle["host_url"]), 1280)
    await join(host.page, "Ana")
    return host, urljoin(server.base_url, circle["join_url"])


async def test_join_page_explains_the_circle_and_its_meter_follows_the_fake_tone(
    hearth_server: ServerProcess, chromium_path: Path, tones: dict[int, Path], artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, tones[500]) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Friday morning circle")
        guest = await open_person(browser, join_url)
        page = guest.page

        # The page's script has run and marked itself ready. How long that takes is printed for
        # the log, not asserted: a timed assertion fails on a loaded machine, not on a slow page.
        await expect(page.locator("body[data-ready=true]")).to_have_count(1)
        ready_ms = await page.evaluate("performance.getEntriesByName('hearth-ready')[0].startTime")
        print(f"join page usable after {ready_ms:.0f} ms")

        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Join Friday morning circle"
        )
        await expect(page.get_by_test_id("intro-hosts")).to_have_text("Hosted by Ana.")
        await expect(page.get_by_text("A first name or a nickname is enough.")).to_be_visible()
        await expect(page.get_by_test_id("join-muted")).to_be_checked()

        # With the permission already given (fake UI) the check starts by itself; otherwise
        # the person presses the button.
        if await page.get_by_test_id("mic-check").is_visible():
            await page.get_by_test_id("mic-check").click()
        await expect(page.get_by_test_id("mic-level")).to_be_visible()
        # The tone plays 1.2 s, then 0.3 s of silence: the bar must rise and fall with it.
        levels: list[float] = []
        for _ in range(30):
            levels.append(await page.get_by_test_id("mic-level").evaluate("m => m.value"))
            await asyncio.sleep(0.1)
        print("meter levels", levels)
        assert max(levels) >= 40, levels
        assert min(levels) <= max(levels) - 25, levels
        await expect(page.get_by_test_id("mic-heard")).to_have_text("Sound is coming in")

        await screenshots(page, artifacts_dir, "join-page")
        await assert_accessible(page, artifacts_dir, "join-page")
        # Dark, with reduced motion (no colour transitions, so nothing is measured mid-fade).
        await page.emulate_media(color_scheme="dark", reduced_motion="reduce")
        await assert_accessible(page, artifacts_dir, "join-page-dark")
        only_this_server(guest, hearth_server.base_url)
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


async def test_refused_microphone_says_what_to_do_and_still_lets_one_listen(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, None, deny_microphone=True) as browser:
        circle = hearth_server.create_circle("Circle for listening")
        # The host is refused too here: being refused the microphone must not stop a host.
        host = await open_person(browser, urljoin(hearth_server.base_url, circle["host_url"]))
        await host.page.get_by_test_id("mic-check").click()
        await expect(host.page.get_by_test_id("mic-help")).to_contain_text(
            "set Microphone to Allow, then press Try again"
        )
        await expect(host.page.get_by_test_id("mic-check")).to_have_text("Try again")
        await expect(host.page.get_by_test_id("join")).to_have_text("Join to listen")
        await screenshots(host.page, artifacts_dir, "join-page-microphone-refused")
        await join(host.page, "Ana")

        # Never asked before joining: the refusal comes with the join itself.
        guest = await open_person(browser, urljoin(hearth_server.base_url, circle["join_url"]))
        await join(guest.page, "Sam", muted=False)
        page = guest.page
        await expect(page.get_by_test_id("participant")).to_have_count(2)
        await expect(page.get_by_test_id("self-mute")).to_be_disabled()
        await expect(page.get_by_test_id("self-mute")).to_have_text("Listening only")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You are listening only. Nobody hears you."
        )
        await expect(page.get_by_text("allow the microphone for this site")).to_be_visible()
        # The server's word: a listener without a microphone is muted for everyone.
        await expect(row(host.page, "Sam")).to_have_attribute("data-muted", "true")
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=circle-audio]').srcObject !== null",
            timeout=10_000,
        )
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


class FlakyNetwork:
    """Carries one page's WebSocket through Playwright, so the test can cut it like a dead
    mobile network (both ends closed, new connections refused for a while) and inject what a
    newer server would say."""

    def __init__(self, *, hide_speaking: bool = False) -> None:
        self.down = False
        self.routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.connections = 0
        # Holds back the server's own `speaking` messages, so that only what the test says
        # about who is speaking reaches the page.
        self.hide_speaking = hide_speaking

    async def handle(self, ws: WebSocketRoute) -> None:
        if self.down:
            await ws.close(code=1011, reason="network down")
            return
        self.connections += 1
        server = ws.connect_to_server()
        if self.hide_speaking:

            def forward(message: str | bytes) -> None:
                if isinstance(message, str) and json.loads(message).get("type") == "speaking":
                    return
                ws.send(message)

            server.on_message(forward)
        self.routes.append((ws, server))

    async def cut(self) -> None:
        self.down = True
        for page_side, server_side in self.routes:
            # The server end first: once the page end is closed the route is torn down.
            await server_side.close()
            await page_side.close(code=1011, reason="network down")
        self.routes.clear()

    def restore(self) -> None:
        self.down = False

    def say(self, message: dict[str, Any]) -> None:
        """Sends to the page, as if the server had said it."""
        self.routes[-1][0].send(json.dumps(message))

    def ask(self, message: dict[str, Any]) -> None:
        """Sends to the server, as if the page had said it."""
        self.routes[-1][1].send(json.dumps(message))


async def test_dropped_connection_shows_the_banner_and_comes_back_to_the_same_place(
    hearth_server: ServerProcess, chromium_path: Path, tones: dict[int, Path], artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, tones[1300]) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Circle on a bad network")
        context = await browser.new_context(viewport={"width": 360, "height": 800})
        network = FlakyNetwork(hide_speaking=True)
        await context.route_web_socket("**/ws", network.handle)
        guest = Person(await context.new_page())
        page = guest.page
        await page.goto(join_url)
        await join(page, "Sam", muted=False)
        await expect(row(host.page, "Sam")).to_have_attribute("data-muted", "false")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You can be heard.", timeout=10_000
        )
        first_id = await row(page, "Sam").get_attribute("data-id")

        # Who is speaking comes from the server's `speaking` message (docs/protocol.md). A muted
        # person is never shown as speaking, whatever a message says.
        host_id = await row(page, "Ana").get_attribute("data-id")
        network.say({"type": "speaking", "speakers": [first_id, host_id], "levels": {}})
        await expect(row(page, "Sam").get_by_test_id("speaking")).to_be_visible()
        await expect(row(page, "Sam")).to_have_attribute("data-speaking", "true")
        await expect(row(page, "Ana")).to_have_attribute("data-speaking", "false")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You can be heard. You are speaking now."
        )
        # The next message replaces the list: an empty one unmarks everyone.
        network.say({"type": "speaking", "speakers": [], "levels": {}})
        await expect(row(page, "Sam")).to_have_attribute("data-speaking", "false")

        await network.cut()
        banner = page.get_by_test_id("reconnecting")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Your place in the circle is kept")
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "reconnecting"
        )
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "Nobody hears you until the connection is back."
        )
        # The others see the seat kept, marked as reconnecting, not a departure.
        await expect(row(host.page, "Sam")).to_have_attribute("data-connection", "reconnecting")
        await expect(row(host.page, "Sam").get_by_test_id("person-mark")).to_have_text(
            "reconnecting…"
        )
        await page.screenshot(path=str(artifacts_dir / "reconnecting-360.png"), full_page=True)
        await asyncio.sleep(1.5)
        network.restore()

        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=15_000
        )
        await expect(banner).to_be_hidden()
        # Back in the same place: one seat, same name; muted now (Sam was unmuted before the
        # drop): nobody goes on air again without pressing Unmute, and the page says so.
        for view in (page, host.page):
            await expect(view.get_by_test_id("participant")).to_have_count(2, timeout=10_000)
            await expect(row(view, "Sam")).to_have_count(1)
            await expect(row(view, "Sam")).to_have_attribute("data-muted", "true")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You are muted. Nobody hears you.", timeout=10_000
        )
        await expect(page.locator("#notice")).to_contain_text("You are back in the circle, muted")
        await expect(page.locator("#announcer-urgent")).to_contain_text("muted")
        await page.get_by_test_id("self-mute").click()
        await expect(row(host.page, "Sam")).to_have_attribute("data-muted", "false")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You can be heard.", timeout=10_000
        )
        assert network.connections >= 2
        # The very same seat (seat_token): same id, and nobody saw Sam leave and come back.
        assert await row(page, "Sam").get_attribute("data-id") == first_id
        assert await row(host.page, "Sam").get_attribute("data-id") == first_id
        await expect(row(host.page, "Sam")).to_have_attribute("data-connection", "connected")

        # An honest end: removed by a host, the page says so and does not knock again.
        connections = network.connections
        network.say({"type": "error", "code": "removed", "message": None, "ref": None})
        await expect(page.get_by_test_id("final")).to_contain_text(
            "A host removed you from this circle"
        )
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "left"
        )
        await asyncio.sleep(1.5)
        assert network.connections == connections
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


async def tab_to(page: Page, test_id: str, limit: int = 15) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"document.activeElement?.dataset.testid === '{test_id}'"):
            # Keyboard focus is visible where it lands.
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", f"no visible focus on {test_id}"
            return
    raise AssertionError(f"Tab never reached {test_id}")


async def test_keyboard_alone_joins_mutes_and_talks_with_the_space_bar(
    hearth_server: ServerProcess, chromium_path: Path, tones: dict[int, Path], artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, tones[500]) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Keyboard circle")
        guest = await open_person(browser, join_url, 1280)
        page = guest.page

        await tab_to(page, "display-name")
        await page.keyboard.type("Robin")
        await tab_to(page, "join-muted")
        await page.keyboard.press("Space")  # unticks "join muted"
        await tab_to(page, "join")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=10_000
        )
        await expect(row(host.page, "Robin")).to_have_attribute("data-muted", "false")
        # Focus moved to the circle's heading, so a screen reader starts there.
        assert await page.evaluate("document.activeElement.id") == "circle-title"

        await tab_to(page, "self-mute")
        await page.keyboard.press("Enter")
        await expect(row(host.page, "Robin")).to_have_attribute("data-muted", "true")
        await expect(page.get_by_test_id("self-mute")).to_have_attribute("aria-pressed", "true")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You are muted. Nobody hears you."
        )

        # Push to talk: hold the space bar (with focus off the buttons) while muted.
        await page.locator("#circle-title").focus()
        await page.keyboard.down("Space")
        await expect(row(host.page, "Robin")).to_have_attribute("data-muted", "false")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You can be heard while you hold the space bar.", timeout=10_000
        )
        await page.keyboard.up("Space")
        await expect(row(host.page, "Robin")).to_have_attribute("data-muted", "true")
        await expect(page.get_by_test_id("self-mute")).to_have_text("Unmute")

        # A host's mute is read out to a screen reader, not only shown.
        await tab_to(page, "self-mute")
        await page.keyboard.press("Enter")
        await expect(row(host.page, "Robin")).to_have_attribute("data-muted", "false")
        await row(host.page, "Robin").get_by_test_id("mute").click()
        await expect(page.locator("#announcer-urgent")).to_have_text("You were muted by the host.")

        await screenshots(page, artifacts_dir, "circle-view")
        await assert_accessible(page, artifacts_dir, "circle-view")
        await assert_accessible(host.page, artifacts_dir, "circle-view-host")
        await page.emulate_media(color_scheme="dark", reduced_motion="reduce")
        await assert_accessible(page, artifacts_dir, "circle-view-dark")
        only_this_server(guest, hearth_server.base_url)
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


async def routed_person(
    browser: Browser, url: str, width: int = 360
) -> tuple[Person, FlakyNetwork]:
    context = await browser.new_context(viewport={"width": width, "height": 800})
    # Chromium's fake microphone beeps; the tests using this say who speaks themselves.
    network = FlakyNetwork(hide_speaking=True)
    await context.route_web_socket("**/ws", network.handle)
    person = Person(await context.new_page())
    await person.page.goto(url)
    return person, network


async def test_hand_raise_circle_says_who_is_heard_and_announces_floor_and_lobby(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    """The host's commands are sent as the host's page would (web/moderation.js is not part of
    this test); what is checked is what the other pages show and read out."""
    async with browser_for(chromium_path, None) as browser:
        circle = hearth_server.create_circle("Hand-raise circle")
        host, host_net = await routed_person(
            browser, urljoin(hearth_server.base_url, circle["host_url"]), 1280
        )
        await join(host.page, "Ana")
        host_net.ask({"type": "set_speaking_mode", "mode": "hand_raise"})

        guest, guest_net = await routed_person(
            browser, urljoin(hearth_server.base_url, circle["join_url"])
        )
        page = guest.page
        await join(page, "Sam", muted=False)
        state = page.get_by_test_id("self-state")
        await expect(state).to_have_text(
            "Nobody hears you until a host gives you the floor. Raise your hand to ask for it.",
            timeout=10_000,
        )
        await expect(state).to_have_attribute("data-heard", "false")

        guest_net.ask({"type": "raise_hand"})
        await expect(state).to_contain_text("Your hand is up: you are 1st in the queue.")
        await expect(row(host.page, "Sam").get_by_test_id("person-mark")).to_have_text(
            "hand raised"
        )

        sam_id = await row(host.page, "Sam").get_attribute("data-id")
        host_net.ask({"type": "give_floor", "participant_id": sam_id})
        await expect(page.locator("#announcer-urgent")).to_have_text("You have the floor.")
        await expect(state).to_have_text("You can be heard.")
        await expect(state).to_have_attribute("data-heard", "true")
        await expect(row(host.page, "Sam").get_by_test_id("person-mark")).to_have_text(
            "has the floor"
        )

        # The lobby: the host hears of a newcomer, the newcomer sees their place.
        host_net.ask({"type": "set_lobby", "enabled": True})
        await asyncio.sleep(0.3)
        newcomer = await open_person(browser, urljoin(hearth_server.base_url, circle["join_url"]))
        await newcomer.page.get_by_test_id("display-name").fill("Kim")
        await newcomer.page.get_by_test_id("join").click()
        await expect(newcomer.page.get_by_test_id("lobby-position")).to_have_text(
            "You are number 1 of 1 waiting.", timeout=10_000
        )
        await expect(host.page.locator("#announcer-urgent")).to_have_text(
            "Kim is waiting in the lobby."
        )
        await assert_accessible(newcomer.page, artifacts_dir, "waiting-view")
        await newcomer.page.screenshot(path=str(artifacts_dir / "waiting-360.png"), full_page=True)
        host_net.ask({"type": "admit_all"})
        await expect(newcomer.page.get_by_test_id("participant")).to_have_count(3, timeout=10_000)
        await expect(row(newcomer.page, "Ana")).to_contain_text("host")
        for person in (host, guest, newcomer):
            assert person.errors == [], person.errors


# Like iOS Safari: sound plays only when asked for within a tap's own handler. And a Wake Lock
# that counts its requests and can be taken away, as the system does when the screen dims.
PHONE_JS = """
(() => {
    let inGesture = false;
    for (const type of ['click', 'touchend', 'keydown']) {
        window.addEventListener(type, () => {
            inGesture = true;
            setTimeout(() => { inGesture = false; }, 0);
        }, true);
    }
    const play = HTMLMediaElement.prototype.play;
    HTMLMediaElement.prototype.play = function () {
        if (!inGesture) {
            return Promise.reject(new DOMException('needs a tap', 'NotAllowedError'));
        }
        return play.call(this);
    };
    window.wakeLocks = [];
    Object.defineProperty(navigator, 'wakeLock', { value: {
        request: async (type) => {
            const lock = new EventTarget();
            lock.type = type;
            lock.released = false;
            lock.release = async () => {
                lock.released = true;
                lock.dispatchEvent(new Event('release'));
            };
            window.wakeLocks.push(lock);
            return lock;
        },
    } });
})();
"""


async def test_phone_page_asks_for_a_tap_to_hear_and_keeps_the_screen_awake(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Phone circle")
        context = await browser.new_context(viewport={"width": 360, "height": 800})
        await context.add_init_script(PHONE_JS)
        guest = Person(await context.new_page())
        page = guest.page
        await page.goto(join_url)
        # Joined with the keyboard's Enter: by the time the sound arrives that gesture is over.
        await page.get_by_test_id("display-name").fill("Sam")
        await page.get_by_test_id("display-name").press("Enter")
        tap = page.get_by_test_id("tap-to-hear")
        await expect(tap).to_be_visible(timeout=10_000)
        await expect(page.locator("#announcer-urgent")).to_contain_text("Tap to hear the circle")
        await tap.click()
        await expect(tap).to_be_hidden()
        assert await page.evaluate("!document.querySelector('[data-testid=circle-audio]').paused")

        # The screen is kept awake while in the circle; when the system takes the lock away
        # (the screen dimmed, the page hidden) it is asked for again on return.
        assert await page.evaluate("window.wakeLocks.length") == 1
        await page.evaluate("window.wakeLocks[0].release()")
        await page.evaluate(
            """() => {
                Object.defineProperty(document, 'visibilityState', {
                    value: 'visible', configurable: true });
                document.dispatchEvent(new Event('visibilitychange'));
            }"""
        )
        await page.wait_for_function("() => window.wakeLocks.length === 2")
        await page.get_by_test_id("leave").click()
        assert await page.evaluate("window.wakeLocks[1].released")
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


async def test_a_connection_lost_in_the_lobby_shows_the_banner_and_keeps_the_place(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Lobby on a bad network")
        await host.page.get_by_test_id("lobby-toggle").click()
        await expect(host.page.get_by_test_id("lobby-toggle")).to_have_text("Turn lobby off")
        context = await browser.new_context(viewport={"width": 360, "height": 800})
        network = FlakyNetwork()
        await context.route_web_socket("**/ws", network.handle)
        guest = Person(await context.new_page())
        page = guest.page
        await page.goto(join_url)
        await join(page, "Sam", muted=True)
        position = page.get_by_test_id("lobby-position")
        await expect(position).to_have_text("You are number 1 of 1 waiting.", timeout=10_000)

        await network.cut()
        banner = page.get_by_test_id("reconnecting")
        await expect(banner).to_be_visible()
        await expect(position).to_be_visible()  # still the lobby, not the join form
        await asyncio.sleep(1.5)
        network.restore()
        await expect(banner).to_be_hidden(timeout=15_000)
        await expect(position).to_have_text("You are number 1 of 1 waiting.")
        # Still one knock at the host's door: the same place, not a second arrival.
        await expect(host.page.get_by_test_id("waiting-person")).to_have_count(1)
        await host.page.get_by_test_id("waiting-person").get_by_test_id("admit").click()
        await expect(row(page, "Sam")).to_contain_text("(you)", timeout=10_000)
        assert guest.errors == [] and host.errors == []
