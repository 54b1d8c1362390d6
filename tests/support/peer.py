"""A scripted participant: the real protocol over a WebSocket and a real aiortc peer.

It sends a steady tone as its voice and keeps what it hears, so a test can ask by
frequency analysis which voices reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960


class ToneTrack(MediaStreamTrack):
    """A microphone that hums one frequency, paced in real time like a sound card."""

    kind = "audio"

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude
        self.frames_sent = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.frames_sent * FRAME_SAMPLES / SAMPLE_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        n = np.arange(self.frames_sent * FRAME_SAMPLES, (self.frames_sent + 1) * FRAME_SAMPLES)
        wave = self.amplitude * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)
        # Stereo like a browser's Opus stream, so the encoder does not upmix (and attenuate).
        pcm = np.repeat((wave * 32767).astype(np.int16), 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.frames_sent * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.frames_sent += 1
        return frame


class Recorder:
    """Keeps the mono samples received from the server's tracks (one per receive slot), with
    arrival times; what was heard is their sum, as a page plays every slot at once."""

    def __init__(self) -> None:
        self.tracks: list[list[tuple[float, np.ndarray]]] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def chunks(self) -> list[tuple[float, np.ndarray]]:
        """What the first track (the mix, or a voice) brought."""
        return self.tracks[0] if self.tracks else []

    def start(self, track: MediaStreamTrack) -> None:
        chunks: list[tuple[float, np.ndarray]] = []
        self.tracks.append(chunks)
        self._tasks.append(asyncio.get_running_loop().create_task(self._run(track, chunks)))

    async def _run(self, track: MediaStreamTrack, chunks: list[tuple[float, np.ndarray]]) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().astype(np.float32)
                channels = len(frame.layout.channels)
                mono = pcm.reshape(-1, channels).mean(axis=1) / 32768.0
                chunks.append((time.monotonic(), mono))

    def slot_samples_since(self, since: float) -> list[np.ndarray]:
        """Each track's samples since ``since``."""
        found = []
        for chunks in self.tracks:
            parts = [c for t, c in chunks if t >= since]
            found.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32))
        return found

    def samples_since(self, since: float) -> np.ndarray:
        """Every track's samples since ``since``, summed (each from its own start)."""
        slots = [s for s in self.slot_samples_since(since) if len(s)]
        if not slots:
            return np.zeros(0, dtype=np.float32)
        total = np.zeros(max(len(s) for s in slots), dtype=np.float32)
        for samples in slots:
            total[: len(samples)] += samples
        return total

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


def tone_amplitudes(samples: np.ndarray, frequencies: list[float]) -> dict[float, float]:
    """The amplitude (0..1 of full scale) of each frequency in ``samples``.

    A sine of amplitude A shows in a Hann-windowed spectrum as a peak of A * sum(window) / 2,
    so this reads back the amplitude a voice was sent with, whatever the window's length.
    """
    if len(samples) < SAMPLE_RATE // 4:
        return {f: 0.0 for f in frequencies}
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window))
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    scale = 2 / window.sum()
    return {
        f: float(spectrum[(freqs > f - 10) & (freqs < f + 10)].max() * scale) for f in frequencies
    }


# Receive tracks a scripted participant offers, as the web page does (web/rtc.js).
RECEIVE_SLOTS = 3


