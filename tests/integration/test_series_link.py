"""A series join link outside its occurrences says when the next one starts; a guessed
link gets the same refusal without that, over the real WebSocket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token


async def refusal(server: ServerProcess, token: str) -> tuple[dict[str, Any], int | None]:
    guest = ScriptedParticipant(server.ws_url, token, "Sam", None)
    await guest.connect()
    try:
        await guest.send({"type": "join", "token": token, "display_name": "Sam"})
        error = await guest.wait_for("error")
        await guest.wait_until(lambda: guest.closed_code is not None)
        return error, guest.closed_code
    finally:
        await guest.close()


async def test_a_series_link_between_occurrences_tells_the_next_start_and_a_guess_does_not(
    server: ServerProcess,
) -> None:
    first = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    status, series = server.api(
        "POST",
        "/api/v1/series",
        {
            "title": "Weekly circle",
            "starts_at": first.isoformat(),
            "timezone": "America/New_York",
            "duration_minutes": 60,
            "rrule": "FREQ=WEEKLY",
        },
    )
    assert status == 201, series

    valid, valid_close = await refusal(server, link_token(series["join_url"]))
    guessed, guessed_close = await refusal(server, "a" * 32)

    assert valid["code"] == guessed["code"] == "circle_not_open"
    assert valid["message"] == guessed["message"]
    assert valid_close == guessed_close == 4404
    assert datetime.fromisoformat(valid["next_starts_at"]) == first
    assert "next_starts_at" not in guessed
