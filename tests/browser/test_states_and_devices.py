"""Issue 14 in Chromium: the microphone opens only when the person means it, honest states at
the door and on the wire, the support signal and the crisis panel, phones, and changing the
microphone and the speaker in the circle. Real server, Debian's Chromium, fake devices.

What Chromium's fake devices cannot do is plug or unplug a device: the device list is fixed
(three microphones, three speakers). The headset tests change what `enumerateDevices` answers
and fire `devicechange`, as the browser does when a headset comes or goes; the switch itself
(getUserMedia, replaceTrack, setSinkId) runs for real on the fake devices.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser.test_client_page import (
    Person,
    axe_violations,
    browser_for,
    join,
    open_circle,
    open_person,
    row,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}

# Every microphone track and peer connection the page makes, so a test can tell whether the
# microphone was released (the track stopped) and whether a change needed a new connection.
RECORD_JS = """
(() => {
    window.__tracks = [];
    window.__pcs = [];
    const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
        const stream = await gum(constraints);
        window.__tracks.push(...stream.getAudioTracks());
        return stream;
    };
    const Original = window.RTCPeerConnection;
    window.RTCPeerConnection = function (...args) {
        const pc = new Original(...args);
        window.__pcs.push(pc);
        return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

LIVE_TRACKS = "() => window.__tracks.filter((t) => t.readyState === 'live').length"


async def person_in(
    browser: Browser, url: str, *, phone: bool = False, width: int = 1280
) -> tuple[Person, BrowserContext]:
    if phone:
        context = await browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    else:
        context = await browser.new_context(viewport={"width": width, "height": 900})
    await context.add_init_script(RECORD_JS)
    person = Person(await context.new_page())
    await person.page.goto(url)
    return person, context


async def active_testid(page: Page) -> str | None:
    value: str | None = await page.evaluate(
        "document.activeElement === document.body ? 'BODY' "
        ": (document.activeElement.dataset.testid || document.activeElement.id)"
    )
    return value


def contrast(fg: str, bg: str) -> float:
    def channels(css: str) -> list[float]:
        inside = css[css.index("(") + 1 : css.index(")")]
        return [float(x) for x in inside.replace("/", ",").split(",")[:3]]

    def luminance(rgb: list[float]) -> float:
        def lin(c: float) -> float:
            c /= 255
            return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

        r, g, b = (lin(c) for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    a, b = luminance(channels(fg)), luminance(channels(bg))
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


async def assert_clean_in_both_schemes(page: Page, artifacts: Path, name: str) -> None:
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
        violations = await axe_violations(page)
        (artifacts / f"axe-{name}-{scheme}.json").write_text(json.dumps(violations, indent=2))
        grave = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert grave == [], (scheme, grave)
        await page.screenshot(path=str(artifacts / f"{name}-{scheme}.png"), full_page=True)
    await page.emulate_media(color_scheme="light")


class Gate:
    """Carries a page's WebSocket to the server, holding back the page's `need_support` while
    `hold` is set (as if the network ate it), and able to answer `join` itself."""

    def __init__(self) -> None:
        self.hold = False
        self.held: list[str | bytes] = []
        self.server: WebSocketRoute | None = None
        # code -> (message, close code or None): answer `join` with this refusal instead.
        self.refuse: tuple[str, str, int | None] | None = None

    async def handle(self, ws: WebSocketRoute) -> None:
        if self.refuse is not None:
            code, text, close = self.refuse

            def refuse(message: str | bytes) -> None:
                data = json.loads(message)
                if data.get("type") == "join":
                    ws.send(
                        json.dumps({"type": "error", "code": code, "message": text, "ref": "join"})
                    )
                    if close is not None:
                        asyncio.get_running_loop().create_task(ws.close(code=close))

            ws.on_message(refuse)
            return
        server = ws.connect_to_server()
        self.server = server

        def forward(message: str | bytes) -> None:
            if self.hold and isinstance(message, str) and '"need_support"' in message:
                self.held.append(message)
                return
            server.send(message)

        ws.on_message(forward)

    def release(self) -> None:
        assert self.server is not None
        for message in self.held:
            self.server.send(message)
        self.held.clear()
        self.hold = False


async def test_focus_never_falls_to_the_body_and_space_on_a_control_never_opens_the_microphone(
    hearth_server: ServerProcess, chromium_path: Path, tones: dict[int, Path]
) -> None:
    async with browser_for(chromium_path, tones[500]) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Focus circle")
        guest, _ = await person_in(browser, join_url)
        page = guest.page
        await join(page, "Sam", muted=True)
        sam = row(host.page, "Sam")
        await expect(sam).to_have_attribute("data-muted", "true")

        async def stays_muted() -> None:
            await asyncio.sleep(0.6)
            await expect(sam).to_have_attribute("data-muted", "true")
            await expect(page.get_by_test_id("self-state")).to_have_text(
                "You are muted. Nobody hears you."
            )

        # Raise hand with the space bar: the button turns into Lower hand, and focus follows.
        await page.get_by_test_id("raise-hand").focus()
        await page.keyboard.press("Space")
        await expect(page.get_by_test_id("lower-hand")).to_be_visible()
        await expect(page.get_by_test_id("lower-hand")).to_be_focused()
        await stays_muted()
        # The next Space (meant for Lower hand) lowers the hand; it never puts Sam on air.
        await page.keyboard.down("Space")
        await stays_muted()
        await page.keyboard.up("Space")
        await expect(page.get_by_test_id("raise-hand")).to_be_focused()
        await stays_muted()

        # A held Space on any control (here the support button) is that control's, never
        # push-to-talk.
        await page.get_by_test_id("need-support").focus()
        await page.keyboard.down("Space")
        await stays_muted()
        await page.keyboard.up("Space")
        await expect(page.get_by_test_id("need-support")).to_have_attribute("aria-pressed", "true")
        assert await active_testid(page) not in ("BODY", None)

        # Asked to unmute by a host: accepting with the keyboard unmutes (consent), and focus
        # lands on the person's own Mute button, not the body.
        await sam.get_by_test_id("ask-unmute").click()
        await expect(page.get_by_test_id("accept-unmute")).to_be_focused()
        await page.keyboard.press("Space")
        await expect(sam).to_have_attribute("data-muted", "false")
        await expect(page.get_by_test_id("self-mute")).to_be_focused()
        await page.keyboard.press("Space")  # the focused Mute button: muted again
        await expect(sam).to_have_attribute("data-muted", "true")

        # Push-to-talk still works where it is meant: focus on the circle's heading.
        await page.locator("#circle-title").focus()
        await page.keyboard.down("Space")
        await expect(sam).to_have_attribute("data-muted", "false")
        await page.keyboard.up("Space")
        await expect(sam).to_have_attribute("data-muted", "true")

        # The host lets someone in with the keyboard: focus moves to the next thing to do.
        await host.page.get_by_test_id("lobby-toggle").click()
        await expect(host.page.get_by_test_id("lobby-toggle")).to_have_text("Turn lobby off")
        kim, _ = await person_in(browser, join_url, width=800)
        await join(kim.page, "Kim")
        await expect(host.page.get_by_test_id("waiting-person")).to_have_count(1, timeout=10_000)
        lee, _ = await person_in(browser, join_url, width=800)
        await join(lee.page, "Lee")
        knocking = host.page.get_by_test_id("waiting-person")
        await expect(knocking).to_have_count(2, timeout=10_000)
        await knocking.filter(has_text="Kim").get_by_test_id("admit").focus()
        await host.page.keyboard.press("Enter")
        await expect(knocking).to_have_count(1, timeout=10_000)
        await expect(row(kim.page, "Kim")).to_contain_text("(you)", timeout=10_000)
        # The lobby list itself: not the next person's button, which a second press would
        # act on by mistake. A second Enter lets nobody else in.
        await expect(host.page.get_by_test_id("lobby-list")).to_be_focused()
        await host.page.keyboard.press("Enter")
        await asyncio.sleep(1)
        await expect(knocking).to_have_count(1)
        await expect(knocking).to_contain_text("Lee")
        # The last one let in: the lobby is gone, focus is on the host tools that held it.
        await knocking.get_by_test_id("admit").focus()
        await host.page.keyboard.press("Enter")
        await expect(knocking).to_have_count(0, timeout=10_000)
        await expect(row(lee.page, "Lee")).to_contain_text("(you)", timeout=10_000)
        assert await active_testid(host.page) == "host-panel"
        for person in (host, guest, kim, lee):
            assert person.errors == [], person.errors


async def test_a_full_circle_says_so_at_once_releases_the_microphone_and_lets_in_when_room(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        circle = hearth_server.create_circle("Small circle", capacity=2)
        host = await open_person(browser, urljoin(hearth_server.base_url, circle["host_url"]), 1280)
        await join(host.page, "Ana")
        join_url = urljoin(hearth_server.base_url, circle["join_url"])
        sam = await open_person(browser, join_url, 800)
        await join(sam.page, "Sam")

        kim, _ = await person_in(browser, join_url, phone=True)
        page = kim.page
        await page.get_by_test_id("display-name").fill("Kim")
        await page.get_by_test_id("join-muted").set_checked(False)
        await page.get_by_test_id("join").click()
        door = page.get_by_test_id("door")
        await expect(door).to_be_visible(timeout=10_000)
        # The server's words, at once; no "Joining…" left behind; the microphone released.
        await expect(page.get_by_test_id("door-text")).to_contain_text("full")
        await expect(page.get_by_test_id("join")).to_have_text("Join")
        await expect(page.get_by_test_id("join")).to_be_enabled()
        await page.wait_for_function(LIVE_TRACKS.replace("=> ", "=> 0 === "))
        assert await page.evaluate("window.__tracks.length") >= 1
        await expect(page.locator("#door-title")).to_be_focused()
        await assert_clean_in_both_schemes(page, artifacts_dir, "door-full-phone")

        # Try again now: still full, said again.
        await page.get_by_test_id("door-try-now").click()
        await expect(page.get_by_test_id("door-text")).to_contain_text("full")
        # Wait: the page keeps trying by itself and comes in once there is room, muted.
        await page.get_by_test_id("door-wait").click()
        await expect(page.get_by_test_id("door-countdown")).to_contain_text("tries again in")
        await sam.page.get_by_test_id("leave").click()
        await expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "connected", timeout=45_000
        )
        await expect(door).to_be_hidden()
        await expect(row(host.page, "Kim")).to_have_attribute("data-muted", "true")
        await expect(page.get_by_test_id("self-state")).to_have_text(
            "You are muted. Nobody hears you.", timeout=10_000
        )
        for person in (host, sam, kim):
            assert person.errors == [], person.errors


# Each refusal the server may send at the door, and where the page must land: the door panel
# (waiting helps) or the join form, always with the server's words and the microphone off.
REFUSALS = [
    ("server_busy", 1013, "door"),
    ("server_draining", 1012, "door"),
    ("storage_unavailable", None, "door"),
    ("rate_limited", None, "door"),
    ("lobby_full", None, "door"),
    ("too_many_connections", 4430, "door"),
    ("too_many_attempts", None, "form"),
    ("lobby_timeout", 4431, "form"),
    ("name_confusable", None, "name"),
]


async def test_every_refusal_at_the_door_lands_in_an_honest_state(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        circle = hearth_server.create_circle("Refusing circle")
        join_url = urljoin(hearth_server.base_url, circle["join_url"])
        for code, close, where in REFUSALS:
            context = await browser.new_context(viewport={"width": 800, "height": 900})
            await context.add_init_script(RECORD_JS)
            gate = Gate()
            words = f"The server says {code.replace('_', ' ')}."
            gate.refuse = (code, words, close)
            await context.route_web_socket("**/ws", gate.handle)
            person = Person(await context.new_page())
            page = person.page
            await page.goto(join_url)
            await page.get_by_test_id("display-name").fill("Kim")
            await page.get_by_test_id("join").click()
            if where == "door":
                await expect(page.get_by_test_id("door-text")).to_have_text(words)
            elif where == "name":
                await expect(page.locator("#name-error")).to_have_text(words)
                await expect(page.get_by_test_id("display-name")).to_be_focused()
            else:
                await expect(page.locator("#join-status")).to_have_text(words)
                await expect(page.get_by_test_id("door")).to_be_hidden()
            await expect(page.get_by_test_id("join")).to_have_text("Join")
            await page.wait_for_function(LIVE_TRACKS.replace("=> ", "=> 0 === "))
            await asyncio.sleep(0.5)
            await expect(page.get_by_test_id("connection-state")).not_to_have_attribute(
                "data-state", "reconnecting"
            )
            assert person.errors == [], (code, person.errors)
            await context.close()


async def test_support_offline_crisis_and_the_time_cue_on_a_phone(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Phone care circle")
        context = await browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
        await context.add_init_script(RECORD_JS)
        gate = Gate()
        await context.route_web_socket("**/ws", gate.handle)
        guest = Person(await context.new_page())
        page = guest.page
        await page.goto(join_url)

        # A touch device is not told about a space bar.
        await expect(page.locator("#rule-speak")).not_to_contain_text("space")
        await join(page, "Sam", muted=True)
        await expect(page.locator("#ptt-hint")).to_be_hidden()
        assert "space" not in (await page.locator("main").inner_text()).lower()

        # What hosts can see is said in visible text.
        await expect(page.get_by_test_id("support-hint")).to_have_text("Only the hosts see this.")
        await expect(page.get_by_test_id("support-hint")).to_be_visible()

        # Sent only once the server confirmed it: held back, it shows as sending, not sent.
        support = page.get_by_test_id("need-support")
        gate.hold = True
        await support.click()
        await expect(support).to_have_text("Sending to the hosts…")
        await expect(support).to_have_attribute("aria-pressed", "false")
        await asyncio.sleep(0.5)
        await expect(host.page.get_by_test_id("support-list")).to_have_text("")
        gate.release()
        await expect(support).to_have_attribute("aria-pressed", "true")
        await expect(support).to_contain_text("Support requested")
        await expect(host.page.get_by_test_id("support-list")).to_contain_text("Sam")

        # After a reload (same seat), the page shows the request as the server holds it.
        await page.reload()
        await join(page, "Sam", muted=True)
        await expect(support).to_have_attribute("aria-pressed", "true")
        await expect(support).to_contain_text("Support requested")

        # Offline shows at once, and online recovers.
        await context.set_offline(True)
        state = page.get_by_test_id("connection-state")
        await expect(state).to_have_attribute("data-state", "offline", timeout=2_000)
        await expect(page.get_by_test_id("reconnecting")).to_contain_text("You are offline.")
        await expect(page.get_by_test_id("self-state")).to_contain_text("offline")
        # Pressed while offline: nothing reaches the hosts, and the page says so.
        await support.click()
        await expect(page.get_by_test_id("support-status")).to_contain_text("Not sent")
        await expect(support).to_have_attribute("aria-pressed", "true")
        await assert_clean_in_both_schemes(page, artifacts_dir, "circle-offline-phone")
        await context.set_offline(False)
        await expect(state).to_have_attribute("data-state", "connected", timeout=20_000)
        await expect(page.get_by_test_id("reconnecting")).to_be_hidden()

        # The crisis panel: opens in view, takes focus, says it is open; the deployment's
        # default text tells how to reach help.
        opener = page.get_by_test_id("crisis")
        await expect(opener).to_have_attribute("aria-expanded", "false")
        await opener.click()
        panel = page.get_by_test_id("crisis-panel")
        await expect(panel).to_be_in_viewport()
        await expect(page.locator("#crisis-title")).to_be_focused()
        await expect(opener).to_have_attribute("aria-expanded", "true")
        await expect(page.get_by_test_id("crisis-text")).to_contain_text("112")
        await page.get_by_test_id("close-crisis").click()
        await expect(panel).to_be_hidden()
        await expect(opener).to_have_attribute("aria-expanded", "false")
        await expect(opener).to_be_focused()

        # The time-up cue is not hidden under the sticky control bar.
        sam_id = await row(host.page, "Sam").get_attribute("data-id")
        await host.page.get_by_test_id("share-time").select_option("120")
        await host.page.evaluate("() => 0")
        await row(host.page, "Sam").get_by_test_id("give-floor").click()
        await expect(page.get_by_test_id("turn-timer")).to_be_visible(timeout=10_000)
        await page.evaluate("window.scrollTo(0, 0)")
        # Let the turn's end pass as the page sees it (the server gives the deadline).
        await page.evaluate(
            "(ms) => { const now = Date.now; Date.now = () => now() + ms; }", 121_000
        )
        cue = page.locator(".turn.cue")
        await expect(cue).to_be_visible(timeout=5_000)
        await expect(cue).to_be_in_viewport()
        cue_box = await cue.bounding_box()
        bar_box = await page.locator("#controls").bounding_box()
        assert cue_box is not None and bar_box is not None
        print("cue", cue_box, "bar", bar_box)
        assert cue_box["y"] + cue_box["height"] <= bar_box["y"] + 1, (cue_box, bar_box)
        assert sam_id

        # Removed: the crisis panel stays one press away.
        await row(host.page, "Sam").get_by_test_id("remove").click()
        await expect(page.get_by_test_id("final")).to_be_visible(timeout=10_000)
        final_opener = page.get_by_test_id("crisis-final")
        await expect(final_opener).to_be_visible()
        await final_opener.click()
        await expect(panel).to_be_in_viewport()
        await expect(page.locator("#crisis-title")).to_be_focused()
        await expect(final_opener).to_have_attribute("aria-expanded", "true")
        await expect(page.get_by_test_id("crisis-text")).to_contain_text("112")
        await assert_clean_in_both_schemes(page, artifacts_dir, "removed-crisis-phone")
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors


async def test_the_disabled_join_button_is_readable_hovered_in_light_and_dark(
    hearth_server: ServerProcess, chromium_path: Path
) -> None:
    async with browser_for(chromium_path, None) as browser:
        circle = hearth_server.create_circle("Hover circle")
        person = await open_person(browser, urljoin(hearth_server.base_url, circle["join_url"]))
        page = person.page
        button = page.get_by_test_id("join")
        await button.evaluate("b => { b.disabled = true; b.textContent = 'Joining…'; }")
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme, reduced_motion="reduce")
            await button.scroll_into_view_if_needed()
            box = await button.bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            assert await button.evaluate("b => b.matches(':hover')")
            colours = await button.evaluate(
                "b => { const s = getComputedStyle(b); "
                "return [s.color, s.backgroundColor, s.opacity]; }"
            )
            ratio = contrast(colours[0], colours[1])
            print(scheme, colours, f"{ratio:.1f}:1")
            assert float(colours[2]) == 1.0
            assert ratio >= 4.5, (scheme, colours)


# Replaces what enumerateDevices answers, as when a headset is plugged in or out.
FAKE_DEVICE_LIST_JS = """
(change) => {
    const real = navigator.mediaDevices.enumerateDevices.bind(navigator.mediaDevices);
    navigator.mediaDevices.enumerateDevices = async () => {
        let list = await real();
        if (change.remove) list = list.filter((d) => d.label !== change.remove);
        if (change.add) {
            list = [...list, { kind: 'audioinput', deviceId: 'headset-1', groupId: 'h',
                label: change.add, toJSON() { return this; } }];
        }
        return list;
    };
    navigator.mediaDevices.dispatchEvent(new Event('devicechange'));
}
"""


async def test_microphone_and_speaker_change_in_the_circle_without_rejoining(
    hearth_server: ServerProcess, chromium_path: Path, tones: dict[int, Path]
) -> None:
    async with browser_for(chromium_path, tones[500]) as browser:
        host, join_url = await open_circle(hearth_server, browser, "Devices circle")
        guest, _ = await person_in(browser, join_url)
        page = guest.page
        await join(page, "Sam", muted=True)
        sam_id = await row(host.page, "Sam").get_attribute("data-id")
        await page.wait_for_function("() => window.__pcs.length === 1")

        settings = page.get_by_test_id("devices")
        await expect(settings).to_be_visible(timeout=10_000)
        await settings.locator("summary").click()
        mic = page.get_by_test_id("circle-mic")
        await expect(mic.locator("option")).to_have_count(3)
        first = await page.evaluate("window.__tracks.at(-1)")
        assert first is not None
        await mic.select_option(label="Fake Audio Input 1")
        await expect(settings).to_have_attribute("data-mic", "Fake Audio Input 1")
        sent = await page.evaluate(
            "() => { const s = window.__pcs[0].getSenders().find((x) => x.track); "
            "return s && [s.track.label, s.track.enabled]; }"
        )
        # The same connection sends the new microphone, still muted; the old one is stopped.
        assert sent == ["Fake Audio Input 1", False], sent
        assert await page.evaluate("window.__pcs.length") == 1
        assert await page.evaluate(LIVE_TRACKS) == 1
        await expect(page.locator("#notice")).to_contain_text("Now using Fake Audio Input 1")
        await expect(row(host.page, "Sam")).to_have_attribute("data-id", sam_id or "")
        await expect(row(host.page, "Sam")).to_have_attribute("data-muted", "true")

        # Unmuted, the new microphone is heard as Sam (the same seat).
        await page.get_by_test_id("self-mute").click()
        await expect(row(host.page, "Sam")).to_have_attribute("data-muted", "false")
        assert await page.evaluate(
            "() => window.__pcs[0].getSenders().find((x) => x.track).track.enabled"
        )

        # The speaker, where the browser lets a page choose it (Chromium does).
        speaker = page.get_by_test_id("circle-speaker")
        await expect(speaker.locator("option")).to_have_count(3)
        await speaker.select_option(label="Fake Audio Output 1")
        chosen = await speaker.input_value()
        await page.wait_for_function(
            "(id) => document.getElementById('circle-audio').sinkId === id", arg=chosen
        )

        # A headset plugged in: said, and offered.
        await page.evaluate(FAKE_DEVICE_LIST_JS, {"add": "USB headset"})
        await expect(page.locator("#notice")).to_contain_text("USB headset was plugged in")
        await expect(mic.locator("option", has_text="USB headset")).to_have_count(1)
        # The microphone in use unplugged: the default one takes over, on the same connection.
        await page.evaluate(FAKE_DEVICE_LIST_JS, {"remove": "Fake Audio Input 1"})
        await expect(page.locator("#notice")).to_contain_text("Your microphone was unplugged")
        await expect(settings).to_have_attribute("data-mic", "Fake Default Audio Input")
        assert await page.evaluate("window.__pcs.length") == 1
        await expect(row(host.page, "Sam")).to_have_attribute("data-id", sam_id or "")
        assert guest.errors == [] and host.errors == [], guest.errors + host.errors
