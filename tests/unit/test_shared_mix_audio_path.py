"""The engine: who hears what, one shared encode, clean ends, decided by the audible set."""

from __future__ import annotations

import asyncio
import fractions
import itertools

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from signaling import audio as audio_module
from signaling.audio import (
    SILENCE_TAIL_FRAMES,
    ListenerTrack,
    SharedMixAudioPath,
    mix,
)
from signaling.voice import FRAME_SAMPLES, SAMPLE_RATE, opus_decoder, opus_encoder

pytestmark = pytest.mark.asyncio

TONES = {"a": 500.0, "b": 850.0, "c": 1270.0}
SEATS = [*TONES, "d"]  # "d" only listens
DTX = b"\xf8\xff\xfe"  # libopus's packet for silence


class Speaker:
    """A voice as the inlet sees it: Opus packets of a steady tone, numbered like RTP."""

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        self.frequency = frequency
        self.amplitude = amplitude
        self.encoder = opus_encoder()
        self.sent = 0

    def packet(self) -> bytes:
        n = np.arange(self.sent * FRAME_SAMPLES, (self.sent + 1) * FRAME_SAMPLES)
        wave = self.amplitude * np.sin(2 * np.pi * self.frequency * n / SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(
            (wave * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        frame.pts = self.sent * FRAME_SAMPLES
        self.sent += 1
        return bytes(self.encoder.encode(frame)[0])


def drain(track: ListenerTrack) -> list[av.Packet]:
    packets = []
    while track._packets:
        packet = track._packets.popleft()
        assert packet is not None
        packets.append(packet)
    return packets


def tone_levels(packets: list[av.Packet]) -> dict[str, float]:
    """Amplitude (of full scale) of each test tone in what a listener's packets decode to."""
    decoder = opus_decoder()
    pcm = np.concatenate(
        [f.to_ndarray().reshape(-1) for p in packets for f in decoder.decode(av.Packet(bytes(p)))]
    ).astype(np.float64)[FRAME_SAMPLES * 5 :]  # past the decoder's start-up
    window = np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(pcm * window)) * 2 / window.sum() / 32768
    freqs = np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)
    return {
        seat: float(spectrum[(freqs > f - 10) & (freqs < f + 10)].max())
        for seat, f in TONES.items()
    }


class Circle:
    """An engine ticked by hand, with what each listener was sent so far."""

    def __init__(self, audible: set[str], forward_lone_voice: bool = True) -> None:
        self.path = SharedMixAudioPath(run_clock=False, forward_lone_voice=forward_lone_voice)
        self.path.set_audible(frozenset(audible))
        self.tracks = {seat: self.path.listener_track(seat) for seat in SEATS}
        self.inlets = {seat: self.path.voice_inlet(seat) for seat in SEATS}
        self.speakers = {seat: Speaker(TONES[seat]) for seat in TONES}
        self.heard: dict[str, list[av.Packet]] = {seat: [] for seat in SEATS}
        self.sent: dict[str, list[bytes]] = {seat: [] for seat in TONES}
        self.seq = 0

    def tick(self, speaking: set[str], ticks: int = 1) -> None:
        """``speaking`` send speech; the others' browsers send DTX (a packet that says
        "silence", with the silent level)."""
        for _ in range(ticks):
            for seat in set(TONES) - speaking:
                self.inlets[seat](self.seq, self.seq * FRAME_SAMPLES, DTX, 127)
            for seat in speaking:
                packet = self.speakers[seat].packet()
                self.sent[seat].append(packet)
                # As a browser does: the RFC 6464 level (-10 dBov) in every packet.
                self.inlets[seat](self.seq, self.seq * FRAME_SAMPLES, packet, 10)
            self.seq += 1
            self.path.mix_once()
            for seat, track in self.tracks.items():
                self.heard[seat] += drain(track)  # type: ignore[arg-type]


async def test_each_listener_hears_the_others_and_never_their_own_voice() -> None:
    circle = Circle(audible={"a", "b", "c"})
    circle.tick({"a", "b", "c"}, ticks=50)
    for seat, packets in circle.heard.items():
        levels = tone_levels(packets)
        for other in TONES:
            if other == seat:
                assert levels[other] < 0.003, (seat, levels)
            else:
                assert levels[other] > 0.24, (seat, levels)
    await circle.path.close()


async def test_a_muted_voice_never_leaves_the_server() -> None:
    circle = Circle(audible={"a", "b"})
    circle.tick({"a", "b", "c"}, ticks=50)
    for packets in circle.heard.values():
        assert tone_levels(packets)["c"] < 0.003
    await circle.path.close()


async def test_listeners_who_do_not_speak_get_byte_identical_packets_from_one_encode() -> None:
    circle = Circle(audible={"a", "b", "c", "d"})
    circle.tick({"a", "b"}, ticks=20)
    heard_c = [bytes(p) for p in circle.heard["c"]]  # type: ignore[arg-type]
    heard_d = [bytes(p) for p in circle.heard["d"]]  # type: ignore[arg-type]
    assert len(heard_c) == 20 and heard_c == heard_d
    # Per tick: one encode for all listeners, one mix-minus for each of the two speakers.
    assert circle.path.encodes == 3 * 20
    await circle.path.close()


async def test_a_lone_voice_is_forwarded_unchanged_to_everyone_else_without_encoding() -> None:
    circle = Circle(audible={"a", "b", "c", "d"})
    circle.tick({"a"}, ticks=20)
    for listener in ("b", "c", "d"):
        assert [bytes(p) for p in circle.heard[listener]] == circle.sent["a"]  # type: ignore[arg-type]
    assert circle.heard["a"] == []
    assert circle.path.encodes == 0
    await circle.path.close()


async def test_the_timeline_runs_on_as_voices_move_between_forwarding_and_mixing() -> None:
    circle = Circle(audible={"a", "b", "c", "d"})
    circle.tick({"a"}, ticks=15)  # forwarded
    circle.tick({"a", "b"}, ticks=15)  # mixed
    circle.tick({"b"}, ticks=30)  # forwarded again once "a" has been quiet a while
    circle.tick(set(), ticks=20)
    for listener in ("c", "d"):
        pts = [p.pts for p in circle.heard[listener]]
        steps = [b - a for a, b in itertools.pairwise(pts)]
        # Never backwards or overlapping, no jump but the gaps when nothing was to be heard.
        assert steps and min(steps) >= FRAME_SAMPLES, steps
        assert len(pts) >= 60
    # Both voices come through at full level on each side of the switches.
    heard = circle.heard["c"]
    assert tone_levels(heard[:15])["a"] > 0.24
    assert min(tone_levels(heard[15:30])[v] for v in ("a", "b")) > 0.24
    assert tone_levels(heard[45:60])["b"] > 0.24
    await circle.path.close()


async def test_a_mix_that_stops_ends_with_a_short_silence_tail_then_nothing() -> None:
    circle = Circle(audible={"a", "b", "c"}, forward_lone_voice=False)
    circle.tick({"a"}, ticks=10)
    before = len(circle.heard["b"])
    circle.tick(set(), ticks=10)
    tail = circle.heard["b"][before:]
    assert len(tail) == SILENCE_TAIL_FRAMES  # encoded silence, no 0.4 s concealment tail
    decoder = opus_decoder()
    heard = [f.to_ndarray() for p in circle.heard["b"] for f in decoder.decode(av.Packet(bytes(p)))]
    assert np.abs(heard[before - 1]).max() > 5000  # the tone, then it fades out to silence
    assert np.abs(heard[-1][:, FRAME_SAMPLES // 2 :]).max() < 100
    await circle.path.close()


async def test_timestamps_run_on_when_a_listener_moves_between_streams() -> None:
    circle = Circle(audible={"a", "b", "c"}, forward_lone_voice=False)
    circle.tick({"a", "b"}, ticks=5)  # "a" hears "b" from an encoder of its own
    circle.tick({"a"}, ticks=5)  # "b" went quiet: "a" hears its stream's silence tail
    circle.tick({"a", "b"}, ticks=5)
    circle.tick({"b"}, ticks=5)  # "a" went quiet: back on the shared stream
    pts = [p.pts for p in circle.heard["a"]]
    # One timeline across the streams; the gap is two ticks with nothing to hear (like DTX).
    ticks = [*range(5 + SILENCE_TAIL_FRAMES), *range(10, 20)]
    assert [p - pts[0] for p in pts] == [t * FRAME_SAMPLES for t in ticks]
    await circle.path.close()


async def test_sums_clip_instead_of_wrapping_around() -> None:
    loud = np.full(FRAME_SAMPLES, 30000, dtype=np.int16)
    total, minus = mix({"a": loud, "b": loud, "c": -loud})
    assert int(total[0]) == 30000
    assert int(minus["c"][0]) == 32767  # type: ignore[index]
    assert int(minus["a"][0]) == 0  # type: ignore[index]
    _, alone = mix({"a": loud})
    assert alone == {"a": None}


async def test_listener_track_ends_when_stopped() -> None:
    track = ListenerTrack()
    task = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await task


async def test_when_the_mix_ends_the_remaining_voice_reaches_the_other_speaker_unchanged() -> None:
    circle = Circle(audible={"a", "b", "c", "d"})
    circle.tick({"a", "b"}, ticks=10)  # "a" hears "b" through its own mix-minus stream
    circle.tick({"b"}, ticks=30)  # "a" went quiet: once the hold is over, "b" is forwarded
    heard_by_a = [bytes(p) for p in circle.heard["a"]]  # type: ignore[arg-type]
    assert heard_by_a[-15:] == circle.sent["b"][-15:]
    await circle.path.close()


async def test_when_the_mix_is_shed_the_loudest_voice_is_forwarded_without_codec_work() -> None:
    circle = Circle(audible={"a", "b", "c"})
    circle.tick({"a", "b"}, ticks=20)
    encodes = circle.path.encodes
    assert encodes > 0  # two voices: mixed
    circle.path.shedding = True  # what observe_tick decides when ticks stay late
    heard: dict[str, list[av.Packet]] = {seat: [] for seat in SEATS}
    sent_b: list[bytes] = []
    # "b" is louder (its packets carry RFC 6464 levels, as a browser's do).
    for _ in range(30):
        for seat, level in (("a", 40), ("b", 20)):
            packet = circle.speakers[seat].packet()
            if seat == "b":
                sent_b.append(packet)
            circle.inlets[seat](circle.seq, circle.seq * FRAME_SAMPLES, packet, level)
        circle.seq += 1
        circle.path.mix_once()
        for seat, track in circle.tracks.items():
            heard[seat] += drain(track)
    # Everyone but "b" gets "b"'s packets unchanged (after the mix's short silence tail);
    # "a" is not heard; "b" hears nobody; no codec work beyond that tail.
    for seat in ("a", "c", "d"):
        got = [bytes(p) for p in heard[seat]]
        assert got[-25:] == sent_b[-25:]
    assert heard["b"] == [] or len(heard["b"]) <= SILENCE_TAIL_FRAMES
    assert circle.path.encodes - encodes <= SILENCE_TAIL_FRAMES * 3
    await circle.path.close()


async def test_a_late_tick_drops_the_frames_it_missed_instead_of_lagging_behind() -> None:
    circle = Circle(audible={"a", "b", "c"})
    circle.tick({"a", "b"}, ticks=10)
    # The clock wakes three periods late: three packets of each voice arrived meanwhile.
    for _ in range(4):
        for seat in ("a", "b"):
            packet = circle.speakers[seat].packet()
            circle.inlets[seat](circle.seq, circle.seq * FRAME_SAMPLES, packet, None)
        circle.seq += 1
    runs = {seat: circle.path._voices[seat].buffer.decoder.runs for seat in ("a", "b")}
    circle.path.mix_once(skipped=3)
    assert circle.path.skipped_ticks == 3
    # Only the newest frame was mixed: nothing is left waiting in the voices' buffers, and
    # the three missed frames of each voice were dropped undecoded (one decode per voice).
    assert all(not circle.path._voices[seat].buffer.waiting for seat in ("a", "b"))
    assert {s: circle.path._voices[s].buffer.decoder.runs - runs[s] for s in runs} == {
        "a": 1,
        "b": 1,
    }
    await circle.path.close()


async def test_voices_that_fit_in_the_slots_are_each_forwarded_in_their_own_slot() -> None:
    """Listeners with three receive slots, three people speaking: each voice goes unchanged
    to everyone else in a slot of its own, the same slot all along; nothing is decoded or
    encoded, and nobody gets their own voice back. A listener with one slot joining turns
    the circle back to the mix (three voices do not fit in one track)."""
    circle = Circle(audible={"a", "b", "c"})
    path = circle.path
    slots = {seat: path.listener_tracks(seat, 3) for seat in SEATS}
    circle.tracks = {}  # drained here, slot by slot
    heard: dict[tuple[str, int], list[bytes]] = {(s, i): [] for s in SEATS for i in range(3)}

    def tick(speaking: set[str]) -> None:
        circle.tick(speaking)
        for seat, tracks in slots.items():
            for i, track in enumerate(tracks):
                heard[seat, i] += [bytes(p) for p in drain(track)]  # type: ignore[arg-type,attr-defined]

    tick({"a"})
    tick({"a", "b"})
    tick({"a", "b", "c"})
    encodes = path.encodes
    for _ in range(30):
        tick({"a", "b", "c"})
    assert path.forwarded == {"a": 0, "b": 1, "c": 2}
    assert path.encodes == encodes
    sent = {seat: set(circle.sent[seat]) for seat in TONES}
    for listener in SEATS:
        for slot, speaker in enumerate(TONES):
            got = heard[listener, slot]
            if listener == speaker:
                assert got == []  # never your own voice
            else:
                assert len(got) >= 30 and set(got) <= sent[speaker], (listener, slot)
    # Someone joins whose page offers one receive track: the voices no longer fit.
    path.listener_tracks("e", 1)
    tick({"a", "b", "c"})
    tick({"a", "b", "c"})
    assert path.forwarded == {}
    assert path.encodes > encodes
    await path.close()


class ClockedCircle:
    """An engine on its own clock (as in a server), with one receive track per listener,
    whose ticks are counted."""

    def __init__(self) -> None:
        self.path = SharedMixAudioPath()
        self.ticks = 0
        mix_once = self.path.mix_once

        def counted(skipped: int = 0) -> None:
            self.ticks += 1
            mix_once(skipped)

        self.path.mix_once = counted  # type: ignore[method-assign]
        self.path.set_audible(frozenset(TONES))
        self.tracks = {seat: self.path.listener_track(seat) for seat in SEATS}
        self.inlets = {seat: self.path.voice_inlet(seat) for seat in SEATS}
        self.speakers = {seat: Speaker(TONES[seat]) for seat in TONES}
        self.heard: dict[str, list[bytes]] = {seat: [] for seat in SEATS}
        self.seq = 0

    async def speak(self, speaking: set[str], frames: int) -> None:
        """``frames`` of 20 ms in real time; the others' browsers send nothing (DTX)."""
        for _ in range(frames):
            for seat in speaking:
                self.inlets[seat](
                    self.seq, self.seq * FRAME_SAMPLES, self.speakers[seat].packet(), 10
                )
            self.seq += 1
            await asyncio.sleep(FRAME_SAMPLES / SAMPLE_RATE)
            self.collect()

    def collect(self) -> None:
        for seat, track in self.tracks.items():
            self.heard[seat] += [bytes(p) for p in drain(track)]  # type: ignore[arg-type]


async def test_the_clock_sleeps_while_a_lone_voice_is_forwarded_and_wakes_for_a_second() -> None:
    """Nobody speaking, or one voice forwarded as it arrives: a tick would do nothing, so the
    circle's clock sleeps (a wake-up of the server every 20 ms saved). A second voice
    starting wakes it: both are heard, mixed."""
    circle = ClockedCircle()
    await asyncio.sleep(0.2)
    assert circle.ticks <= 2  # the first tick finds nothing to do
    await circle.speak({"a"}, frames=40)
    assert circle.ticks <= 4, circle.ticks
    assert len(circle.heard["b"]) == 40 and circle.path.encodes == 0
    before = circle.ticks
    await circle.speak({"a", "b"}, frames=40)
    assert circle.ticks - before >= 30  # mixing runs on the clock
    assert circle.path.encodes > 0
    levels = tone_levels([av.Packet(p) for p in circle.heard["c"][-30:]])
    assert levels["a"] > 0.05 and levels["b"] > 0.05
    await circle.path.close()


async def test_a_voice_silent_past_its_hold_while_the_clock_slept_no_longer_counts() -> None:
    """One voice spoke and stopped while the clock slept; after its hold another starts: the
    new voice is alone, so it is forwarded unchanged (no encode), as it would have been had
    the clock ticked through the silence."""
    circle = ClockedCircle()
    await circle.speak({"a"}, frames=20)
    await asyncio.sleep(0.4)  # a's hold (10 ticks) passes without a tick
    await circle.speak({"b"}, frames=20)
    assert circle.path.encodes == 0
    assert circle.path.forwarded == {"b": 0}
    assert len(circle.heard["c"]) >= 38
    await circle.path.close()


async def test_sockets_are_looked_at_again_only_when_someone_s_audibility_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub tells the audio path who may be heard after every decision (a raised hand, a
    stranger's flood of them): only a change moves any socket between the loop and the slow
    clock (signaling.voice.QuietSockets), whose look covers every voice of the process."""
    looks: list[int] = []

    class Counting:
        def wake(self) -> None:
            looks.append(1)

    monkeypatch.setattr(audio_module, "quiet_sockets", Counting())
    path = SharedMixAudioPath(run_clock=False)
    everyone = frozenset(TONES)
    path.set_audible(everyone)
    for _ in range(5000):
        path.set_audible(frozenset(TONES))  # the same people, as a new set each time
    assert len(looks) == 1
    path.set_audible(everyone - {"a"})  # a muted
    assert len(looks) == 2
    await path.close()
