"""Janus AudioBridge (Debian's ``janus``) started by the bench with a config of its own.

Only what the bench needs is loaded (the AudioBridge plugin and the HTTP transport, through
folders holding just those two), the HTTP API is bound to 127.0.0.1, nothing is recorded.

Janus's ICE (libnice) never gathers a candidate on a loopback interface, so Janus and its
bots run in a private network namespace of their own (``unshare -n``): loopback plus a veth
pair whose two ends are both inside it, addressed 10.213.0.1. The namespace has no route to
anything else, so no packet can leave the machine; from the host's point of view all of it
is local traffic, like 127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
MEDIA_ADDRESS = "10.213.0.1"
NAMESPACE_SETUP = (
    "ip link set lo up && ip link add hb0 type veth peer name hb1 && "
    f"ip addr add {MEDIA_ADDRESS}/24 dev hb0 && ip link set hb0 up && ip link set hb1 up && "
    "echo ready && exec sleep 3600"
)


class Namespace:
    """A private network namespace, kept alive by a sleeping holder process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", NAMESPACE_SETUP], stdout=subprocess.PIPE
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != b"ready":
            raise RuntimeError("could not set up the bench's network namespace")

    def prefix(self) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n"]

    def close(self) -> None:
        self.holder.terminate()
        self.holder.wait()


def post_in(namespace: Namespace, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to Janus's API from inside the namespace (where its HTTP port is)."""
    out = subprocess.run(
        [*namespace.prefix(), sys.executable, "-m", "bench.janus", url, json.dumps(body)],
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout
    reply: dict[str, Any] = json.loads(out)
    return reply


JANUS_JCFG = """
general: {{
    configs_folder = "{conf}"
    plugins_folder = "{plugins}"
    transports_folder = "{transports}"
    events_folder = "{events}"
    loggers_folder = "{events}"
    debug_level = 4
    session_timeout = 120
    hide_dependencies = true
}}
media: {{
    ipv6 = false
    rtp_port_range = "{ports}"
}}
nat: {{
    ice_enforce_list = "hb0"
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
    def __init__(self, workdir: Path, port: int, namespace: Namespace) -> None:
        self.workdir = workdir
        self.port = port
        self.namespace = namespace
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
            [
                *self.namespace.prefix(),
                "janus",
                "-C",
                str(conf / "janus.jcfg"),
                "-F",
                str(conf),
                "--disable-colors",
            ],
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
            except (OSError, subprocess.CalledProcessError):
                time.sleep(0.2)
        raise RuntimeError(f"janus did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return (self.workdir / "janus.log").read_text(errors="replace")[-4000:]

    def post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = post_in(self.namespace, url, body)
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


def _post_here(url: str, body: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps({**body, "transaction": secrets.token_hex(6)}).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        reply: dict[str, Any] = json.loads(response.read())
    return reply


if __name__ == "__main__":
    # python -m bench.janus URL JSON: one API call, run inside the namespace by post_in.
    print(json.dumps(_post_here(sys.argv[1], json.loads(sys.argv[2]))))
