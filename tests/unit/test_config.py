"""Settings come from HEARTH_* variables, typed and strict: a wrong value stops the start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.config import ConfigError, Settings, settings_from_env

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("0", False), ("no", False), ("off", False), ("true", True), ("1", True)],
)
def test_audio_forwarding_false_means_false(value: str, expected: bool) -> None:
    assert settings_from_env({"HEARTH_AUDIO_FORWARDING": value}).audio_forwarding is expected


def test_values_are_typed_and_an_empty_one_is_unset() -> None:
    settings = settings_from_env(
        {
            "HEARTH_PORT": "9000",
            "HEARTH_ICE_ADDRESSES": " 10.0.0.2, 192.0.2.7 ,",
            "HEARTH_PUBLIC_URL": "https://circles.example/",
            "HEARTH_DEFAULT_CAPACITY": "12",
            "HEARTH_DATABASE_URL": "",
            "HEARTH_ADMIN_TOKEN": "",
        }
    )
    assert settings == Settings(
        port=9000,
        ice_addresses=("10.0.0.2", "192.0.2.7"),
        public_url="https://circles.example",
        default_capacity=12,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEARTH_PORT", "eighty"),
        ("HEARTH_PORT", "70000"),
        ("HEARTH_WORKERS", "0"),
        ("HEARTH_AUDIO_FORWARDING", "maybe"),
        ("HEARTH_DEFAULT_CAPACITY", "1001"),
        ("HEARTH_ATTENDANCE_DAYS", "-3"),
    ],
)
def test_a_wrong_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from_env({name: value})
    assert str(refused.value).startswith(f"{name}=")


def test_the_admin_token_is_never_repeated_in_an_error_or_a_repr() -> None:
    secret = "s3cret-token-value"
    assert secret not in repr(settings_from_env({"HEARTH_ADMIN_TOKEN": secret}))


def test_hearth_stops_at_start_with_a_message_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HEARTH_PORT": "eighty"}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "HEARTH_PORT='eighty'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_crisis_text_tells_how_to_reach_help_unless_the_deployment_sets_its_own() -> None:
    default = settings_from_env({}).crisis_text
    # Never empty: emergency numbers and crisis lines, even where nobody set any.
    assert "112" in default and "988" in default
    assert settings_from_env({"HEARTH_CRISIS_TEXT": "   "}).crisis_text == default
    own = "In Germany: 112, or the Telefonseelsorge on 0800 111 0 111."
    assert settings_from_env({"HEARTH_CRISIS_TEXT": own}).crisis_text == own
    with pytest.raises(ConfigError) as refused:
        settings_from_env({"HEARTH_CRISIS_TEXT": "x" * 4001})
    assert str(refused.value).startswith("HEARTH_CRISIS_TEXT=")


def test_several_nodes_need_postgresql_and_one_node_needs_no_redis() -> None:
    with pytest.raises(ConfigError) as refused:
        settings_from_env({"HEARTH_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert "HEARTH_REDIS_URL" in str(refused.value) and "PostgreSQL" in str(refused.value)
    nodes = settings_from_env(
        {
            "HEARTH_REDIS_URL": "redis://127.0.0.1:6379/0",
            "HEARTH_DATABASE_URL": "postgresql+asyncpg://hearth@db/hearth",
            "HEARTH_NODE_ID": "node-1",
        }
    )
    assert (nodes.redis_prefix, nodes.node_id) == ("hearth:", "node-1")
    # A Redis URL may carry a password: never in a repr.
    assert "redis://" not in repr(nodes)
    assert settings_from_env({}).redis_url == ""
