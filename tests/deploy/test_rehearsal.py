"""The deployment of docs/deploy.md, rehearsed end to end on one machine.

Caddy (deploy/Caddyfile, its local CA standing in for Let's Encrypt), coturn
(deploy/turnserver.conf), PostgreSQL and Hearth run in a "server" namespace behind a 1:1
NAT. Chromium in "home" (behind NAT, no UDP out) opens the HTTPS join link and its audio
relays through coturn over TCP; Chromium at "work" (behind NAT, nothing out but TCP to 443)
relays over TURN over TLS on 443; Chromium in "open" connects directly. Each hears and is
heard. The time from pressing Join to a connected peer is measured each way and printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect

from tests.browser.conftest import chromium_args, write_gated_tone
from tests.browser.test_two_people_hear_each_other import (
    ABSENT_DB,
    HEARD_DB,
    above_floor,
    measure_until,
    row,
)
from tests.deploy import rehearsal as r

_MISSING = r.missing_tools()
pytestmark = [
    pytest.mark.browser,
    # Checked before the installed wheel is built for it.
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"the rehearsal needs {', '.join(_MISSING)} (scripts/prepare-test-machine)",
    ),
]

OPEN_TONE, HOME_TONE = 500, 1300
ADMIN_TOKEN = secrets.token_urlsafe(24)
TURN_SECRET = secrets.token_urlsafe(24)

# Test-only instrumentation: keeps the page's peer connections and when one first connected.
WATCH_PEERS_JS = """
(() => {
    const Native = window.RTCPeerConnection;
    const h = { pcs: [], connectedAt: null, config: null, steps: {} };
    window.__h12 = h;
    const mark = (step) => { if (!(step in h.steps)) h.steps[step] = performance.now(); };
    window.RTCPeerConnection = function (config) {
        const pc = new Native(config);
        h.pcs.push(pc);
        h.config = config;
        mark('peer');
        const setRemote = pc.setRemoteDescription.bind(pc);
        pc.setRemoteDescription = (d) => { mark('answer'); return setRemote(d); };
        pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') mark('gathered');
        });
        pc.addEventListener('iceconnectionstatechange', () => {
            if (pc.iceConnectionState === 'connected') mark('ice');
        });
        pc.addEventListener('connectionstatechange', () => {
            if (pc.connectionState === 'connected' && window.__h12.connectedAt === null) {
                window.__h12.connectedAt = performance.now();
            }
        });
        return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
})();
"""

SELECTED_PAIR_JS = """
async () => {
    const pc = window.__h12.pcs[window.__h12.pcs.length - 1];
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
            pair = stats.get(s.selectedCandidatePairId);
        }
    });
    if (!pair) return null;
    const local = stats.get(pair.localCandidateId);
    const remote = stats.get(pair.remoteCandidateId);
    return {
        local: { type: local.candidateType, relayProtocol: local.relayProtocol || null,
                 address: local.address },
        remote: { type: remote.candidateType, address: remote.address, port: remote.port },
    };
}
"""


def _start_server_side(processes: r.Processes, folder: Path, venv: Path) -> None:
    database_url = r.start_postgres(processes, folder)
    base_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(folder)}
    hearth_env = {
        **base_env,
        "PYTHONUNBUFFERED": "1",
        # docs/deploy.md, "The Hearth service": the same settings, this topology's values.
        "HEARTH_PRODUCTION": "1",
        "HEARTH_PUBLIC_URL": "https://hearth.test",
        "HEARTH_HOST": "127.0.0.1",
        "HEARTH_PORT": "8080",
        "HEARTH_DATA_DIR": str(folder / "hearth-data"),
        "HEARTH_DATABASE_URL": database_url,
        "HEARTH_ADMIN_TOKEN": ADMIN_TOKEN,
        "HEARTH_ICE_ADDRESSES": r.HEARTH_PRIVATE,
        "HEARTH_MEDIA_PUBLIC_ADDRESS": r.HEARTH_PUBLIC,
        "HEARTH_MEDIA_PORTS": r.MEDIA_PORTS,
        "HEARTH_TURN_SECRET": TURN_SECRET,
        "HEARTH_TURN_URLS": (
            "turn:turn.hearth.test:3478?transport=udp,turn:turn.hearth.test:3478?transport=tcp,"
            "turns:turn.hearth.test:443?transport=tcp"
        ),
        "HEARTH_METRICS_PORT": "9090",
        "HEARTH_LOG_FORMAT": "json",
    }
    # The installed wheel's `hearth serve`, as the hearth.service unit runs it.
    processes.start("hearth", r.SERVER, [str(venv / "bin" / "hearth"), "serve"], hearth_env)
    caddy_env = {
        **base_env,
        "XDG_DATA_HOME": str(folder / "caddy-data"),
        "XDG_CONFIG_HOME": str(folder / "caddy-config"),
        "HEARTH_DOMAIN": "hearth.test",
        "HEARTH_UPSTREAM": "127.0.0.1:8080",
        "CADDY_BIND": r.HEARTH_PRIVATE,
        "ACME_EMAIL": "rehearsal@hearth.test",
        # Caddy's own CA instead of an ACME one (no internet here), never installed system-wide.
        "CADDY_EXTRA": "local_certs\n\tskip_install_trust\n\tadmin off",
    }
    processes.start(
        "caddy",
        r.SERVER,
        [
            "caddy",
            "run",
            "--adapter",
            "caddyfile",
            "--config",
            str(r.REPO / "deploy" / "Caddyfile"),
        ],
        caddy_env,
    )
    # coturn's TLS certificate for the TURN name, from the CA the browsers trust, handed to
    # coturn by certbot's deploy hook as docs/deploy.md has it.
    authority = folder / "caddy-data" / "caddy" / "pki" / "authorities" / "local"
    r.wait_until(
        lambda: all((authority / f).exists() for f in ("root.crt", "root.key")),
        "Caddy's local CA",
    )
    lineage = r.turn_certificate(folder, authority / "root.crt", authority / "root.key")
    certs = folder / "turn-certs"
    hook_env = {
        **base_env,
        "RENEWED_LINEAGE": str(lineage),
        "TURN_CERT_DIR": str(certs),
        "TURN_CERT_USER": "turnserver",
        "TURN_RESTART": "true",  # coturn starts just below
    }
    r.run(str(r.REPO / "deploy" / "turn-cert-hook"), env=hook_env)
    processes.start(
        "coturn",
        r.SERVER,
        [
            # As the hearth-turn unit of docs/deploy.md: User=turnserver with
            # AmbientCapabilities=CAP_NET_BIND_SERVICE (for 443).
            "setpriv",
            "--reuid=turnserver",
            "--regid=turnserver",
            "--init-groups",
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
            "turnserver",
            "-c",
            str(r.REPO / "deploy" / "turnserver.conf"),
            "--realm=turn.hearth.test",
            f"--static-auth-secret={TURN_SECRET}",
            f"--listening-ip={r.TURN_PRIVATE}",
            f"--relay-ip={r.TURN_PRIVATE}",
            f"--allowed-peer-ip={r.HEARTH_PRIVATE}",
            f"--cert={certs / 'fullchain.pem'}",
            f"--pkey={certs / 'privkey.pem'}",
            "--pidfile=",
        ],
        base_env,
    )
    r.wait_until(
        lambda: (
            r.in_ns(
                r.SERVER,
                sys.executable,
                "-c",
                "import urllib.request;urllib.request.urlopen("
                "'http://127.0.0.1:8080/readyz',timeout=1)",
                check=False,
            ).returncode
            == 0
        ),
        "Hearth ready",
        timeout=60,
    )


def _scrape(pattern: str) -> float:
    text = r.in_ns(
        r.SERVER,
        sys.executable,
        "-c",
        "import urllib.request;print(urllib.request.urlopen("
        "'http://127.0.0.1:9090/metrics',timeout=2).read().decode())",
    ).stdout
    match = re.search(rf"^{pattern} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{pattern} not in the metrics"
    return float(match.group(1))


async def _join_timed(page: Page, name: str) -> float:
    """Presses Join and returns the milliseconds until the page's peer connection connects."""
    await page.get_by_test_id("display-name").fill(name)
    await page.get_by_test_id("join-muted").set_checked(False)
    started = await page.evaluate("() => performance.now()")
    await page.get_by_test_id("join").click()
    await page.wait_for_function("() => window.__h12.connectedAt !== null", timeout=30_000)
    steps = await page.evaluate("() => window.__h12.steps")
    print(name, {k: round(float(v) - float(started)) for k, v in steps.items()})
    return float(await page.evaluate("() => window.__h12.connectedAt")) - float(started)


