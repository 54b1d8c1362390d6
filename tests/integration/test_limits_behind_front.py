"""The per-address limits with ``hearth serve --workers 2``: the front accepts every socket
and pipes it to a worker, so the worker must still know whose address a join comes from.

Addresses: the server listens on 127.0.0.1; a client bound to 127.0.0.2 is another network
to it (Linux routes all of 127/8 over loopback). Each test shows the limit holding for one
address while another address is untouched: one shared key for everyone behind the front
(the front's own address) would fail the second half, no key at all the first.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.test_limits import LIMITS, settings_with
from tests.support.peer import ScriptedParticipant
from tests.support.server import ServerProcess, link_token

HERE = "127.0.0.1"
ELSEWHERE = "127.0.0.2"


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=Path(tmp_path_factory.mktemp("hearth-front-limits")),
        extra_env=dict(LIMITS),
        workers=2,
    )
    process.start(timeout=120)  # two workers start slowly on a busy machine
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log_text()
    # The addresses are limits' keys only: never in a log line, the front's nor a worker's.
    assert ELSEWHERE not in process.log_text()


async def person(
    server: ServerProcess, url: str, name: str, address: str = HERE
) -> ScriptedParticipant:
    someone = ScriptedParticipant(server.ws_url, link_token(url), name, None)
    someone.local_address = address
    await someone.connect()
    return someone


async def test_wrong_passcodes_slow_that_address_down_not_another(front: ServerProcess) -> None:
    circle = front.create_circle()
    settings_with(front, circle["id"], passcode="4711")
    host = await person(front, circle["host_url"], "Ana")
    guesser = await person(front, circle["join_url"], "Guess")
    try:
        await host.join()
        for guess in ("0000", "0001", "0002"):
            refused = await guesser.join(expect="error", passcode=guess)
            assert refused["code"] == "passcode_required"
        await guesser.wait_until(lambda: guesser.closed_code is not None)
        assert guesser.closed_code == 4429

        # A new socket (and a new device key) from the same address waits: the worker
        # knows the address, although the socket reached it through the front.
        again = await person(front, circle["join_url"], "Kim")
        # Someone else on another network, knowing the code, walks in.
        other = await person(front, circle["join_url"], "Lee", ELSEWHERE)
        try:
            waited = await again.join(expect="error", passcode="4711")
            assert waited["code"] == "too_many_attempts"
            assert waited["retry_after"] >= 1
            joined = await other.join(passcode="4711")
            assert joined["you"]["display_name"] == "Lee"
        finally:
            await again.close()
            await other.close()
    finally:
        await guesser.close()
        await host.close()


async def test_sockets_that_never_join_are_bounded_per_address_at_the_front(
    front: ServerProcess,
) -> None:
    circle = front.create_circle()
    idle = [await person(front, circle["join_url"], f"I{i}") for i in range(3)]
    extra = await person(front, circle["join_url"], "Extra")
    elsewhere = await person(front, circle["join_url"], "Far", ELSEWHERE)
    try:
        await extra.wait_until(lambda: extra.closed_code is not None)
        assert extra.closed_code == 4430
        assert extra.messages[-1]["code"] == "too_many_connections"
        # Another address is not counted with this one.
        await asyncio.sleep(0.3)
        assert elsewhere.closed_code is None

        # A socket that closes, or joins (the worker said joined), no longer counts.
        await idle[0].close()
        await asyncio.sleep(0.3)
        host = await person(front, circle["host_url"], "Ana")
        await host.join()
        late = await person(front, circle["join_url"], "Late")
        await late.join()
        await elsewhere.join()
        await late.close()
        await host.close()
    finally:
        for i in idle:
            await i.close()
        await extra.close()
        await elsewhere.close()


def post_circle_info(server: ServerProcess, address: str) -> int:
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=10, source_address=(address, 0)
    )
    try:
        body = json.dumps({"token": "nope"})
        connection.request("POST", "/circle-info", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert json.loads(response.read()) == {"open": False}
        return response.status
    finally:
        connection.close()


def test_circle_info_is_limited_per_address_at_the_front(front: ServerProcess) -> None:
    # Burst 5, then 1 a second: of 10 calls at once from one address, some are refused.
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: post_circle_info(front, HERE), range(10)))
    assert answers.count(429) >= 3 and set(answers) == {200, 429}, answers
    # Another address has its own bucket.
    assert post_circle_info(front, ELSEWHERE) == 200


async def test_a_flood_before_joining_is_refused_and_closed_at_the_front(
    front: ServerProcess,
) -> None:
    # Burst 10, then 5 a second, closed after 20 refused: the same per-socket rate as a
    # session's, kept by the door before it knows which worker the socket goes to.
    circle = front.create_circle()
    flooder = await person(front, circle["join_url"], "Flood")
    calm = await person(front, circle["join_url"], "Calm")
    try:
        for _ in range(60):
            await flooder.send({"type": "raise_hand"})
        await flooder.wait_until(lambda: flooder.closed_code is not None)
        assert flooder.closed_code == 4429
        codes = [m.get("code") for m in flooder.messages if m["type"] == "error"]
        assert set(codes) == {"not_joined", "rate_limited"}
        # The burst, and what refilled while the door read the rest: far from all 60.
        assert codes.count("not_joined") < 30
        # Another socket from the same address is not affected.
        host = await person(front, circle["host_url"], "Ana")
        await host.join()
        assert (await calm.join())["you"]["display_name"] == "Calm"
        await host.close()
    finally:
        await flooder.close()
        await calm.close()
