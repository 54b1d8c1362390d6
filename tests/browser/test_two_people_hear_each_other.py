"""Two people in two real Chromium processes hear each other through the server, and a host's
mute silences someone whatever their browser keeps sending.

Each browser's fake microphone plays its own tone (host 500 Hz, participant 1300 Hz). What a
page receives is analysed in the page with WebAudio; a person must hear the other's tone and
never their own.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect

from tests.browser.conftest import chromium_args
from tests.support.server import ServerProcess

pytestmark = pytest.mark.browser

HOST_TONE = 500
PARTICIPANT_TONE = 1300
# How far a tone must stand above the spectrum right beside it to count as heard, and below
# which it counts as absent. The local floor, not the median over the voice band: the codec's
# noise is loudest around whatever tone is playing and far lower elsewhere, so against the
# band median even plain codec noise near 500 Hz would look like a tone (measured: about
# 37 dB above the band median, but within 1 dB of its own neighbours).
HEARD_DB = 20.0
ABSENT_DB = 10.0

# Samples what the page receives for a while and reports, in dB:
#   "<hz>":      the strongest level within 20 Hz of each tone,
#   "<hz>_near": the strongest level in 80 Hz wide bands 100-180 Hz either side of it (the
#                same kind of maximum, so noise scores about the same as the tone bins),
#   "floor":     the median level over 200-3000 Hz (median over time as well).
MEASURE_JS = """
async ([tones, seconds]) => {
    // Everything the page plays: its player and each further receive slot's (web/rtc.js).
    const players = document.querySelectorAll(
        '[data-testid="circle-audio"], [data-testid="circle-audio-slot"]');
    const streams = [...players].map((a) => a.srcObject)
        .filter((s) => s && s.getAudioTracks().length > 0);
    if (streams.length === 0) return null;
    const ctx = new AudioContext();
    await ctx.resume();
    const sources = streams.map((s) => ctx.createMediaStreamSource(s));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    for (const source of sources) source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const hzPerBin = ctx.sampleRate / analyser.fftSize;
    const level = (v) => (Number.isFinite(v) ? v : -200);
    const peakIn = (lo, hi) => {
        let peak = -200;
        for (let b = Math.floor(lo / hzPerBin); b <= Math.ceil(hi / hzPerBin); b++) {
            peak = Math.max(peak, level(bins[b]));
        }
        return peak;
    };
    const result = {};
    for (const hz of tones) { result[hz] = -200; result[hz + '_near'] = -200; }
    const floors = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        analyser.getFloatFrequencyData(bins);
        for (const hz of tones) {
            result[hz] = Math.max(result[hz], peakIn(hz - 20, hz + 20));
            result[hz + '_near'] = Math.max(
                result[hz + '_near'], peakIn(hz - 180, hz - 100), peakIn(hz + 100, hz + 180));
        }
        const band = [];
        for (let b = Math.floor(200 / hzPerBin); b <= Math.ceil(3000 / hzPerBin); b++) {
            band.push(level(bins[b]));
        }
        band.sort((a, b) => a - b);
        floors.push(band[Math.floor(band.length / 2)]);
    }
    for (const source of sources) source.disconnect();
    await ctx.close();
    floors.sort((a, b) => a - b);
    result.floor = floors[Math.floor(floors.length / 2)];
    return result;
}
"""

HAS_REMOTE_AUDIO_JS = """
() => {
    const audio = document.querySelector('[data-testid="circle-audio"]');
    return Boolean(audio && audio.srcObject && audio.srcObject.getAudioTracks().length > 0);
}
"""

# A client that ignores being muted: its microphone track can never be switched off. The
# server must silence it all the same.
IGNORE_MUTE_JS = """
(() => {
    const enabled = Object.getOwnPropertyDescriptor(MediaStreamTrack.prototype, 'enabled');
    Object.defineProperty(MediaStreamTrack.prototype, 'enabled', {
        configurable: true,
        get() { return enabled.get.call(this); },
        set(_value) { enabled.set.call(this, true); },
    });
})();
"""


def above_floor(levels: dict[str, float], hz: int) -> float:
    """How far the tone stands above the spectrum right beside it, in dB."""
    return levels[str(hz)] - levels[f"{hz}_near"]


async def measure(page: Page, seconds: float = 2.0) -> dict[str, float]:
    levels = await page.evaluate(MEASURE_JS, [[HOST_TONE, PARTICIPANT_TONE], seconds])
    assert levels is not None, "the page has no remote audio stream"
    return {k: round(float(v), 1) for k, v in levels.items()}


async def measure_until(page: Page, ok: Any, attempts: int = 4) -> dict[str, float]:
    """Measures until ``ok(levels)`` holds (audio takes a moment to start), or gives up."""
    await page.wait_for_function(HAS_REMOTE_AUDIO_JS, timeout=10_000)
    levels: dict[str, float] = {}
    for _ in range(attempts):
        levels = await measure(page)
        if ok(levels):
            break
    return levels


@asynccontextmanager
async def chromium(
    pw: Playwright, chromium_path: Path, fake_audio: Path | None
) -> AsyncIterator[Browser]:
    browser = await pw.chromium.launch(
        executable_path=str(chromium_path), args=chromium_args(fake_audio), headless=True
    )
    try:
        yield browser
    finally:
        await browser.close()


async def open_page(
    browser: Browser, url: str, width: int, errors: list[str], init_script: str | None = None
) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 760})
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    return page


async def join(page: Page, name: str, *, muted: bool) -> None:
    await page.get_by_test_id("display-name").fill(name)
    await page.get_by_test_id("join-muted").set_checked(muted)
    await page.get_by_test_id("join").click()


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-testid="participant"][data-name="{name}"]')


async def test_two_people_hear_each_other_and_a_host_mute_silences_one(
    hearth_server: ServerProcess,
    chromium_path: Path,
    tones: dict[int, Path],
    artifacts_dir: Path,
) -> None:
    circle = hearth_server.create_circle("Thursday evening circle")
    host_url = urljoin(hearth_server.base_url, circle["host_url"])
    join_url = urljoin(hearth_server.base_url, circle["join_url"])
    errors: list[str] = []
    report: dict[str, Any] = {}

    async with (
        async_playwright() as pw,
        chromium(pw, chromium_path, tones[HOST_TONE]) as host_browser,
        chromium(pw, chromium_path, tones[PARTICIPANT_TONE]) as guest_browser,
    ):
        host = await open_page(host_browser, host_url, 1024, errors)
        await join(host, "Ana", muted=False)
        await expect(row(host, "Ana")).to_have_count(1, timeout=10_000)

        guest = await open_page(guest_browser, join_url, 360, errors, IGNORE_MUTE_JS)
        await join(guest, "Sam", muted=False)

        for page in (host, guest):
            await expect(page.get_by_test_id("participant")).to_have_count(2, timeout=10_000)
            await expect(row(page, "Ana")).to_have_attribute("data-muted", "false")
            await expect(row(page, "Sam")).to_have_attribute("data-muted", "false")
            await expect(row(page, "Ana")).to_contain_text("host")
            # The token leaves the address bar once the person is in.
            assert page.url.endswith("/c/"), page.url
        await expect(row(host, "Ana")).to_contain_text("(you)")
        await expect(row(guest, "Sam")).to_contain_text("(you)")
        # Only a host gets a mute button, and never on their own row.
        await expect(row(host, "Sam").get_by_test_id("mute")).to_be_visible()
        await expect(row(host, "Ana").get_by_test_id("mute")).to_be_hidden()
        await expect(guest.locator('[data-testid="mute"]:visible')).to_have_count(0)

        def hears(other: int, own: int) -> Any:
            return lambda lv: above_floor(lv, other) > HEARD_DB and above_floor(lv, own) < ABSENT_DB

        host_levels, guest_levels = await asyncio.gather(
            measure_until(host, hears(PARTICIPANT_TONE, HOST_TONE)),
            measure_until(guest, hears(HOST_TONE, PARTICIPANT_TONE)),
        )
        report["before_mute"] = {"host_hears": host_levels, "participant_hears": guest_levels}
        print("before mute: host hears", host_levels, "participant hears", guest_levels)
        assert above_floor(host_levels, PARTICIPANT_TONE) > HEARD_DB, host_levels
        assert above_floor(host_levels, HOST_TONE) < ABSENT_DB, host_levels
        assert above_floor(guest_levels, HOST_TONE) > HEARD_DB, guest_levels
        assert above_floor(guest_levels, PARTICIPANT_TONE) < ABSENT_DB, guest_levels
        # The server's `speaking` messages, from Chromium's own audio-level header, mark the
        # voices it hears: each page sees the other speaking while the tones play.
        await expect(row(host, "Sam")).to_have_attribute("data-speaking", "true", timeout=10_000)
        await expect(row(guest, "Ana")).to_have_attribute("data-speaking", "true", timeout=10_000)

        await row(host, "Sam").get_by_test_id("mute").click()
        for page in (host, guest):
            await expect(row(page, "Sam")).to_have_attribute("data-muted", "true")
        await expect(row(host, "Sam").get_by_test_id("mute")).to_be_hidden()
        await expect(guest.get_by_text("A host muted you")).to_be_visible()
        self_mute = guest.get_by_test_id("self-mute")
        await expect(self_mute).to_have_attribute("aria-pressed", "true")
        await expect(self_mute).to_have_text("Unmute")

        # Let the last packets and the receiver's loss concealment fade out.
        await asyncio.sleep(1.0)
        host_levels, guest_levels = await asyncio.gather(
            measure_until(host, lambda lv: above_floor(lv, PARTICIPANT_TONE) < ABSENT_DB),
            measure(guest),
        )
        report["after_mute"] = {"host_hears": host_levels, "participant_hears": guest_levels}
        print("after mute: host hears", host_levels, "participant hears", guest_levels)
        assert above_floor(host_levels, PARTICIPANT_TONE) < ABSENT_DB, host_levels
        # Being muted does not stop someone from listening.
        assert above_floor(guest_levels, HOST_TONE) > HEARD_DB, guest_levels

        await host.screenshot(path=str(artifacts_dir / "host.png"), full_page=True)
        await guest.screenshot(path=str(artifacts_dir / "participant.png"), full_page=True)

        await guest.get_by_test_id("leave").click()
        await expect(guest.get_by_text("You left the circle")).to_be_visible()
        await expect(host.get_by_test_id("participant")).to_have_count(1, timeout=10_000)
        await guest.screenshot(path=str(artifacts_dir / "participant-left.png"), full_page=True)

        # The address bar says only /c/ now; a reload finds the circle through the tab.
        await guest.reload()
        assert guest.url.endswith("/c/"), guest.url
        await expect(guest.get_by_test_id("display-name")).to_have_value("Sam")
        await join(guest, "Sam", muted=True)
        await expect(host.get_by_test_id("participant")).to_have_count(2, timeout=10_000)
        await expect(row(host, "Sam")).to_have_attribute("data-muted", "true")

    (artifacts_dir / "browser-levels.json").write_text(json.dumps(report, indent=2))
    assert errors == [], errors


async def wait_at_closed_door(browser: Browser, url: str, errors: list[str]) -> Page:
    page = await open_page(browser, url, 360, errors)
    await join(page, "Robin", muted=True)
    await expect(page.get_by_test_id("not-open")).to_be_visible(timeout=10_000)
    return page


async def test_unknown_link_and_circle_not_yet_open_look_the_same(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    waiting = hearth_server.create_circle("Circle nobody has opened yet")
    errors: list[str] = []
    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        unknown = await wait_at_closed_door(
            browser, f"{hearth_server.base_url}/c/{secrets.token_urlsafe(16)}", errors
        )
        unknown_text = await unknown.get_by_test_id("not-open").inner_text()
        await unknown.screenshot(path=str(artifacts_dir / "not-open.png"), full_page=True)
        await unknown.context.close()

        early = await wait_at_closed_door(
            browser, urljoin(hearth_server.base_url, waiting["join_url"]), errors
        )
        early_text = await early.get_by_test_id("not-open").inner_text()
        assert "not open right now" in unknown_text
        assert unknown_text == early_text

        # The host arrives; the page that was left open lets its person in on its own.
        host = await open_page(
            browser, urljoin(hearth_server.base_url, waiting["host_url"]), 1024, errors
        )
        await join(host, "Ana", muted=True)
        await expect(early.get_by_test_id("participant")).to_have_count(2, timeout=25_000)
        await expect(row(early, "Robin")).to_contain_text("(you)")
        await expect(row(host, "Robin")).to_have_attribute("data-muted", "true")
    assert errors == [], errors


SLOTS_PLAYING_JS = """
() => [...document.querySelectorAll('[data-testid="circle-audio-slot"]')]
    .filter((a) => !a.paused && a.srcObject).length