async def test_people_behind_nat_without_udp_hear_and_are_heard_through_turn_tcp_and_tls(
    installed_hearth: Path,
) -> None:
    # Not pytest's tmp_path: PostgreSQL runs as its own user and must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="h12-rehearsal-"))
    os.chmod(folder, 0o755)
    processes = r.Processes(logs=folder)
    report: dict[str, Any] = {}
    with r.topology():
        try:
            _start_server_side(processes, folder, installed_hearth)
            root = folder / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
            r.wait_until(root.exists, "Caddy's local CA")
            home_dir = r.trust_store(folder, root)
            open_tone = write_gated_tone(folder / "open.wav", OPEN_TONE)
            home_tone = write_gated_tone(folder / "home.wav", HOME_TONE)
            async with async_playwright() as pw:
                browsers = {
                    ns: await pw.chromium.launch(
                        executable_path=str(r.chromium_wrapper(folder, ns, home_dir)),
                        args=chromium_args(tone),
                    )
                    # Home and work take turns with the same tone: one is heard at a time.
                    for ns, tone in ((r.OPEN, open_tone), (r.HOME, home_tone), (r.WORK, home_tone))
                }
                try:
                    await _rehearse(browsers[r.OPEN], browsers[r.HOME], browsers[r.WORK], report)
                finally:
                    for browser in browsers.values():
                        await browser.close()
        except BaseException:
            for name in ("hearth", "caddy", "coturn", "postgres"):
                print(f"--- {name} log ---\n{processes.log(name)[-3000:]}")
            raise
        finally:
            processes.stop_all()
    print("rehearsal:", json.dumps(report))
    hearth_log = processes.log("hearth")
    shutil.rmtree(folder, ignore_errors=True)
    for secret in (ADMIN_TOKEN, TURN_SECRET, "Robin", "Kai", "Lee", "10.112.3.", "10.112.2."):
        assert secret not in hearth_log, f"the server's log holds {secret!r}"


