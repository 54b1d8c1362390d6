"""A mixed voice's jitter buffer, fed real Opus packets the way a network delivers them.

The packets come from libopus's own encoder with in-band FEC on (as a browser sends once its
receiver reports show loss). What a listener would notice is checked: the audio comes out in
order whatever order it came in, every tick gets exactly 20 ms, a lost packet is mended from
the next one's FEC copy (close to the original) or concealed, and a late one is not waited for
forever.
"""

from __future__ import annotations

import random

import numpy as np
import opuslib_next
import pytest

from rooms.playout_delay import MAX_TARGET, PlayoutDelay
from signaling.jitter_buffer import MAX_UNDERRUN_TICKS, JitterBuffer
from signaling.opus_codec import OpusDecoder, silk_flags

RATE = 48_000
TICK = 0.02
FRAME = 960
DTX = b"\xf8\xff\xfe"


def voice(seconds: float) -> np.ndarray:
    """Speech-like sound: a buzz at a wandering pitch through three formants, in syllables."""
    n = np.arange(int(seconds * RATE))
    pitch = 120 + 20 * np.sin(2 * np.pi * 0.7 * n / RATE)
    phase = np.cumsum(2 * np.pi * pitch / RATE)
    wave = sum(
        np.sin(k * phase) * np.exp(-(((k * 120 - f) / 300) ** 2)) / k
        for f in (700, 1200, 2500)
        for k in range(1, 25)
    )
    syllables = 0.4 + 0.6 * np.abs(np.sin(2 * np.pi * 2 * n / RATE))
    pcm = 0.25 * 32767 * wave / np.abs(wave).max() * syllables
    return pcm.astype(np.int16)


def encode(pcm: np.ndarray, frame: int = FRAME, fec: bool = True) -> list[bytes]:
    encoder = opuslib_next.Encoder(RATE, 1, "voip")
    encoder.bitrate = 32_000
    encoder.inband_fec = int(fec)
    encoder.packet_loss_perc = 10 if fec else 0
    return [
        encoder.encode(pcm[i : i + frame].tobytes(), frame)
        for i in range(0, len(pcm) - frame + 1, frame)
    ]


def reference(packets: list[bytes]) -> np.ndarray:
    decoder = OpusDecoder()
    return np.concatenate([decoder.decode(p) for p in packets])


class Stream:
    """Packets numbered like RTP from any starting point, played out tick by tick; a DTX
    packet ends them, as a browser ends a talkspurt."""

    def __init__(self, packets: list[bytes], seq0: int = 1000, ts0: int = 5000) -> None:
        self.packets = [*packets, DTX]
        self.seq0 = seq0
        self.ts0 = ts0
        self.buffer = JitterBuffer()
        self.frame = OpusDecoder().samples_in(packets[0])

    def put(self, i: int, at: float) -> None:
        seq = (self.seq0 + i) & 0xFFFF
        ts = (self.ts0 + i * self.frame) & 0xFFFFFFFF
        self.buffer.put(seq, ts, self.packets[i], at)

    def play(self, arrivals: dict[int, list[float]], ticks: int) -> list[np.ndarray | None]:
        """``arrivals``: packet index -> arrival times (several: duplicates). Pull every 20 ms."""
        end = max(at for times in arrivals.values() for at in times) + 0.02
        events = sorted(
            (at, i)
            for i, times in [*arrivals.items(), (len(self.packets) - 1, [end])]
            for at in times
        )
        pulled: list[np.ndarray | None] = []
        for tick in range(ticks):
            now = (tick + 1) * TICK
            while events and events[0][0] <= now:
                at, i = events.pop(0)
                self.put(i, at)
            pulled.append(self.buffer.pull(now))
        return pulled


def on_time(count: int, frame: int = FRAME) -> dict[int, list[float]]:
    """Each packet arriving as it is sent, a little after each tick."""
    return {i: [i * frame / RATE + 0.001] for i in range(count)}


