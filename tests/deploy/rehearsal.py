"""The topology of a real deployment, built on this machine with network namespaces.

    home (10.112.3.2) --NAT, no UDP out--+
    work (10.112.4.2) --NAT, TCP 443 only-+
                                         +-- wan (the internet; 1:1 NAT for the server) --+
    open (10.112.2.2) -------------------+                                                |
                                                                                          |
    server: Caddy (10.112.1.2:443) -> Hearth (127.0.0.1:8080), media 10.112.1.2:40000-40099
            coturn (10.112.1.3: 3478 UDP and TCP, 443 TLS)
            PostgreSQL (127.0.0.1:5432, its own cluster)

Public addresses: hearth.test = 10.112.0.10 (-> 10.112.1.2), turn.hearth.test = 10.112.0.11
(-> 10.112.1.3), written into each namespace's /etc/hosts (``ip netns exec`` mounts
/etc/netns/<name>/hosts there). The server's private addresses are not reachable from
outside: like a cloud VM, only what the 1:1 NAT forwards is.

Every name starts with ``h12-``; namespaces, their veths and their iptables rules (all inside
the namespaces) go when the namespaces are deleted; processes are stopped by their PIDs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = "h12-"
WAN, SERVER, HOME, OPEN, WORK = "h12-wan", "h12-srv", "h12-home", "h12-open", "h12-work"
NAMESPACES = (WAN, SERVER, HOME, OPEN, WORK)
HEARTH_PUBLIC, TURN_PUBLIC = "10.112.0.10", "10.112.0.11"
HEARTH_PRIVATE, TURN_PRIVATE = "10.112.1.2", "10.112.1.3"
HOSTS = f"{HEARTH_PUBLIC} hearth.test\n{TURN_PUBLIC} turn.hearth.test\n127.0.0.1 localhost\n"
MEDIA_PORTS = "40000-40099"


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, env=env)


def in_ns(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", ns, *args, check=check)


def missing_tools() -> list[str]:
    tools = ["ip", "iptables", "caddy", "turnserver", "certutil", "openssl", "runuser", "setpriv"]
    tools.append("/usr/bin/chromium")
    missing = [t for t in tools if shutil.which(t) is None]
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing.append("postgresql (initdb)")
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    return missing


def _links() -> list[tuple[str, str, str, str, list[str]]]:
    # (namespace, veth in wan, veth in namespace, wan's address, namespace's addresses)
    return [
        (SERVER, "h12-srv-w", "h12-srv-s", "10.112.1.1/24", [HEARTH_PRIVATE, TURN_PRIVATE]),
        (OPEN, "h12-open-w", "h12-open-o", "10.112.2.1/24", ["10.112.2.2"]),
        (HOME, "h12-home-w", "h12-home-h", "10.112.3.1/24", ["10.112.3.2"]),
        (WORK, "h12-work-w", "h12-work-o", "10.112.4.1/24", ["10.112.4.2"]),
    ]


def delete_topology() -> None:
    for ns in NAMESPACES:
        run("ip", "netns", "delete", ns, check=False)
        shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


def build_topology() -> None:
    delete_topology()  # what a killed earlier run may have left
    for ns in NAMESPACES:
        run("ip", "netns", "add", ns)
        in_ns(ns, "ip", "link", "set", "lo", "up")
        Path(f"/etc/netns/{ns}").mkdir(parents=True, exist_ok=True)
        Path(f"/etc/netns/{ns}/hosts").write_text(HOSTS)
    for ns, wan_end, ns_end, wan_address, addresses in _links():
        run("ip", "link", "add", wan_end, "netns", WAN, "type", "veth", "peer", ns_end, "netns", ns)
        in_ns(WAN, "ip", "addr", "add", wan_address, "dev", wan_end)
        in_ns(WAN, "ip", "link", "set", wan_end, "up")
        for address in addresses:
            in_ns(ns, "ip", "addr", "add", f"{address}/24", "dev", ns_end)
        in_ns(ns, "ip", "link", "set", ns_end, "up")
        in_ns(ns, "ip", "route", "add", "default", "via", wan_address.split("/")[0])
    in_ns(WAN, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nat = ["ip", "netns", "exec", WAN, "iptables", "-t", "nat"]
    flt = ["ip", "netns", "exec", WAN, "iptables"]
    for public, private in ((HEARTH_PUBLIC, HEARTH_PRIVATE), (TURN_PUBLIC, TURN_PRIVATE)):
        # The server's 1:1 NAT: its public address forwards to its private one, both ways.
        run(*nat, "-A", "PREROUTING", "-d", public, "-j", "DNAT", "--to-destination", private)
        run(*nat, "-A", "POSTROUTING", "-s", private, "-j", "SNAT", "--to-source", public)
    # Home: behind a NAT that rewrites its address, and its network lets no UDP out.
    run(*nat, "-A", "POSTROUTING", "-s", "10.112.3.0/24", "-j", "MASQUERADE")
    run(*flt, "-A", "FORWARD", "-s", "10.112.3.0/24", "-p", "udp", "-j", "DROP")
    # Work: an office network behind NAT that lets nothing out but TCP to port 443 (no UDP,
    # no TURN on 3478): only TURN over TLS on 443 reaches the relay.
    run(*nat, "-A", "POSTROUTING", "-s", "10.112.4.0/24", "-j", "MASQUERADE")
    work = ["-A", "FORWARD", "-s", "10.112.4.0/24"]
    run(*flt, *work, "-p", "tcp", "--dport", "443", "-j", "ACCEPT")
    run(*flt, *work, "-j", "DROP")
    # Like a cloud: the server's private addresses are reached only through the 1:1 NAT,
    # and its firewall opens only the ports of docs/deploy.md ("Firewall"); replies to
    # connections the server opened itself (SNAT) come back.
    to_server = [*flt, "-A", "FORWARD", "-m", "conntrack"]
    run(*to_server, "-d", "10.112.1.0/24", "--ctstate", "SNAT", "-j", "ACCEPT")
    media_ports = MEDIA_PORTS.replace("-", ":")
    for address, protocol, ports in (
        (HEARTH_PRIVATE, "tcp", "80,443"),  # Caddy
        (HEARTH_PRIVATE, "udp", media_ports),  # Hearth's media (HEARTH_MEDIA_PORTS)
        (TURN_PRIVATE, "udp", "3478"),  # TURN
        (TURN_PRIVATE, "tcp", "3478,443"),  # TURN over TCP, and TLS on 443
    ):
        run(
            *to_server,
            "--ctstate",
            "DNAT",
            "-d",
            address,
            "-p",
            protocol,
            "-m",
            "multiport",
            "--dports",
            ports,
            "-j",
            "ACCEPT",
        )
    run(*flt, "-A", "FORWARD", "-d", "10.112.1.0/24", "-j", "DROP")


@dataclass
class Processes:
    """Processes started inside namespaces, each stopped by its own PID."""

    logs: Path
    started: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(
        self,
        name: str,
        ns: str,
        args: list[str],
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> subprocess.Popen[bytes]:
        command = ["ip", "netns", "exec", ns]
        if user:
            command += ["runuser", "-u", user, "--"]
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [*command, *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append((name, process))
        return process

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _, process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def start_postgres(processes: Processes, folder: Path) -> str:
    """A PostgreSQL cluster of the test's own, on the server namespace's loopback."""
    bin_dir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    data = folder / "pg"
    data.mkdir()
    shutil.chown(folder, "postgres")
    shutil.chown(data, "postgres")
    run(
        "runuser",
        "-u",
        "postgres",
        "--",
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "hearth",
        "--auth=trust",
        "-E",
        "UTF8",
    )
    processes.start(
        "postgres",
        SERVER,
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(folder),
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-c",
            "fsync=off",
        ],
        user="postgres",
    )
    wait_until(
        lambda: (
            in_ns(
                SERVER, str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", "5432", check=False
            ).returncode
            == 0
        ),
        "PostgreSQL accepting connections",
    )
    return "postgresql+asyncpg://hearth@127.0.0.1:5432/postgres"


def turn_certificate(folder: Path, ca_cert: Path, ca_key: Path) -> Path:
    """The TURN name's certificate, signed by Caddy's local CA (which the browsers trust),
    laid out as certbot leaves it (live/<name>/*.pem linking into archive/<name>/), standing
    in for the certbot certificate of docs/deploy.md. Returns the live folder."""
    archive = folder / "letsencrypt" / "archive" / "turn.hearth.test"
    live = folder / "letsencrypt" / "live" / "turn.hearth.test"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    key, request, cert = archive / "privkey1.pem", folder / "turn.csr", archive / "fullchain1.pem"
    extensions = folder / "turn.ext"
    extensions.write_text(
        "subjectAltName=DNS:turn.hearth.test\nextendedKeyUsage=serverAuth\n"
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    )
    run(
        "openssl",
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=turn.hearth.test",
        "-keyout",
        str(key),
        "-out",
        str(request),
    )
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        str(request),
        "-CA",
        str(ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    key.chmod(0o600)
    for name, target in (("fullchain.pem", cert), ("privkey.pem", key)):
        (live / name).symlink_to(Path("../../archive/turn.hearth.test") / target.name)
    return live


def trust_store(folder: Path, root_cert: Path) -> Path:
    """A HOME whose NSS database (which Chromium reads) trusts Caddy's local CA."""
    home = folder / "browser-home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    run("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password")
    run(
        "certutil",
        "-d",
        f"sql:{nssdb}",
        "-A",
        "-t",
        "C,,",
        "-n",
        "h12-caddy-local",
        "-i",
        str(root_cert),
    )
    return home


def chromium_wrapper(folder: Path, ns: str, home: Path) -> Path:
    """An executable Playwright launches: Debian's Chromium inside namespace ``ns``."""
    wrapper = folder / f"chromium-{ns}"
    wrapper.write_text(
        f'#!/bin/sh\nexec ip netns exec {ns} env HOME="{home}" /usr/bin/chromium "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@contextlib.contextmanager
def topology() -> Iterator[None]:
    build_topology()
    try:
        yield
    finally:
        delete_topology()
