"""A voice heard through a lossy network, and RTCP that tells both browsers the truth.

The server and two Chromium processes run in a network namespace this test makes itself
(``unshare -n``: loopback only, nothing leaves it), where iptables drops 5% of all UDP at
random: the speaker's upload and the listener's download each lose about 5% of packets.

- The listener hears the speaker's tone in at least 90% of the 20 ms frames of each burst:
  the gaps forwarded as gaps, Chromium's own FEC (switched on by the server's receiver
  reports) and concealment mend them.
- The speaker's `remote-inbound-rtp` (from the server's receiver reports) has a round-trip
  time and a loss near the 5% dropped; the listener's `remote-outbound-rtp` (the server's
  sender reports) counts what the server sent, which the listener's `inbound-rtp` matches
  less the download's loss.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect

from tests.browser.conftest import chromium_args, write_gated_tone
from tests.support.server import REPO_ROOT, ServerProcess, free_port

pytestmark = pytest.mark.browser

LOSS = 0.05
TONE_HZ = 500
MIN_CONTINUITY = 0.9

NAMESPACE_SETUP = (
    "ip link set lo up && "
    "iptables -A INPUT -i lo -p udp -m statistic --mode random "
    f"--probability {LOSS} -j DROP && echo ready && exec sleep 3600"
)

# Each RTCPeerConnection the page makes, kept where the test can ask it for stats.
KEEP_PEER_CONNECTIONS_JS = """
(() => {
    const Native = window.RTCPeerConnection;
    window.__peerConnections = [];
    window.RTCPeerConnection = function (...args) {
        const pc = new Native(...args);
        window.__peerConnections.push(pc);
        return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
})();
"""

STATS_JS = """
async () => {
    const pcs = window.__peerConnections.filter((pc) => pc.connectionState === 'connected');
    if (pcs.length === 0) return null;
    const found = {};
    (await pcs[pcs.length - 1].getStats()).forEach((s) => {
        if (s.kind === 'audio' || s.type.startsWith('remote')) found[s.type] = s;
    });
    return found;
}
"""

# Records what the page receives for a while and returns the tone's amplitude (of full
# scale) in each 20 ms frame, from a Goertzel filter at the tone's frequency.
TONE_FRAMES_JS = """
async ([hz, seconds]) => {
    const audio = document.querySelector('[data-testid="circle-audio"]');
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(audio.srcObject);
    const processor = ctx.createScriptProcessor(4096, 1, 1);
    const frame = Math.round(ctx.sampleRate / 50);
    const coeff = 2 * Math.cos(2 * Math.PI * hz / ctx.sampleRate);
    const amplitudes = [];
    let s1 = 0, s2 = 0, n = 0;
    processor.onaudioprocess = (event) => {
        const samples = event.inputBuffer.getChannelData(0);
        for (let i = 0; i < samples.length; i++) {
            const s0 = samples[i] + coeff * s1 - s2;
            s2 = s1; s1 = s0;
            if (++n === frame) {
                const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
                amplitudes.push(2 * Math.sqrt(Math.max(power, 0)) / frame);
                s1 = 0; s2 = 0; n = 0;
            }
        }
    };
    source.connect(processor);
    processor.connect(ctx.destination);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    source.disconnect();
    processor.disconnect();
    await ctx.close();
    return amplitudes;
}
"""


def continuity(amplitudes: list[float]) -> tuple[float, float]:
    """The share of frames within the speaker's bursts where the tone is at its level (within
    6 dB of the bursts' median), and that level.

    Bursts are runs at level with holes shorter than the speaker's pauses (0.3 s, 15 frames)
    counted inside them; the holes are the frames lost to the network.
    """
    loud = sorted(a for a in amplitudes if a > max(amplitudes) / 4)
    level = loud[len(loud) // 2]
    at_level = [a >= level / 2 for a in amplitudes]
    inside = heard = 0
    hole = 0
    started = False
    for ok in at_level:
        if ok:
            if started and hole < 10:
                inside += hole  # a short hole inside a burst: frames lost
            inside += 1
            heard += 1
            hole = 0
            started = True
        else:
            hole += 1
    return heard / inside, level


@pytest.fixture
def lossy_namespace() -> Iterator[list[str]]:
    """A network namespace with 5% random UDP loss; yields the command prefix to enter it."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace and iptables need root")
    if shutil.which("iptables") is None:
        subprocess.run([str(REPO_ROOT / "scripts/prepare-test-machine")], check=True)
    holder = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", NAMESPACE_SETUP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != b"ready":
        holder.kill()
        _, err = holder.communicate()
        raise RuntimeError(f"could not set up the lossy namespace: {err.decode()}")
    try:
        yield ["nsenter", "-t", str(holder.pid), "-n"]
    finally:
        # The namespace, its loopback and its iptables rules go with the holder.
        holder.terminate()
        holder.wait()


