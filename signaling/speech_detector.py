"""Whether a decoded frame is speech, for voices whose packets do not say how loud they are.

Browsers put the RFC 6464 audio level in every packet and the mixer trusts it. Other clients
(native apps, bridges, bots) may not: their voices are decoded and their frames judged here,
so that a client sending background noise or silence (no DTX) is never mixed, and never
taken for the lone speaker to forward.

The judge is WebRTC's own voice activity detector (webrtcvad-wheels, a maintained binding
of the detector in libwebrtc, as browsers use). It keeps a model of each voice's background
and learns steady noise in about 100 ms (the first frames of a new voice's noise pass, then
none). Its mode 1 is used: the more aggressive modes 2 and 3 also learned a steady 500 Hz
tone after Opus as background (measured: it stopped being heard after 100 ms), while mode 1
rejected white noise at -30 and -40 dBov as fast. Frames below -60 dBov (the level the header
gate uses) are silence without asking it. About 30 us a frame.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import webrtcvad

SAMPLE_RATE = 48_000
# Below this a frame is silence whatever its shape (as an RFC 6464 level of 60 -dBov).
SILENT_POWER = 10 ** (-60 / 10)
AGGRESSIVENESS = 1


class SpeechDetector:
    """One voice's detector (the detector adapts to that voice's background)."""

    def __init__(self) -> None:
        self._vad = webrtcvad.Vad(AGGRESSIVENESS)

    def is_speech(self, pcm: npt.NDArray[np.int16]) -> bool:
        """``pcm``: one 10, 20 or 30 ms frame at 48 kHz."""
        power = float(np.mean(np.square(pcm, dtype=np.float64))) / 32768.0**2
        if power < SILENT_POWER:
            return False
        return bool(self._vad.is_speech(pcm.tobytes(), SAMPLE_RATE))
