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
# How far above the spectrum's median a tone must stand to count as heard, and below which
# it counts as absent.
HEARD_DB = 20.0
ABSENT_DB = 10.0

# Samples what the page receives for a while and reports the strongest level near each
# tone and a noise floor (median level over 200-3000 Hz), all in dB.
MEASURE_JS = """
async ([tones, seconds]) => {
    const audio = document.querySelector('[data-testid="circle-audio"]');
    const stream = audio && audio.srcObject;
    if (!stream || stream.getAudioTracks().length === 0) return null;
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const hzPerBin = ctx.sampleRate / analyser.fftSize;
    const level = (v) => (Number.isFinite(v) ? v : -200);
    const peaks = tones.map(() => -200);
    const floors = [];
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
        analyser.getFloatFrequencyData(bins);
        tones.forEach((hz, i) => {
            const lo = Math.floor((hz - 20) / hzPerBin), hi = Math.ceil((hz + 20) / hzPerBin);
            for (let b = lo; b <= hi; b++) peaks[i] = Math.max(peaks[i], level(bins[b]));
        });
        const band = [];
        for (let b = Math.floor(200 / hzPerBin); b <= Math.ceil(3000 / hzPerBin); b++) {
            band.push(level(bins[b]));
        }
        band.sort((a, b) => a - b);
        floors.push(band[Math.floor(band.length / 2)]);
    }
    source.disconnect();
    await ctx.close();
    floors.sort((a, b) => a - b);
    const result = { floor: floors[Math.floor(floors.length / 2)] };
    tones.forEach((hz, i) => { result[String(hz)] = peaks[i]; });
    return result;
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
    return levels[str(hz)] - levels["floor"]


async def measure(page: Page, seconds: float = 2.0) -> dict[str, float]:
    levels = await page.evaluate(MEASURE_JS, [[HOST_TONE, PARTICIPANT_TONE], seconds])
    assert levels is not None, "the page has no remote audio stream"
    return {k: round(float(v), 1) for k, v in levels.items()}


async def measure_until(
    page: Page, ok: Any, attempts: int = 4
) -> dict[str, float]:
    """Measures until ``ok(levels)`` holds (audio takes a moment to start), or gives up."""
    levels: dict[str, float] = {}
    for _ in range(attempts):
        levels = await measure(page)
        if ok(levels):
            break
    return levels


@asynccontextmanager
async def chromium(pw: Playwright, chromium_path: Path, fake_audio: Path | None) -> AsyncIterator[Browser]:
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

    (artifacts_dir / "browser-levels.json").write_text(json.dumps(report, indent=2))
    assert errors == [], errors


async def not_open_text(
    browser: Browser, url: str, errors: list[str], screenshot: Path | None = None
) -> str:
    page = await open_page(browser, url, 360, errors)
    await join(page, "Robin", muted=True)
    view = page.get_by_test_id("not-open")
    await expect(view).to_be_visible(timeout=10_000)
    text = await view.inner_text()
    if screenshot is not None:
        await page.screenshot(path=str(screenshot), full_page=True)
    await page.context.close()
    return text


async def test_unknown_link_and_circle_not_yet_open_look_the_same(
    hearth_server: ServerProcess, chromium_path: Path, artifacts_dir: Path
) -> None:
    waiting = hearth_server.create_circle("Circle nobody has opened yet")
    errors: list[str] = []
    async with async_playwright() as pw, chromium(pw, chromium_path, None) as browser:
        unknown = await not_open_text(
            browser,
            f"{hearth_server.base_url}/c/{secrets.token_urlsafe(16)}",
            errors,
            artifacts_dir / "not-open.png",
        )
        not_yet = await not_open_text(
            browser, urljoin(hearth_server.base_url, waiting["join_url"]), errors
        )
    assert "not open right now" in unknown
    assert unknown == not_yet
    assert errors == [], errors