def joined(pulled: list[np.ndarray | None]) -> np.ndarray:
    return np.concatenate([p for p in pulled if p is not None])


def error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.float64) - b)))


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    return encode(voice(2.0))


PAUSE = 50  # in two talkspurts: a DTX packet in place of this one


def two_talkspurts(packets: list[bytes]) -> list[bytes]:
    return [*packets[:PAUSE], DTX, *packets[PAUSE + 1 :]]


def test_reordered_and_duplicated_packets_play_in_order_once(packets: list[bytes]) -> None:
    rng = random.Random(3)
    arrivals: dict[int, list[float]] = {}
    last = 0.0
    for i in range(len(packets)):  # 0-20 ms of jitter, in order
        last = max(last, i * TICK + rng.uniform(0, 0.02))
        arrivals[i] = [last + 0.001]
    for i in range(PAUSE + 3, len(packets) - 1, 7):  # then every seventh overtaken by the next
        arrivals[i], arrivals[i + 1] = arrivals[i + 1], arrivals[i]
    for i in range(0, len(packets), 5):  # and every fifth arrives twice
        arrivals[i] = [*arrivals[i], arrivals[i][0] + 0.004]
    stream = Stream(two_talkspurts(packets))
    stream.play(arrivals, len(packets) + 8)
    stats = stream.buffer.stats
    assert stats.duplicates == len(range(0, len(packets), 5))
    # The first talkspurt taught the buffer the jitter: in the second, the overtaken packets
    # are all in time. Nothing lost, nothing late, nothing played twice.
    assert stats.lost == 0 and stats.late == 0
    assert stream.buffer.delay.target() >= 0.02


def test_a_lost_packet_is_recovered_from_the_next_ones_fec_copy(packets: list[bytes]) -> None:
    # In the second talkspurt, lose a packet whose successor carries an FEC copy.
    lost = next(i for i in range(PAUSE + 10, 99) if silk_flags(packets[i + 1]) == (True, True))
    arrivals = on_time(len(packets))
    del arrivals[20]  # a first loss: after it, the buffer keeps the next packet at hand
    del arrivals[lost]
    original = reference(packets)[lost * FRAME : (lost + 1) * FRAME]

    def closest(stream: Stream) -> float:
        pulled = [p for p in stream.play(arrivals, len(packets) + 8) if p is not None]
        return min(error(p, original) for p in pulled)

    with_fec = Stream(two_talkspurts(packets))
    without_fec = Stream(two_talkspurts(encode(voice(2.0), fec=False)))
    assert closest(with_fec) < 0.3 * closest(without_fec)
    assert with_fec.buffer.stats.lost == 2 and with_fec.buffer.stats.recovered == 1
    assert without_fec.buffer.stats.lost == 2 and without_fec.buffer.stats.recovered == 0


def test_packets_in_order_play_exactly_what_the_decoder_makes(packets: list[bytes]) -> None:
    stream = Stream(packets)
    pulled = stream.play(on_time(len(packets)), len(packets) + 2)
    assert all(p is None or len(p) == FRAME for p in pulled)
    out = joined(pulled)
    assert np.array_equal(out[: len(packets) * FRAME], reference(packets))
    assert stream.buffer.stats.lost == 0


def test_sequence_numbers_and_timestamps_wrap_around(packets: list[bytes]) -> None:
    stream = Stream(packets, seq0=65530, ts0=(1 << 32) - 3 * FRAME)
    out = joined(stream.play(on_time(len(packets)), len(packets) + 2))
    assert np.array_equal(out[: len(packets) * FRAME], reference(packets))
    assert stream.buffer.stats.lost == 0


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_any_packet_duration_gives_20_ms_a_tick_and_the_whole_voice(frame_ms: int) -> None:
    frame = RATE * frame_ms // 1000
    packets = encode(voice(1.2), frame)
    stream = Stream(packets)
    ticks = len(packets) * frame // FRAME + 4
    pulled = stream.play(on_time(len(packets), frame), ticks)
    assert all(p is None or len(p) == FRAME for p in pulled)
    out = joined(pulled)
    assert np.array_equal(out[: len(packets) * frame], reference(packets))


