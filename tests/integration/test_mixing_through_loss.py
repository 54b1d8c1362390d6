"""Two real aiortc peers speak at once over lossy, jittery uploads; a third hears the mix whole.

Both speakers' uploads go through the bench's impairment layer (bench/impairment.py): 10% of
RTP packets lost, 0-30 ms of jitter, 1% reordered. The three offer one receive track each
(as a client before receive slots), so with two voices the server mixes (no forwarding), and
what the listener hears is what the server's jitter buffers made of the
damaged streams: each voice should be there in almost every 20 ms frame, a lost or late
packet concealed in place rather than a hole in the voice. (Without a jitter buffer that
waits and conceals, every packet late for its tick was a 20 ms hole: measured at load 85-90,
0.78 of frames with the server before this buffer, 0.90-0.92 with it.)
"""

from __future__ import annotations

import random

import numpy as np

from bench.impairment import Impairment, impair_rtp_sending
from tests.support.hearing import HOST_HZ, SAM_HZ, TONE_AMPLITUDE, listen
from tests.support.peer import FRAME_SAMPLES, SAMPLE_RATE, ScriptedParticipant
from tests.support.server import ServerProcess, link_token

NETWORK = Impairment(loss=0.10, jitter=0.030, reorder=0.01)
# A voice is there in a frame if its tone is within 6 dB of the level sent.
PRESENT = TONE_AMPLITUDE / 2


def continuity(samples: np.ndarray, frequency: float) -> float:
    """The share of 20 ms frames in which ``frequency`` is heard at its level."""
    frames = len(samples) // FRAME_SAMPLES
    blocks = samples[: frames * FRAME_SAMPLES].reshape(frames, FRAME_SAMPLES)
    window = np.hanning(FRAME_SAMPLES)
    n = np.arange(FRAME_SAMPLES)
    basis = window * np.exp(-2j * np.pi * frequency * n / SAMPLE_RATE) * 2 / window.sum()
    return float((np.abs(blocks @ basis) >= PRESENT).mean())


async def test_a_listener_hears_two_voices_mixed_through_loss_and_jitter(
    server: ServerProcess,
) -> None:
    circle = server.create_circle()
    host = ScriptedParticipant(
        server.ws_url, link_token(circle["host_url"]), "Ana", HOST_HZ, slots=1
    )
    sam = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Sam", SAM_HZ, slots=1)
    kim = ScriptedParticipant(server.ws_url, link_token(circle["join_url"]), "Kim", None, slots=1)
    people = [host, sam, kim]
    try:
        for person in people:
            await person.connect()
            await person.join(muted=False)
        for person in people:
            await person.start_audio()
        for person in people:
            await person.wait_connected()
        links = []
        for i, speaker in enumerate((host, sam)):
            assert speaker.pc is not None
            dtls = speaker.pc.getTransceivers()[0].sender.transport
            links.append(impair_rtp_sending(dtls, NETWORK, random.Random(i)))

        await listen(3.0)  # the buffers learn the network
        since = await listen(4.0)
        assert all(link.dropped > 10 for link in links)  # the network really lost packets
        heard = kim.recorder.samples_since(since)
        assert len(heard) > 3 * SAMPLE_RATE
        heard_share = {f: continuity(heard, f) for f in (HOST_HZ, SAM_HZ)}
        assert min(heard_share.values()) >= 0.85, heard_share
    finally:
        for person in people:
            await person.close()