@pytest.fixture
def server_in_namespace(lossy_namespace: list[str], tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(data_dir=tmp_path / "data", port=free_port(), prefix=lossy_namespace)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def chromium_in_namespace(prefix: list[str], chromium_path: Path, folder: Path) -> Path:
    """A launcher Playwright can start: Chromium inside the namespace (Playwright talks to
    it over a pipe, which crosses namespaces)."""
    launcher = folder / "chromium-in-namespace"
    launcher.write_text(f'#!/bin/sh\nexec {" ".join(prefix)} {chromium_path} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return launcher


@asynccontextmanager
async def chromium(pw: Playwright, launcher: Path, fake_audio: Path) -> AsyncIterator[Browser]:
    browser = await pw.chromium.launch(
        executable_path=str(launcher), args=chromium_args(fake_audio), headless=True
    )
    try:
        yield browser
    finally:
        await browser.close()


async def join(browser: Browser, url: str, name: str, *, muted: bool) -> Page:
    context = await browser.new_context()
    await context.add_init_script(KEEP_PEER_CONNECTIONS_JS)
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_test_id("display-name").fill(name)
    await page.get_by_test_id("join-muted").set_checked(muted)
    await page.get_by_test_id("join").click()
    return page


async def stats_when(page: Page, ok: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    stats: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        stats = await page.evaluate(STATS_JS) or {}
        if ok(stats):
            return stats
        await asyncio.sleep(0.5)
    return stats


async def test_a_speaker_is_heard_through_five_percent_loss_and_rtcp_reports_it(
    server_in_namespace: ServerProcess,
    lossy_namespace: list[str],
    chromium_path: Path,
    tmp_path: Path,
) -> None:
    server = server_in_namespace
    circle = server.create_circle("Circle over a lossy network")
    tone = write_gated_tone(tmp_path / "tone.wav", TONE_HZ, seconds=7.5)
    silence = write_gated_tone(tmp_path / "silence.wav", TONE_HZ, amplitude=0.0)
    launcher = chromium_in_namespace(lossy_namespace, chromium_path, tmp_path)

    async with (
        async_playwright() as pw,
        chromium(pw, launcher, tone) as speaker_browser,
        chromium(pw, launcher, silence) as listener_browser,
    ):
        speaker = await join(
            speaker_browser, urljoin(server.base_url, circle["host_url"]), "Ana", muted=False
        )
        await expect(speaker.get_by_test_id("participant")).to_have_count(1, timeout=15_000)
        listener = await join(
            listener_browser, urljoin(server.base_url, circle["join_url"]), "Sam", muted=True
        )
        await expect(listener.get_by_test_id("participant")).to_have_count(2, timeout=15_000)
        await listener.wait_for_function(
            "() => { const a = document.querySelector('[data-testid=\"circle-audio\"]');"
            " return Boolean(a && a.srcObject && a.srcObject.getAudioTracks().length); }",
            timeout=15_000,
        )
        # Let the speaker's browser learn the loss from the receiver reports (FEC on).
        await asyncio.sleep(4)
        amplitudes = await listener.evaluate(TONE_FRAMES_JS, [TONE_HZ, 10])
        heard, level = continuity(amplitudes)
        print(f"continuity {heard:.3f} at level {level:.3f} over {len(amplitudes)} frames")
        assert level > 0.02, f"the tone hardly reached the listener ({level:.4f})"
        assert heard >= MIN_CONTINUITY, f"tone heard in only {heard:.1%} of frames"

        # The server's receiver reports, as the speaker's browser reads them.
        up = await stats_when(
            speaker,
            lambda s: (
                "remote-inbound-rtp" in s
                and s["remote-inbound-rtp"].get("roundTripTime") is not None
            ),
        )
        remote_in, outbound = up.get("remote-inbound-rtp", {}), up.get("outbound-rtp", {})
        print("speaker: remote-inbound-rtp", remote_in, "outbound-rtp", outbound)
        assert remote_in.get("roundTripTime", 0) > 0, remote_in
        upload_loss = remote_in["packetsLost"] / outbound["packetsSent"]
        assert 0.02 <= upload_loss <= 0.09, f"server saw {upload_loss:.1%} of the upload lost"
        assert "fractionLost" in remote_in, remote_in

        # The server's sender reports, as the listener's browser reads them.
        down = await stats_when(
            listener, lambda s: s.get("remote-outbound-rtp", {}).get("packetsSent", 0) > 200
        )
        remote_out, inbound = down.get("remote-outbound-rtp", {}), down.get("inbound-rtp", {})
        print("listener: remote-outbound-rtp", remote_out, "inbound-rtp", inbound)
        sent, received = remote_out["packetsSent"], inbound["packetsReceived"]
        assert remote_out["bytesSent"] > 0
        # Received: what was sent less the download's 5% (a sender report is up to 1.5 s
        # older than the receiver's count, hence the slack above 1).
        assert 0.85 <= received / sent <= 1.1, (received, sent)
        # The listener's browser sees the upload's and the download's loss: the gaps in the
        # forwarded voice stay gaps, not renumbered away.
        lost_share = inbound["packetsLost"] / (inbound["packetsLost"] + received)
        assert 0.04 <= lost_share <= 0.2, f"listener counted {lost_share:.1%} lost"