def test_losses_without_fec_are_concealed_and_the_timeline_keeps_its_length() -> None:
    packets = encode(voice(1.2), fec=False)
    arrivals = on_time(len(packets))
    for i in (10, 20, 21, 22, 40):
        del arrivals[i]
    stream = Stream(packets)
    pulled = stream.play(arrivals, len(packets) + 8)
    playing = [p for p in pulled if p is not None]
    assert all(len(p) == FRAME for p in playing)
    stats = stream.buffer.stats
    assert stats.lost == 5 and stats.recovered == 0
    # Every tick of the voice is played once, the lost ones concealed.
    assert len(playing) == len(packets)
    # After the losses the voice is back in step with what was sent.
    tail = joined(playing)[-10 * FRAME :]
    assert error(tail, reference(packets)[-10 * FRAME :]) < 200


def test_a_lost_60_ms_packet_is_concealed_for_all_its_60_ms() -> None:
    packets = encode(voice(1.2), RATE * 60 // 1000, fec=False)
    arrivals = on_time(len(packets), 2880)
    del arrivals[8]
    stream = Stream(packets)
    pulled = stream.play(arrivals, len(packets) * 3 + 8)
    playing = [p for p in pulled if p is not None]
    assert all(len(p) == FRAME for p in playing)
    stats = stream.buffer.stats
    assert stats.lost == 1
    assert len(playing) == len(packets) * 3


def test_a_packet_too_late_is_concealed_then_dropped(packets: list[bytes]) -> None:
    arrivals = on_time(60)
    arrivals[30] = [arrivals[30][0] + 0.2]  # 200 ms late: long after its turn
    stream = Stream(packets[:60])
    pulled = stream.play(arrivals, 70)
    stats = stream.buffer.stats
    assert stats.late == 1 and stats.lost == 1
    # Waited for a tick, not the 200 ms: the voice keeps its timeline.
    assert stats.concealed_ticks == 1
    assert sum(p is not None for p in pulled) == 60


def test_the_target_delay_follows_the_jitter_and_then_nothing_is_lost(packets: list[bytes]) -> None:
    rng = random.Random(7)
    arrivals: dict[int, list[float]] = {}
    last = 0.0
    for i in range(len(packets)):
        # Uniform 0-30 ms of delay, in order (a FIFO link).
        last = max(last, i * TICK + rng.uniform(0, 0.03))
        arrivals[i] = [last]
    stream = Stream(packets)
    pulled = stream.play(arrivals, len(packets) + 8)
    assert 0.02 <= stream.buffer.delay.target() <= 0.045
    # The buffer learns the jitter from the first packets, waiting a few ticks while it
    # does; no packet is lost or late, and every tick of the voice is played.
    stats = stream.buffer.stats
    assert stats.lost == 0 and stats.late == 0
    assert stats.concealed_ticks <= 5
    assert sum(p is not None for p in pulled) == len(packets) + stats.concealed_ticks


def test_dtx_ends_a_talkspurt_and_the_next_one_starts_afresh(packets: list[bytes]) -> None:
    buffer = JitterBuffer()
    for i in range(5):
        buffer.put(i, i * FRAME, packets[i], i * TICK)
    buffer.put(5, 5 * FRAME, DTX, 5 * TICK)
    got = [buffer.pull((t + 1) * TICK) for t in range(8)]
    assert [g is not None for g in got] == [True] * 5 + [False] * 3
    # The next talkspurt, 40 ticks later: timestamps jumped (silence sent no packets).
    for i in range(6, 9):
        buffer.put(i, (40 + i) * FRAME, packets[i], (40 + i) * TICK)
    assert buffer.pull(49 * TICK) is not None
    assert buffer.stats.lost == 0


def test_when_packets_stop_a_few_ticks_are_concealed_then_nothing(packets: list[bytes]) -> None:
    buffer = JitterBuffer()
    for i in range(10):
        buffer.put(i, i * FRAME, packets[i], i * TICK)
    got = [buffer.pull((t + 1) * TICK) for t in range(20)]
    assert [g is not None for g in got] == [True] * (10 + MAX_UNDERRUN_TICKS) + [False] * (
        10 - MAX_UNDERRUN_TICKS
    )


def test_a_renegotiated_stream_with_new_numbers_is_heard_not_dropped_as_late(
    packets: list[bytes],
) -> None:
    buffer = JitterBuffer()
    buffer.put(40000, 0, packets[0], 0.0)
    buffer.put(40001, FRAME, packets[1], TICK)
    assert buffer.pull(TICK) is not None
    buffer.put(7, 123, packets[2], 2 * TICK)  # the browser's new stream starts far below
    assert buffer.stats.late == 0
    assert buffer.pull(3 * TICK) is not None


def test_playout_delay_is_the_spread_of_recent_transits() -> None:
    steady = PlayoutDelay()
    for i in range(100):
        steady.observe(i * TICK + 0.05, i * TICK)
    assert steady.target() < 0.01  # no jitter: play on the next tick
    steady.lost(2.0)  # a packet lost (that FEC could mend): keep the next one at hand
    assert 0.02 <= steady.target() < 0.03
    for i in range(100, 400):
        steady.observe(i * TICK + 0.05, i * TICK)
    assert steady.target() < 0.01  # no loss for the last 4 s
    rng = random.Random(1)
    jittery = PlayoutDelay()
    for i in range(200):
        jittery.observe(i * TICK + rng.uniform(0, 0.03), i * TICK)
    assert 0.025 <= jittery.target() <= 0.04
    for i in range(200, 400):  # two seconds of a burst of bad jitter, then calm
        jittery.observe(i * TICK + rng.uniform(0, 0.5), i * TICK)
    assert jittery.target() == MAX_TARGET
    for i in range(400, 700):
        jittery.observe(i * TICK + 0.01, i * TICK)
    assert jittery.target() < 0.02  # the bad seconds left the window


def test_skipped_ticks_drop_their_packets_undecoded_and_the_next_decode_starts_fresh(
    packets: list[bytes],
) -> None:
    """The mixer's clock woke three ticks late: the three frames it missed are dropped without
    decoding them (a late tick costs no more than one on time), and what plays next is the
    packet after them, decoded from a fresh state as if it started the stream."""
    stream = Stream(packets)
    for i in range(12):
        stream.put(i, 0.001 + i * TICK)
    now = 0.2
    played = [stream.buffer.pull(now) for _ in range(4)]
    assert all(p is not None for p in played)
    runs = stream.buffer.decoder.runs
    stream.buffer.skip(3, now)
    assert stream.buffer.decoder.runs == runs  # nothing decoded for the skipped ticks
    assert stream.buffer.stats.skipped == 3
    after = stream.buffer.pull(now)
    fresh = OpusDecoder().decode(packets[7])  # packets 4, 5 and 6 were skipped
    assert after is not None and np.array_equal(after, fresh)


def test_a_skip_over_nothing_waits_for_the_late_packet_like_ticks_on_time(
    packets: list[bytes],
) -> None:
    """Skipped ticks with nothing here count as ticks waited for a late packet: past the
    limit the talkspurt is over, and nothing was decoded or concealed for them."""
    stream = Stream(packets)
    for i in range(3):
        stream.put(i, 0.001 + i * TICK)
    for _ in range(3):
        assert stream.buffer.pull(0.2) is not None
    runs = stream.buffer.decoder.runs
    stream.buffer.skip(MAX_UNDERRUN_TICKS + 1, 0.3)
    assert stream.buffer.decoder.runs == runs
    assert not stream.buffer.playing
