"""Janus AudioBridge (Debian's ``janus``) started by the bench with a config of its own.

Only what the bench needs is loaded (the AudioBridge plugin and the HTTP transport, through
folders holding just those two), everything is bound to 127.0.0.1, nothing is recorded.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

LIB = Path("/usr/lib/x86_64-linux-gnu/janus")

JANUS_JCFG = """
general: {{
    configs_folder = "{conf}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{events}"
    loggers_folder = "{events}"
    debug_level = 3
    session_timeout = 120
    hide_dependencies = true
}}
media: {{
    ipv6 = false
    rtp_port_range = "{ports}"
}}
nat: {{
    ice_enforce_list = "127.0.0.1"
    ice_lite = false
}}
plugins: {{
}}
transports: {{
}}
events: {{
    broadcast = false
}}
"""

HTTP_JCFG = """
general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
}}
"""

AUDIOBRIDGE_JCFG = """
general: {
    string_ids = false
}
"""


class JanusProcess:
    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/janus"

    def start(self, timeout: float = 20) -> None:
        conf, plugins, transports, events = (
            self.workdir / name for name in ("conf", "plugins", "transports", "events")
        )
        for folder in (conf, plugins, transports, events):
            folder.mkdir(parents=True, exist_ok=True)
        (plugins / "libjanus_audiobridge.so").symlink_to(LIB / "plugins/libjanus_audiobridge.so")
        (transports / "libjanus_http.so").symlink_to(LIB / "transports/libjanus_http.so")
        ports = f"{40000 + secrets.randbelow(2000) * 10}-{60000}"
        (conf / "janus.jcfg").write_text(
            JANUS_JCFG.format(
                conf=conf, plugins=plugins, transports=transports, events=events, ports=ports
            )
        )
        (conf / "janus.transport.http.jcfg").write_text(HTTP_JCFG.format(port=self.port))
        (conf / "janus.plugin.audiobridge.jcfg").write_text(AUDIOBRIDGE_JCFG)
        log = (self.workdir / "janus.log").open("ab")
        self.process = subprocess.Popen(
            ["janus", "-C", str(conf / "janus.jcfg"), "-F", str(conf), "--disable-colors"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"janus exited:\n{self.log_text()}")
            try:
                self.post(self.url, {"janus": "info"})
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"janus did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return (self.workdir / "janus.log").read_text(errors="replace")[-4000:]

    def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({**body, "transaction": secrets.token_hex(6)}).encode()
        request = urllib.request.Request(url, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            reply: dict[str, Any] = json.loads(response.read())
        if reply.get("janus") == "error":
            raise RuntimeError(str(reply))
        return reply

    def create_rooms(self, rooms: list[int]) -> None:
        session = self.post(self.url, {"janus": "create"})["data"]["id"]
        handle = self.post(
            f"{self.url}/{session}", {"janus": "attach", "plugin": "janus.plugin.audiobridge"}
        )["data"]["id"]
        for room in rooms:
            reply = self.post(
                f"{self.url}/{session}/{handle}",
                {
                    "janus": "message",
                    "body": {
                        "request": "create",
                        "room": room,
                        "permanent": False,
                        "sampling_rate": 48000,
                        "default_bitrate": 32000,
                        "record": False,
                    },
                },
            )
            data = reply.get("plugindata", {}).get("data", {})
            if data.get("audiobridge") != "created":
                raise RuntimeError(f"room {room} not created: {reply}")
        self.post(f"{self.url}/{session}", {"janus": "destroy"})

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
