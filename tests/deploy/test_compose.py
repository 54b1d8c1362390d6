"""The compose file is whole: checked by its structure, since no Docker engine runs here.

It must run Caddy, coturn, PostgreSQL and Hearth with the configuration files the rehearsal
uses, take every secret from .env, run Hearth without root or the host network, and publish
the media and TURN ports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(\w+)(?::?-[^}]*)?\}")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _env_example() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def test_the_four_services_restart_and_have_healthchecks() -> None:
    services = _compose()["services"]
    assert set(services) == {"caddy", "coturn", "hearth", "db"}
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), name
        assert "network_mode" not in service, f"{name} must not use the host network"


def test_hearth_runs_as_a_user_without_privileges_and_in_production_mode() -> None:
    hearth = _compose()["services"]["hearth"]
    assert hearth["user"].split(":")[0] not in ("0", "root")
    assert "USER hearth" in (REPO / "Dockerfile").read_text()
    env = hearth["environment"]
    assert env["HEARTH_PRODUCTION"] == "1"
    assert env["HEARTH_PUBLIC_URL"].startswith("https://")
    assert hearth["depends_on"]["db"]["condition"] == "service_healthy"


def test_the_unprivileged_user_may_take_the_priority_hearth_asks_for() -> None:
    from server.config import DEFAULT_NICE

    # RLIMIT_NICE allows nice values down to 20 - limit; without it setpriority is refused.
    allowed = 20 - int(_compose()["services"]["hearth"]["ulimits"]["nice"])
    assert allowed <= DEFAULT_NICE


def test_no_secret_is_written_in_the_compose_file_and_env_example_names_every_variable() -> None:
    text = COMPOSE.read_text()
    used = set(VARIABLE.findall(text))
    example = _env_example()
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    for secret in ("POSTGRES_PASSWORD", "HEARTH_TURN_SECRET", "HEARTH_ADMIN_TOKEN"):
        assert example[secret] == "", f"{secret} must be empty in .env.example"
    for service in _compose()["services"].values():
        env = service.get("environment", {})
        for key, value in env.items():
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN")):
                assert VARIABLE.fullmatch(str(value)), f"{key} is written inline"
    assert "postgresql+asyncpg://hearth:${POSTGRES_PASSWORD}@db" in text


def test_media_and_turn_ports_are_published_and_volumes_are_named() -> None:
    compose = _compose()
    services = compose["services"]
    media = services["hearth"]["ports"]
    # The same range outside and inside: the answer names the ports Hearth bound.
    assert "${PUBLIC_IP}:${HEARTH_MEDIA_PORTS}:${HEARTH_MEDIA_PORTS}/udp" in media
    turn = " ".join(services["coturn"]["ports"])
    for port in ("3478:3478/udp", "3478:3478/tcp", "443:443/tcp"):
        assert port in turn
    # The relay ports are for Hearth alone, on the compose network: never published.
    assert "49152" not in turn
    caddy = " ".join(services["caddy"]["ports"])
    assert ":443:443" in caddy and ":80:80" in caddy
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "${")):
                assert source in compose["volumes"], source
    assert set(compose["volumes"]) == {"caddy-data", "caddy-config", "hearth-data", "db-data"}


def test_caddy_and_coturn_use_the_files_the_rehearsal_uses() -> None:
    services = _compose()["services"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert (
        "./deploy/turnserver.conf:/etc/coturn/turnserver.conf:ro" in services["coturn"]["volumes"]
    )
    rehearsal = (REPO / "tests/deploy/test_rehearsal.py").read_text()
    assert '"deploy" / "Caddyfile"' in rehearsal and '"deploy" / "turnserver.conf"' in rehearsal
    # coturn relays only to Hearth's fixed address, which Hearth offers for media.
    hearth = services["hearth"]
    address = hearth["networks"]["front"]["ipv4_address"]
    assert f"--allowed-peer-ip={address}" in services["coturn"]["command"]
    assert hearth["environment"]["HEARTH_ICE_ADDRESSES"] == address
    # TLS on 443 from the certificate deploy/turn-cert-hook copies (as the rehearsal does),
    # and the page is offered TURN over UDP, TCP and TLS on 443.
    assert "${TURN_CERT_DIR}:/certs:ro" in services["coturn"]["volumes"]
    assert {"--cert=/certs/fullchain.pem", "--pkey=/certs/privkey.pem"} <= set(
        services["coturn"]["command"]
    )
    assert '"deploy" / "turn-cert-hook"' in rehearsal
    assert not _env_example()["TURN_CERT_DIR"].startswith("/etc/letsencrypt/")
    urls = hearth["environment"]["HEARTH_TURN_URLS"].split(",")
    assert urls == [
        "turn:${TURN_DOMAIN}:3478?transport=udp",
        "turn:${TURN_DOMAIN}:3478?transport=tcp",
        "turns:${TURN_DOMAIN}:443?transport=tcp",
    ]


@pytest.mark.skipif(shutil.which("turnserver") is None, reason="coturn is not installed")
def test_every_coturn_option_is_one_coturn_knows() -> None:
    # `turnserver -h` prints every option it knows, and starts nothing.
    help_text = subprocess.run(
        ["turnserver", "-h"], capture_output=True, text=True, check=False, timeout=30
    ).stdout
    options = [
        line.split("=")[0].strip()
        for line in (REPO / "deploy/turnserver.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    options += [
        arg[2:].split("=")[0]
        for arg in _compose()["services"]["coturn"]["command"]
        if arg.startswith("--")
    ]
    for option in options:
        assert f"--{option}" in help_text, option


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
def test_the_caddyfile_adapts_with_the_compose_settings(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **{k: str(v) for k, v in _compose()["services"]["caddy"]["environment"].items()},
    }
    env.update(HEARTH_DOMAIN="circles.example.org", ACME_EMAIL="admin@example.org")
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(REPO / "deploy/Caddyfile")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert '"dial":"hearth:8080"' in adapted
    assert "Strict-Transport-Security" in adapted
    assert "circles.example.org" in adapted
