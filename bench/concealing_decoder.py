"""A listener's Opus decoder that mends losses the way a browser's does: the in-band FEC copy
carried by the next packet where there is one, libopus's concealment (PLC) otherwise.

PyAV's decoder cannot do either (it takes a packet and nothing else), so the bench calls
Debian's libopus (``libopus0``, which Chromium and FFmpeg already pull in) through ctypes:
three functions, for the bench's model listener only (bench.bots).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
MAX_SAMPLES = 5760  # 120 ms, the longest Opus packet

_lib = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
_lib.opus_decoder_create.restype = ctypes.c_void_p
_lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
_lib.opus_decode.restype = ctypes.c_int
_lib.opus_decode.argtypes = [
    ctypes.c_void_p,
    ctypes.c_char_p,
    ctypes.c_int32,
    ctypes.POINTER(ctypes.c_int16),
    ctypes.c_int,
    ctypes.c_int,
]
_lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]


class ConcealingDecoder:
    """Mono, 48 kHz."""

    def __init__(self) -> None:
        error = ctypes.c_int()
        self._state = _lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if error.value != 0 or not self._state:
            raise RuntimeError(f"opus_decoder_create failed: {error.value}")
        self._buffer = (ctypes.c_int16 * MAX_SAMPLES)()

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            _lib.opus_decoder_destroy(self._state)

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        return self._run(payload, MAX_SAMPLES, 0)

    def recover(self, next_payload: bytes, samples: int) -> npt.NDArray[np.int16]:
        """The frame before ``next_payload``, from its FEC copy (concealed if it has none)."""
        return self._run(next_payload, samples, 1)

    def conceal(self, samples: int) -> npt.NDArray[np.int16]:
        return self._run(None, samples, 0)

    def _run(self, payload: bytes | None, samples: int, fec: int) -> npt.NDArray[np.int16]:
        count = _lib.opus_decode(
            self._state, payload, 0 if payload is None else len(payload), self._buffer, samples, fec
        )
        if count < 0:
            return np.zeros(0, dtype=np.int16)
        return np.frombuffer(self._buffer, dtype=np.int16, count=count).copy()
