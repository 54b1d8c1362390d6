"""Someone who leaves while their connection is still being set up leaves no error behind.

Real aiortc peers: the answering side (as the server) has several transceivers, like a page
with receive slots, and its transport is closed before aiortc's connect task gets to it (the
person closed the page, or gave up on a busy server). That task then ends in
InvalidStateError, which asyncio logs as an error with a traceback unless the server's loop
knows the case (signaling.peer.quiet_connect_race).
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from aiortc import RTCPeerConnection

from signaling.peer import quiet_connect_race


async def _close_while_connecting() -> None:
    page, server = RTCPeerConnection(), RTCPeerConnection()
    page.addTransceiver("audio", direction="sendrecv")
    page.addTransceiver("audio", direction="recvonly")
    page.addTransceiver("audio", direction="recvonly")
    await page.setLocalDescription(await page.createOffer())
    await server.setRemoteDescription(page.localDescription)
    await server.setLocalDescription(await server.createAnswer())
    # The person leaves at once: the transport is closed before aiortc's connect task (which
    # setLocalDescription started and nobody awaits) reaches it. In the server's log this
    # came from joins given up on a busy server.
    await server.getTransceivers()[0].receiver.transport.transport.stop()
    await server.close()
    await page.close()
    for _ in range(5):  # let aiortc's own connect task end too, then be collected
        await asyncio.sleep(0.05)
        gc.collect()


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_without_the_handler_asyncio_logs_the_race_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The case is real: this is what the server's log showed under a busy join burst.
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        await _close_while_connecting()
    assert any("never retrieved" in message for message in _errors(caplog)), _errors(caplog)


async def test_a_peer_closed_while_connecting_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    quiet_connect_race(loop)
    try:
        with caplog.at_level(logging.DEBUG):
            await _close_while_connecting()
    finally:
        loop.set_exception_handler(previous)
    assert _errors(caplog) == []
    assert "a peer connection closed while it was connecting" in caplog.text


async def test_other_task_errors_still_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    quiet_connect_race(loop)

    async def fails() -> None:
        raise RuntimeError("something else went wrong")

    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            task = loop.create_task(fails())
            await asyncio.sleep(0.01)
            del task
            gc.collect()
            await asyncio.sleep(0.01)
    finally:
        loop.set_exception_handler(previous)
    assert any("never retrieved" in message for message in _errors(caplog)), _errors(caplog)