class ScriptedParticipant:
    def __init__(
        self,
        ws_url: str,
        token: str,
        name: str,
        tone_hz: float | None,
        slots: int = RECEIVE_SLOTS,
    ) -> None:
        self.slots = slots
        self.ws_url = ws_url
        self.token = token
        self.name = name
        self.tone = ToneTrack(tone_hz) if tone_hz else None
        self.recorder = Recorder()
        self.messages: list[dict[str, Any]] = []
        self.me: dict[str, Any] | None = None
        self.participants: dict[str, dict[str, Any]] = {}
        self.pc: RTCPeerConnection | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._arrivals: asyncio.Condition | None = None
        self.closed_code: int | None = None
        # Like the web client: a device key kept across visits, a seat token per seat.
        self.device_key = secrets.token_urlsafe(16)
        self.seat_token: str | None = None
        self.room: dict[str, Any] | None = None
        self.moderation: dict[str, Any] | None = None
        # The loopback address this person connects from (127.0.0.2 ... are another
        # "network" to a server on 127.0.0.1); None: the system's choice.
        self.local_address: str | None = None

    async def connect(self) -> None:
        connector = (
            aiohttp.TCPConnector(local_addr=(self.local_address, 0)) if self.local_address else None
        )
        self._http = aiohttp.ClientSession(connector=connector)
        self._ws = await self._http.ws_connect(self.ws_url)
        self._arrivals = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None and self._arrivals is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self._track(data)
            async with self._arrivals:
                self.messages.append(data)
                self._arrivals.notify_all()
        self.closed_code = self._ws.close_code
        async with self._arrivals:
            self._arrivals.notify_all()

    def _track(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind in ("joined", "waiting"):
            self.seat_token = data.get("seat_token", self.seat_token)
            self.room = data.get("room", self.room)
        if kind == "room_updated":
            self.room = data["room"]
        if kind == "moderation_updated" or (kind == "joined" and "moderation" in data):
            self.moderation = data["moderation"]
        if kind == "joined":
            self.me = data["you"]
            self.participants = {p["id"]: p for p in data["participants"]}
        elif kind in ("participant_joined", "participant_updated"):
            self.participants[data["participant"]["id"]] = data["participant"]
        elif kind == "participant_left":
            self.participants.pop(data["participant_id"], None)

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        assert self._ws is not None
        await self._ws.send_str(text)

    async def wait_for(self, kind: str, timeout: float = 10, after: int = 0) -> dict[str, Any]:
        """The first message of ``kind`` at or after index ``after`` of ``messages``."""
        assert self._arrivals is not None
        async with asyncio.timeout(timeout), self._arrivals:
            while True:
                for m in self.messages[after:]:
                    if m["type"] == kind:
                        return m
                if self.closed_code is not None:
                    raise ConnectionError(f"closed with {self.closed_code} waiting for {kind}")
                await self._arrivals.wait()

    async def wait_until(self, predicate: Any, timeout: float = 10) -> None:
        assert self._arrivals is not None
        async with asyncio.timeout(timeout), self._arrivals:
            while not predicate():
                await self._arrivals.wait()

    async def join(
        self, muted: bool = False, expect: str = "joined", **extra: Any
    ) -> dict[str, Any]:
        mark = len(self.messages)
        message = {
            "type": "join",
            "token": self.token,
            "display_name": self.name,
            "muted": muted,
            "device_key": self.device_key,
            **extra,
        }
        if self.seat_token is not None:
            message["seat_token"] = self.seat_token
        await self.send(message)
        return await self.wait_for(expect, after=mark)

    async def drop(self) -> None:
        """Lose the connection without leaving (like a network cut or a server crash)."""
        self.recorder.stop()
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        if self._http is not None:
            await self._http.close()
        self._ws = self._http = self._reader = None

    async def reconnect(self, timeout: float = 30, unmute_again: bool = True) -> dict[str, Any]:
        """What the web client does after a lost connection: reconnect with the seat token
        (retrying while the server is away), then set up audio again. The seat comes back
        muted; ``unmute_again`` presses Unmute as someone who was speaking would."""
        await self.drop()
        self.closed_code = None
        self.recorder = Recorder()
        if self.tone is not None:
            self.tone = ToneTrack(self.tone.frequency, self.tone.amplitude)
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.connect()
                break
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        # Their state as last told (a host may have muted them since they joined).
        current = self.participants.get(self.me["id"], self.me) if self.me else None
        was_muted = bool(current and current["muted"])
        joined = await self.join(muted=was_muted)
        # The server resumes a seat muted, whatever it was (docs/protocol.md); like a person
        # who was speaking, unmute again.
        if joined["you"]["muted"] and not was_muted and unmute_again:
            await self.send({"type": "mute", "muted": False})
            me = joined["you"]["id"]
            await self.wait_until(lambda: self.participants[me]["muted"] is False)
        await self.start_audio()
        return joined

    async def start_audio(self) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc = pc
        if self.tone is not None:
            pc.addTrack(self.tone)
        else:
            pc.addTransceiver("audio", direction="recvonly")
        for _ in range(self.slots - 1):  # more receive slots: several voices, each its own
            pc.addTransceiver("audio", direction="recvonly")

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.recorder.start(track)

        await pc.setLocalDescription(await pc.createOffer())
        mark = len(self.messages)
        await self.send({"type": "offer", "sdp": pc.localDescription.sdp})
        answer = await self.wait_for("answer", after=mark)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def wait_connected(self, timeout: float = 10) -> None:
        assert self.pc is not None
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.05)

    def hears(self, since: float, frequencies: list[float]) -> dict[float, float]:
        return tone_amplitudes(self.recorder.samples_since(since), frequencies)

    async def close(self) -> None:
        # Closing the socket without `leave` is a drop to the server; tests that need a
        # proper departure send `leave` first.
        await self.drop()


def silent_fraction(samples: np.ndarray) -> float:
    """The share of 20 ms frames that are all but silent: gaps in what was heard."""
    frames = len(samples) // FRAME_SAMPLES
    if frames == 0:
        return 1.0
    blocks = samples[: frames * FRAME_SAMPLES].reshape(frames, FRAME_SAMPLES)
    return float((np.abs(blocks).max(axis=1) < 1e-3).mean())


async def seat_with_audio(*seating: tuple[ScriptedParticipant, bool]) -> None:
    """Each person connects and joins in this order (muted or not: a muted one may still be
    humming into the microphone), then all start their audio and wait for it to connect."""
    for person, muted in seating:
        await person.connect()
        await person.join(muted=muted)
    for person, _ in seating:
        await person.start_audio()
    for person, _ in seating:
        await person.wait_connected()


@contextlib.asynccontextmanager
async def circle_people(
    ws_url: str, circle: dict[str, Any], *people: tuple[str, float | None]
) -> AsyncIterator[list[ScriptedParticipant]]:
    """Scripted people for ``circle`` (as the API made it), each (name, tone or None), the
    first by the host link and the others by the join link; all closed on the way out."""
    from tests.support.server import link_token

    made = [
        ScriptedParticipant(
            ws_url, link_token(circle["host_url" if i == 0 else "join_url"]), name, tone
        )
        for i, (name, tone) in enumerate(people)
    ]
    try:
        yield made
    finally:
        for person in made:
            await person.close()
