"""An Opus decoder that can mend losses: in-band FEC from the next packet, or concealment (PLC).

PyAV's decoder takes a packet and nothing else: it cannot decode the redundant copy of a lost
frame that Opus carries in the next packet (LBRR, RFC 6716 section 4.2.4), nor ask libopus to
conceal a gap. opuslib-next is a maintained ctypes binding of libopus itself (Debian's
``libopus0``, which FFmpeg and Chromium already pull in; no compiler, no bundled copy): its
decoder state and ``opus_decode`` are used here with one buffer kept per decoder, so a decode
is one C call and one copy into numpy (the binding's own ``decode`` builds a Python list of
samples per call).

The SILK layer's first bits (voice activity and "LBRR present") are read here without
decoding, with the range decoder of RFC 6716 section 4.1: the jitter buffer counts which
losses FEC could mend.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import numpy.typing as npt
import opuslib_next.api.ctl as _ctl
import opuslib_next.api.decoder as _opus

SAMPLE_RATE = 48_000
MAX_PACKET_SAMPLES = 5760  # 120 ms, the longest an Opus packet can be
# libopus conceals and recovers in steps of 2.5 ms.
STEP_SAMPLES = SAMPLE_RATE // 400

Pcm = npt.NDArray[np.int16]


class OpusDecodeError(ValueError):
    """A packet libopus could not decode (corrupt, or not Opus)."""


class OpusDecoder:
    """Mono, 48 kHz: decode a packet, recover a lost frame from the next packet, conceal."""

    def __init__(self) -> None:
        self._state: Any = _opus.create_state(SAMPLE_RATE, 1)
        self._buffer: Pcm = np.zeros(MAX_PACKET_SAMPLES, dtype=np.int16)
        self._pointer = self._buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        self.runs = 0  # calls into libopus's decoder (decodes, recoveries, concealments)

    def __del__(self) -> None:
        state = getattr(self, "_state", None)
        if state is not None:
            _opus.destroy(state)
            self._state = None

    def decode(self, payload: bytes) -> Pcm:
        """The packet's audio (10 to 120 ms of samples)."""
        return self._run(payload, MAX_PACKET_SAMPLES, False)

    def recover(self, next_payload: bytes, samples: int) -> Pcm:
        """``samples`` of audio lost just before ``next_payload``: its last frame from the FEC
        copy ``next_payload`` carries (libopus conceals the rest, or all of it without one)."""
        return self._run(next_payload, _steps(samples), True)

    def conceal(self, samples: int) -> Pcm:
        """``samples`` of loss concealment, continuing what was decoded last."""
        return self._run(b"", _steps(samples), False)

    def reset(self) -> None:
        """Start afresh (OPUS_RESET_STATE): what comes next does not follow what was decoded
        last, so neither concealment nor the codec's overlap should continue it."""
        _opus.decoder_ctl(self._state, _ctl.reset_state)

    def samples_in(self, payload: bytes) -> int:
        """How long the packet is, in samples (without decoding it)."""
        count = _opus.libopus_get_nb_samples(self._state, payload, len(payload))
        if count <= 0:
            raise OpusDecodeError(f"not an Opus packet ({count})")
        return int(count)

    def _run(self, payload: bytes, samples: int, fec: bool) -> Pcm:
        self.runs += 1
        count = _opus.libopus_decode(
            self._state, payload, len(payload), self._pointer, samples, int(fec)
        )
        if count < 0:
            raise OpusDecodeError(f"libopus error {count}")
        return self._buffer[:count].copy()


def _steps(samples: int) -> int:
    """Round up to libopus's 2.5 ms step, within one packet's length."""
    return min(MAX_PACKET_SAMPLES, max(STEP_SAMPLES, -(-samples // STEP_SAMPLES) * STEP_SAMPLES))


# SILK frames in one Opus frame of each SILK/hybrid configuration (RFC 6716 table 2): 10 and
# 20 ms have one, 40 ms two, 60 ms three.
_SILK_FRAMES = {0: 1, 1: 1, 2: 2, 3: 3}


def silk_flags(payload: bytes) -> tuple[bool, bool] | None:
    """(voice active in any SILK frame, LBRR present) of the packet's first Opus frame, or
    None when there is no SILK layer to ask (CELT only, or a framing not read here).

    These are the first symbols of the SILK layer, each one bit of probability 1/2 (RFC 6716
    section 4.2.3), so a few steps of the range decoder read them.
    """
    if len(payload) < 2:
        return None
    toc = payload[0]
    config = toc >> 3
    if config >= 16 or toc & 0x3 > 1:
        return None  # CELT only; or code 2/3 framing, whose first frame is not at byte 1
    frames = 1 if config >= 12 else _SILK_FRAMES[config & 0x3]
    decoder = _RangeDecoder(payload, 1)
    vad = [decoder.bit() for _ in range(frames)]
    lbrr = decoder.bit()
    return any(vad), lbrr


class _RangeDecoder:
    """Just enough of RFC 6716 section 4.1 to read bits of probability 1/2."""

    def __init__(self, data: bytes, start: int) -> None:
        self._data = data
        self._at = start
        self._rem = self._byte()
        self._rng = 128
        self._val = 127 - (self._rem >> 1)
        self._normalize()

    def _byte(self) -> int:
        at = self._at
        self._at += 1
        return self._data[at] if at < len(self._data) else 0

    def _normalize(self) -> None:
        while self._rng <= 1 << 23:
            self._rng <<= 8
            previous, self._rem = self._rem, self._byte()
            symbol = (previous << 8 | self._rem) >> 1
            self._val = ((self._val << 8) + (255 & ~symbol)) & 0x7FFFFFFF

    def bit(self) -> bool:
        half = self._rng >> 1
        one = self._val < half
        if one:
            self._rng = half
        else:
            self._val -= half
            self._rng -= half
        self._normalize()
        return one
