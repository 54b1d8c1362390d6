"""Cheap bot media: Opus packets encoded once at bench start, kept in memory.

A speaker hums its tone in bursts (MARK_ON ms of tone, then a short silence) so that every
burst's start is a mark whose send and arrival times give the latency. A silent listener
sends what a browser sends with DTX on: a tiny packet every 400 ms.

The tone is coded as a browser codes a voice: libopus told the signal is voice, so it takes
the SILK layer (hybrid mode at 32 kbit/s), whose packets carry voice-activity flags and, with
in-band FEC on, the previous frame's redundant copy (LBRR). Left to itself libopus codes a
steady tone as music (CELT only): no SILK layer, so no FEC could ever be sent or used.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
import opuslib_next
import opuslib_next.api.ctl as opus_ctl
import opuslib_next.api.encoder as opus_encoder

MAX_PACKET_BYTES = 1500

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
FRAME_SECONDS = 0.02
BURST_FRAMES = 40  # 800 ms of tone ...
GAP_FRAMES = 10  # ... then 200 ms of silence: one mark a second
CYCLE_FRAMES = BURST_FRAMES + GAP_FRAMES
DTX_INTERVAL = 0.4
TONES = (500.0, 850.0, 1270.0)  # as in tests/integration: no intermodulation between them
AMPLITUDE = 0.3


def _encoder() -> av.AudioCodecContext:
    """FFmpeg's libopus as a browser sets it up (the DTX packet, the noise of a client
    without DTX); the speakers' voice is coded by ``_voice_encoder``."""
    encoder = av.CodecContext.create("libopus", "w")
    encoder.bit_rate = 32_000
    encoder.format = "s16"
    encoder.layout = "mono"
    encoder.sample_rate = SAMPLE_RATE
    encoder.time_base = fractions.Fraction(1, SAMPLE_RATE)
    encoder.options = {"application": "voip"}
    return encoder


def _voice_encoder(fec_for_loss: float) -> object:
    """libopus (opuslib-next) set up as a browser's voice: VoIP, 32 kbit/s, signal voice, and
    in-band FEC sized for this loss, as a browser turns it on once receiver reports tell it
    the loss. FFmpeg's libopus wrapper cannot say "voice" (OPUS_SET_SIGNAL)."""
    state = opus_encoder.create_state(SAMPLE_RATE, 1, opuslib_next.APPLICATION_VOIP)
    opus_encoder.encoder_ctl(state, opus_ctl.set_bitrate, 32_000)
    opus_encoder.encoder_ctl(state, opus_ctl.set_signal, opuslib_next.SIGNAL_VOICE)
    if fec_for_loss > 0:
        opus_encoder.encoder_ctl(state, opus_ctl.set_inband_fec, 1)
        opus_encoder.encoder_ctl(state, opus_ctl.set_packet_loss_perc, round(fec_for_loss * 100))
    return state


def speech_cycle(frequency: float, fec_for_loss: float = 0.0) -> list[bytes]:
    """One cycle of Opus packets: a tone burst, then silence (with in-band FEC for this loss)."""
    encoder = _voice_encoder(fec_for_loss)
    n = np.arange(CYCLE_FRAMES * 2 * FRAME_SAMPLES)
    wave = (AMPLITUDE * 32767 * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)).astype(np.int16)
    packets: list[bytes] = []
    try:
        # Encode two cycles and keep the second, so the encoder's start-up is not in it.
        for i in range(CYCLE_FRAMES * 2):
            pcm = wave[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            if i % CYCLE_FRAMES >= BURST_FRAMES:
                pcm = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            packets.append(
                bytes(opus_encoder.encode(encoder, pcm.tobytes(), FRAME_SAMPLES, MAX_PACKET_BYTES))
            )
    finally:
        opus_encoder.destroy(encoder)
    return packets[-CYCLE_FRAMES:]


# RFC 6464 levels (-dBov) a browser would put in each packet of ``speech_cycle``: the tone's
# (a sine of AMPLITUDE has an RMS of AMPLITUDE / sqrt 2) in a burst, silence (127) in a gap.
TONE_LEVEL = round(-20 * np.log10(AMPLITUDE / np.sqrt(2)))
SILENCE_LEVEL = 127


def cycle_level(index: int) -> int:
    """The level of the ``index``-th packet of a speech cycle."""
    return TONE_LEVEL if index < BURST_FRAMES else SILENCE_LEVEL


def dtx_packet() -> bytes:
    """The few bytes a browser with DTX sends every 400 ms while its person is silent:
    libopus's packet for digital silence (3 bytes), as it codes it after a tone."""
    encoder = _encoder()
    n = np.arange(FRAME_SAMPLES)
    tone = (AMPLITUDE * 32767 * np.sin(2 * np.pi * TONES[0] * n / SAMPLE_RATE)).astype(np.int16)
    packets: list[bytes] = []
    for i in range(20):
        pcm = tone if i < 10 else np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        frame.pts = i * FRAME_SAMPLES
        packets += [bytes(p) for p in encoder.encode(frame)]
    return min(packets, key=len)


class ToneMeter:
    """Amplitude of each bench tone in a 20 ms frame: three dot products, no FFT."""

    def __init__(self) -> None:
        n = np.arange(FRAME_SAMPLES)
        window = np.hanning(FRAME_SAMPLES)
        self._basis = np.array(
            [window * np.exp(-2j * np.pi * f * n / SAMPLE_RATE) for f in TONES]
        ) * (2 / window.sum() / 32768)

    def amplitudes(self, pcm: np.ndarray) -> np.ndarray:
        return np.abs(self._basis @ pcm.astype(np.float64))


NOISE_DBOV = -45.0


def noise_cycle(seed: int, frames: int = CYCLE_FRAMES) -> list[bytes]:
    """A second of background noise (white, -45 dBov) as a client without DTX sends it:
    full-size Opus packets that carry no speech and no RFC 6464 level."""
    encoder = _encoder()
    rng = np.random.default_rng(seed)
    amplitude = 10 ** (NOISE_DBOV / 20) * 32767
    packets: list[bytes] = []
    for i in range(frames * 2):
        pcm = np.clip(rng.normal(0, amplitude, FRAME_SAMPLES), -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        frame.pts = i * FRAME_SAMPLES
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets[-frames:]
