"""Voices without RFC 6464 levels: speech is heard from the decoded audio, silence and steady
noise are never mixed (and never taken for a lone speaker to forward)."""

from __future__ import annotations

import numpy as np
import pytest

from signaling.audio import SharedMixAudioPath
from signaling.opus_codec import OpusDecoder
from signaling.speech_detector import SpeechDetector
from tests.unit.test_jitter_buffer import FRAME, RATE, encode, voice


def noise(seconds: float, dbov: float, seed: int = 0, pink: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, int(seconds * RATE))
    if pink:  # power falling 3 dB an octave, like much room noise
        spectrum = np.fft.rfft(x)
        spectrum[1:] /= np.sqrt(np.fft.rfftfreq(len(x), 1 / RATE)[1:])
        x = np.fft.irfft(spectrum, len(x))
    x *= 10 ** (dbov / 20) * 32767 / np.sqrt(np.mean(x**2))
    return np.clip(x, -32768, 32767).astype(np.int16)


def decoded_frames(pcm: np.ndarray) -> list[np.ndarray]:
    """What the mixer judges: the sender's audio after Opus."""
    decoder = OpusDecoder()
    return [decoder.decode(p) for p in encode(pcm)]


def speech_share(frames: list[np.ndarray], skip: int = 0) -> float:
    detector = SpeechDetector()
    verdicts = [detector.is_speech(f) for f in frames]
    return sum(verdicts[skip:]) / len(verdicts[skip:])


def test_speech_is_speech() -> None:
    assert speech_share(decoded_frames(voice(2.0))) > 0.9


@pytest.mark.parametrize("dbov", [-30, -40, -50])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("pink", [False, True])
def test_steady_noise_is_never_speech(dbov: float, seed: int, pink: bool) -> None:
    assert speech_share(decoded_frames(noise(6.0, dbov, seed, pink))) == 0.0


def test_a_steady_tone_stays_speech_for_the_whole_burst() -> None:
    # A sustained vowel, or the bench's tones: not learnt as background.
    n = np.arange(3 * RATE)
    tone = (0.3 * 32767 * np.sin(2 * np.pi * 500 * n / RATE)).astype(np.int16)
    assert speech_share(decoded_frames(tone)) == 1.0


def test_silence_and_near_silence_are_not_speech() -> None:
    assert speech_share([np.zeros(FRAME, dtype=np.int16)] * 20) == 0.0
    quiet = (voice(1.0).astype(np.float64) * 10 ** (-50 / 20)).astype(np.int16)  # ~ -62 dBov
    assert speech_share(decoded_frames(quiet)) == 0.0


@pytest.mark.asyncio
async def test_voices_without_levels_sending_noise_are_never_mixed() -> None:
    """Twelve clients without RFC 6464 levels and without DTX, sending background noise:
    nothing is mixed, nothing encoded, nothing sent. Then one speaks: only that voice is heard,
    forwarded unchanged."""
    path = SharedMixAudioPath(run_clock=False)
    seats = [f"s{i}" for i in range(12)]
    path.set_audible(frozenset(seats))
    tracks = {seat: path.listener_track(seat) for seat in seats}
    inlets = {seat: path.voice_inlet(seat) for seat in seats}
    streams = {seat: encode(noise(3.0, -40, seed=i)) for i, seat in enumerate(seats)}
    speech = encode(voice(1.0))
    sent_while_noise = 0
    heard: list[bytes] = []
    for tick in range(100):
        for seat in seats:
            payload = speech[tick - 60] if seat == "s0" and tick >= 60 else streams[seat][tick]
            inlets[seat](tick, tick * FRAME, payload, None)
        path.mix_once()
        for seat, track in tracks.items():
            if tick < 60:
                sent_while_noise += len(track._packets)
            elif seat == "s1":
                heard += [bytes(p) for p in track._packets if p is not None]  # type: ignore[arg-type]
            track._packets.clear()
    # While all twelve only send noise: nothing at all.
    assert sent_while_noise == 0
    # s0 speaks: the other eleven hear it. Its first frame is judged after decoding, so it
    # goes out mixed; from the next tick on it is forwarded as sent (no mix, no encode).
    assert path.forwarded == {"s0": 0}
    assert len(heard) >= 30 and set(heard[1:]) <= set(speech)
    await path.close()


@pytest.mark.asyncio
async def test_voices_without_levels_are_decoded_only_when_in_doubt() -> None:
    """Without RFC 6464 levels, a voice is not decoded on every packet just for the speech
    detector: background its own encoder marks silent is never decoded, a forwarded speaker
    already heard speaking is judged again a few times a second, not 50. Silence still never
    goes out as speech: when the speaker falls back to noise, forwarding ends within the hold
    and nothing more is sent."""
    path = SharedMixAudioPath(run_clock=False)
    seats = ["s0", "s1", "s2"]
    path.set_audible(frozenset(seats))
    tracks = {seat: path.listener_track(seat) for seat in seats}
    inlets = {seat: path.voice_inlet(seat) for seat in seats}
    speech = encode(voice(2.0))
    streams = {seat: encode(noise(4.0, -40, seed=i)) for i, seat in enumerate(seats)}
    decoders = {seat: path._voices[seat].buffer.decoder for seat in seats}
    runs = {seat: 0 for seat in seats}
    sent_after_speech: list[int] = []
    forwarded_ticks = 0
    for tick in range(190):
        speaking = 20 <= tick < 120
        for seat in seats:
            payload = speech[tick - 20] if seat == "s0" and speaking else streams[seat][tick]
            before = decoders[seat].runs
            inlets[seat](tick, tick * FRAME, payload, None)
            runs[seat] += decoders[seat].runs - before
        path.mix_once()
        forwarded_ticks += path.forwarded == {"s0": 0}
        if tick >= 120 + 20:
            sent_after_speech.append(sum(len(t._packets) for t in tracks.values()))
        for track in tracks.values():
            track._packets.clear()
    # The speaker was forwarded through its speech, judged on a fraction of its packets.
    assert forwarded_ticks >= 90
    assert runs["s0"] <= 100 // 2  # was every packet and more (107)
    # The two who only ever sent noise: hardly a packet decoded (in the inlet or the mixer).
    quiet_runs = sum(decoders[s].runs for s in ("s1", "s2"))
    assert quiet_runs <= 0.1 * 2 * 190
    # After the speech, noise only: forwarding ended and nothing at all was sent.
    assert path.forwarded == {}
    assert sum(sent_after_speech) == 0
    await path.close()