async def _rehearse(
    open_browser: Any, home_browser: Any, work_browser: Any, report: dict[str, Any]
) -> None:
    open_context = await open_browser.new_context()
    await open_context.add_init_script(WATCH_PEERS_JS)
    host = await open_context.new_page()
    # The admin schedules a circle from their browser, over HTTPS through Caddy.
    await host.goto("https://hearth.test/admin")
    created = await host.evaluate(
        """async (token) => {
            const response = await fetch('/api/v1/circles', {
                method: 'POST',
                headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
                body: JSON.stringify({
                    title: 'Rehearsal circle', starts_at: new Date().toISOString(),
                    duration_minutes: 60, timezone: 'Europe/Berlin'}),
            });
            return {status: response.status, body: await response.json(),
                    hsts: response.headers.get('strict-transport-security')};
        }""",
        ADMIN_TOKEN,
    )
    assert created["status"] == 201, created
    assert created["hsts"], "Caddy sends HSTS"
    circle = created["body"]
    # Links come from HEARTH_PUBLIC_URL, never from the request.
    assert circle["join_url"].startswith("https://hearth.test/c/"), circle
    await host.goto(circle["host_url"])
    report["host_join_ms"] = round(await _join_timed(host, "Robin"))
    config = await host.evaluate("() => window.__h12.config")
    urls = [u for server in config["iceServers"] for u in server["urls"]]
    assert urls and all(u.startswith(("turn:", "turns:")) for u in urls), config
    assert all("turn.hearth.test" in u for u in urls), "only this deployment's TURN"

    home_context = await home_browser.new_context()
    await home_context.add_init_script(WATCH_PEERS_JS)
    home = await home_context.new_page()
    await home.goto(circle["join_url"])
    report["home_turn_tcp_join_ms"] = round(await _join_timed(home, "Kai"))
    pair = await home.evaluate(SELECTED_PAIR_JS)
    report["home_pair"] = pair
    assert pair is not None
    assert pair["local"]["type"] == "relay", pair
    assert pair["local"]["relayProtocol"] in ("tcp", "tls"), pair

    for page in (host, home):
        await expect(page.get_by_test_id("participant")).to_have_count(2, timeout=15_000)
    assert _scrape("hearth_participants") == 2

    await _hear_each_other(host, home, "home", report)

    # Home leaves; someone at work, where only TCP to 443 goes out, joins through TURN/TLS.
    await home.get_by_test_id("leave").click()
    await expect(row(host, "Kai")).to_have_count(0, timeout=15_000)
    work_context = await work_browser.new_context()
    await work_context.add_init_script(WATCH_PEERS_JS)
    work = await work_context.new_page()
    await work.goto(circle["join_url"])
    report["work_turn_tls_join_ms"] = round(await _join_timed(work, "Lee"))
    pair = await work.evaluate(SELECTED_PAIR_JS)
    report["work_pair"] = pair
    assert pair is not None
    assert pair["local"]["type"] == "relay", pair
    assert pair["local"]["relayProtocol"] == "tls", pair
    await expect(row(host, "Lee")).to_have_count(1, timeout=15_000)
    await _hear_each_other(host, work, "work", report)

    # A participant on the open network, for the same measure without TURN.
    guest_context = await open_browser.new_context()
    await guest_context.add_init_script(WATCH_PEERS_JS)
    guest = await guest_context.new_page()
    await guest.goto(circle["join_url"])
    report["open_direct_join_ms"] = round(await _join_timed(guest, "Ash"))
    pair = await guest.evaluate(SELECTED_PAIR_JS)
    report["open_pair"] = pair
    assert pair["local"]["type"] != "relay", pair
    # The server's media address as the 1:1 NAT publishes it, on a port of the fixed range.
    assert pair["remote"]["address"] == r.HEARTH_PUBLIC, pair
    assert 40000 <= int(pair["remote"]["port"]) <= 40099, pair
    await expect(row(host, "Ash")).to_have_count(1, timeout=15_000)
    assert _scrape("hearth_participants") == 3


async def _hear_each_other(host: Page, other: Page, where: str, report: dict[str, Any]) -> None:
    """The host (open network, OPEN_TONE) and ``other`` (HOME_TONE) hear each other."""

    def hears(tone: int, own: int) -> Any:
        return lambda lv: above_floor(lv, tone) > HEARD_DB and above_floor(lv, own) < ABSENT_DB

    host_levels, other_levels = await asyncio.gather(
        measure_until(host, hears(HOME_TONE, OPEN_TONE)),
        measure_until(other, hears(OPEN_TONE, HOME_TONE)),
    )
    report[f"open_hears_{where}"], report[f"{where}_hears"] = host_levels, other_levels
    assert above_floor(host_levels, HOME_TONE) > HEARD_DB, host_levels
    assert above_floor(other_levels, OPEN_TONE) > HEARD_DB, other_levels
    assert above_floor(other_levels, HOME_TONE) < ABSENT_DB, other_levels