"""


async def test_a_page_hears_two_people_speaking_at_once(
    hearth_server: ServerProcess,
    chromium_path: Path,
    tones: dict[int, Path],
) -> None:
    """Two people speak at the same time; a third page, only listening, hears both. Each
    voice comes in a receive slot of its own (no mixing on the server), and the page plays
    every slot, not just its first track."""
    circle = hearth_server.create_circle("Two voices at once")
    host_url = urljoin(hearth_server.base_url, circle["host_url"])
    join_url = urljoin(hearth_server.base_url, circle["join_url"])
    errors: list[str] = []
    async with (
        async_playwright() as pw,
        chromium(pw, chromium_path, tones[HOST_TONE]) as host_browser,
        chromium(pw, chromium_path, tones[PARTICIPANT_TONE]) as guest_browser,
        chromium(pw, chromium_path, None) as listener_browser,
    ):
        host = await open_page(host_browser, host_url, 1024, errors)
        await join(host, "Ana", muted=False)
        await expect(row(host, "Ana")).to_have_count(1, timeout=10_000)
        guest = await open_page(guest_browser, join_url, 360, errors)
        await join(guest, "Sam", muted=False)
        listener = await open_page(listener_browser, join_url, 360, errors)
        await join(listener, "Lee", muted=True)
        await expect(listener.get_by_test_id("participant")).to_have_count(3, timeout=10_000)

        def hears_both(lv: dict[str, float]) -> bool:
            return min(above_floor(lv, HOST_TONE), above_floor(lv, PARTICIPANT_TONE)) > HEARD_DB

        levels = await measure_until(listener, hears_both, attempts=6)
        print("listener hears", levels)
        assert above_floor(levels, HOST_TONE) > HEARD_DB, levels
        assert above_floor(levels, PARTICIPANT_TONE) > HEARD_DB, levels
        # The voices came in separate slots, and the page's extra players are playing.
        assert await listener.evaluate(SLOTS_PLAYING_JS) >= 1
        # The two speakers still hear each other and never themselves.
        host_levels = await measure_until(
            host,
            lambda lv: (
                above_floor(lv, PARTICIPANT_TONE) > HEARD_DB
                and above_floor(lv, HOST_TONE) < ABSENT_DB
            ),
        )
        assert above_floor(host_levels, PARTICIPANT_TONE) > HEARD_DB, host_levels
        assert above_floor(host_levels, HOST_TONE) < ABSENT_DB, host_levels
    assert errors == [], errors
