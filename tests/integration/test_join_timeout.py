"""A socket that never joins is closed, in one process and behind the workers' front."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


@pytest.mark.parametrize("workers", [None, 2])
async def test_a_socket_that_never_joins_is_closed_but_a_joined_one_stays(
    tmp_path: Path, workers: int | None
) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        workers=workers,
        extra_env={"HEARTH_JOIN_TIMEOUT_SECONDS": "1"},
    )
    server.start()
    idle = joined = None
    try:
        circle = server.create_circle()
        idle = ScriptedParticipant(server.ws_url, "no-token", "Idle", None)
        await idle.connect()
        # Chatter that is not a join does not keep the socket alive past the limit.
        await idle.send({"type": "mute", "muted": True})
        joined = ScriptedParticipant(server.ws_url, link_token(circle["host_url"]), "Ana", None)
        await joined.connect()
        await joined.join()
        await idle.wait_until(lambda: idle.closed_code is not None, timeout=5)
        assert idle.closed_code == 4408
        assert [m["code"] for m in idle.messages] == ["not_joined", "join_timeout"]
        # Whoever joined in time is not touched by it.
        await asyncio.sleep(1.5)
        assert joined.closed_code is None
    finally:
        for person in (idle, joined):
            if person is not None:
                await person.close()
        server.stop()
