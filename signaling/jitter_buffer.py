"""A mixed voice's jitter buffer: packets in, one 20 ms frame of its audio out per mixer tick.

Packets are kept by sequence number (extended across the 16-bit wrap) with their RTP
timestamps, so the order they arrive in does not matter, a duplicate is dropped, and one that
comes after its turn is counted late and dropped. Time on the voice's side is its RTP
timestamps; time on the mixer's side is its ticks. The two are tied at the start of each
talkspurt: its first packet is played once it has waited the target delay
(rooms.playout_delay, from the spread of recent transit times), and from then on one tick
plays 960 samples of the voice's timeline.

- A packet that is missing when its turn comes, with a later one already here, is lost: its
  audio is recovered from the in-band FEC copy the next packet carries (Opus LBRR, what a
  browser sends with ``useinbandfec=1`` once receiver reports show loss), and concealed by
  libopus (PLC) where there is none.
- Nothing here at all: the packet may only be late. One tick is concealed and the timeline
  waits for it: if it comes, the voice plays that much later from then on (how the delay
  grows within a talkspurt when the jitter does); if it was lost, that tick stood in for it.
  Several ticks of nothing: the talkspurt is over.
- Recovering a loss from FEC needs the next packet here when the lost one is due: after a
  loss, if the sender's packets carry FEC copies, the target is one packet more
  (rooms.playout_delay), from the next talkspurt on. Without FEC that would buy nothing.
- A DTX packet or a jump in timestamps without a jump in sequence numbers is silence: the
  talkspurt ends there, and the next one starts afresh at the then current target.
- Packets of 10, 20, 40 or 60 ms are decoded whole; the samples left over after a tick wait
  for the next one.
- When the buffer has held more than the target for a second (after the network calmed down,
  or after a late packet stretched the timeline), one frame is dropped, a quiet one if any.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rooms.playout_delay import FRAME_SECONDS, PlayoutDelay
from signaling.opus_codec import OpusDecodeError, OpusDecoder, silk_flags
from signaling.telemetry import dropped_packets

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
# Packets this short carry no speech: DTX and comfort noise (as signaling.voice).
DTX_MAX_BYTES = 3
# A sequence number this far from the newest one starts a new stream (renegotiation).
RESTART_GAP = 3000
# Packets held at most (a second of 20 ms packets); past this the oldest go.
MAX_PACKETS = 50
# Ticks of concealment while nothing arrives before the talkspurt counts as over.
MAX_UNDERRUN_TICKS = 3
# A timestamp jump this long (samples) between consecutive packets is a pause, not a loss.
PAUSE_SAMPLES = 3 * FRAME_SAMPLES
# The depth is checked over this many ticks, and trimmed when always a frame above target.
DEPTH_WINDOW_TICKS = 50
# A frame this quiet (mean square, of full scale squared) is dropped first to win delay back.
QUIET_POWER = 10 ** (-45 / 10)

Pcm = npt.NDArray[np.int16]


@dataclass(slots=True)
class _Packet:
    timestamp: int  # extended
    payload: bytes
    arrival: float


@dataclass
class JitterStats:
    received: int = 0
    duplicates: int = 0
    late: int = 0  # arrived after their turn: dropped
    lost: int = 0  # never here in time: recovered or concealed
    recovered: int = 0  # of the lost, mended from the next packet's FEC copy
    concealed_ticks: int = 0  # ticks of concealment while waiting for a late packet
    dropped_for_depth: int = 0
    overflow: int = 0
    skipped: int = 0  # dropped undecoded because the mixer's clock skipped their ticks


class JitterBuffer:
    """One voice; ``put`` as packets arrive, ``pull`` once per mixer tick."""

    def __init__(self) -> None:
        self.decoder = OpusDecoder()
        self.delay = PlayoutDelay()
        self.stats = JitterStats()
        self._packets: dict[int, _Packet] = {}
        self._highest: int | None = None  # extended seq of the newest packet received
        self._highest_ts = 0  # extended timestamp of that packet
        self._next_seq: int | None = None  # the packet whose turn is next
        self._next_ts = 0  # the timestamp of the next sample to play
        self._playing = False
        self._pcm: Pcm = np.zeros(0, dtype=np.int16)  # decoded, not yet played
        self._waited = 0  # samples concealed while waiting for a late packet
        self._underruns = 0  # consecutive ticks with nothing to play
        self._last_duration = FRAME_SAMPLES
        self._min_ahead: int | None = None
        self._window_ticks = 0
        self._trim = False  # drop one frame, a quiet one if there is
        self._fresh = False  # audio was skipped: the next decode starts from a fresh state

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def waiting(self) -> int:
        """Packets held, not yet played."""
        return len(self._packets)

    def put(self, seq: int, timestamp: int, payload: bytes, arrival: float) -> None:
        """A packet as it arrived (RTP sequence number and timestamp, Opus payload)."""
        highest = self._highest
        if highest is None:
            ext, ext_ts = seq, timestamp
        else:
            ext = highest + ((seq - highest + 0x8000) & 0xFFFF) - 0x8000
            if abs(ext - highest) > RESTART_GAP:
                self.restart()
                ext, ext_ts = seq, timestamp
            else:
                delta = (timestamp - self._highest_ts + 0x80000000) & 0xFFFFFFFF
                ext_ts = self._highest_ts + delta - 0x80000000
        self.stats.received += 1
        if self._next_seq is not None and ext < self._next_seq:
            self.stats.late += 1
            dropped_packets["late"] += 1
            return
        if ext in self._packets:
            self.stats.duplicates += 1
            dropped_packets["duplicate"] += 1
            return
        self._packets[ext] = _Packet(ext_ts, payload, arrival)
        if self._highest is None or ext > self._highest:
            self._highest = ext
            self._highest_ts = ext_ts
        self.delay.observe(arrival, ext_ts / SAMPLE_RATE)
        if len(self._packets) > MAX_PACKETS:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.stats.overflow += 1
            dropped_packets["overflow"] += 1
            if self._next_seq is not None and oldest >= self._next_seq:
                self._next_seq = oldest + 1

    def pull(self, now: float) -> Pcm | None:
        """This tick's 960 samples of the voice, or None while it is silent or still waiting."""
        if not self._playing and not self._start(now):
            return None
        parts = [self._pcm] if len(self._pcm) else []
        have = len(self._pcm)
        while have < FRAME_SAMPLES:
            chunk = self._next_chunk(now)
            if chunk is None:
                break
            if self._trim and len(chunk) and self._drops(chunk):
                continue
            parts.append(chunk)
            have += len(chunk)
        if have == 0:
            self._pcm = np.zeros(0, dtype=np.int16)
            return None
        pcm = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if have < FRAME_SAMPLES:  # the talkspurt ended mid-tick
            pcm = np.concatenate([pcm, np.zeros(FRAME_SAMPLES - have, dtype=np.int16)])
        self._pcm = pcm[FRAME_SAMPLES:]
        if self._playing:
            self._watch_depth()
        return pcm[:FRAME_SAMPLES]

    def skip(self, frames: int, now: float) -> None:
        """The mixer missed ``frames`` ticks (its clock woke late): move this voice's playout
        on by that much without decoding anything. Packets whose audio would have played in
        those ticks are dropped; a DTX packet or a pause among them ends the talkspurt, as it
        would have on time; ticks with nothing here count as ticks waited for a late packet.
        If audio was dropped, the next decode starts from a fresh decoder state: the old one
        (and its concealment) belongs to audio from before the gap."""
        if frames <= 0 or (not self._playing and not self._start(now)):
            return
        assert self._next_seq is not None
        need = frames * FRAME_SAMPLES
        held = min(len(self._pcm), need)
        self._pcm = self._pcm[held:]
        need -= held
        dropped = held > 0
        end_ts = self._next_ts + need
        while need > 0:
            seq = self._next_seq
            packet = self._packets.get(seq)
            if packet is None:
                later = self._later_packet()
                if later is None:
                    # Nothing here: the ticks count as waited for a late packet.
                    ticks = -(-need // FRAME_SAMPLES)
                    self._underruns += ticks
                    self._waited += need
                    if self._underruns > MAX_UNDERRUN_TICKS:
                        self._stop()
                    break
                self.stats.lost += later - seq
                self._next_seq = seq = later
                packet = self._packets[later]
            if (
                len(packet.payload) <= DTX_MAX_BYTES
                or packet.timestamp - self._next_ts > PAUSE_SAMPLES
            ):
                if len(packet.payload) <= DTX_MAX_BYTES:
                    del self._packets[seq]
                    self._next_seq = seq + 1
                self._stop()
                break
            if packet.timestamp >= end_ts:
                self._next_ts = end_ts
                break  # its audio is after the ticks skipped: it plays next
            del self._packets[seq]
            self._next_seq = seq + 1
            try:
                duration = self.decoder.samples_in(packet.payload)
            except OpusDecodeError:
                duration = self._last_duration
            self._next_ts = packet.timestamp + duration
            self._last_duration = duration
            self._underruns = 0
            self._waited = 0
            self.stats.skipped += 1
            dropped = True
            need = end_ts - self._next_ts
        if dropped:
            self._fresh = True

    def drain(self) -> list[bytes]:
        """Every packet still waiting, in order (the voice is now forwarded unchanged)."""
        payloads = [self._packets[seq].payload for seq in sorted(self._packets)]
        if self._packets:
            self._next_seq = max(self._packets) + 1
        self._packets.clear()
        self._stop()
        return payloads

    def clear(self) -> None:
        """Forget what waits (the voice may not be heard for now)."""
        if self._packets and self._highest is not None:
            self._next_seq = self._highest + 1
        self._packets.clear()
        self._stop()

    def restart(self) -> None:
        """A new stream: nothing before it compares."""
        self._packets.clear()
        self._highest = None
        self._next_seq = None
        self.delay.restart()
        self._stop()

    def _stop(self) -> None:
        self._playing = False
        self._pcm = np.zeros(0, dtype=np.int16)
        self._waited = 0
        self._underruns = 0
        self._min_ahead = None
        self._window_ticks = 0
        self._trim = False

    def _start(self, now: float) -> bool:
        """Start a talkspurt at its first packet of speech once it has waited the target."""
        packets = self._packets
        while packets:
            first = min(packets)
            if len(packets[first].payload) > DTX_MAX_BYTES:
                break
            del packets[first]  # silence before the talkspurt
            self._next_seq = first + 1
        else:
            return False
        anchor = packets[first]
        if now - anchor.arrival < self.delay.target():
            return False
        self._playing = True
        self._next_seq = first
        self._next_ts = anchor.timestamp
        return True

    def _next_chunk(self, now: float) -> Pcm | None:
        """The next stretch of the voice's timeline; None when the talkspurt is over."""
        assert self._next_seq is not None
        if self._fresh:
            self._fresh = False
            self.decoder.reset()
        packet = self._packets.get(self._next_seq)
        if packet is not None:
            payload = packet.payload
            if len(payload) <= DTX_MAX_BYTES or packet.timestamp - self._next_ts > PAUSE_SAMPLES:
                # Silence (DTX), or a pause without it: this talkspurt is over; a speech
                # packet starts the next one at the then current target delay.
                if len(payload) <= DTX_MAX_BYTES:
                    del self._packets[self._next_seq]
                    self._next_seq += 1
                self._stop()
                return None
            del self._packets[self._next_seq]
            self._next_seq += 1
            try:
                pcm = self.decoder.decode(payload)
            except OpusDecodeError:
                dropped_packets["undecodable"] += 1
                pcm = self.decoder.conceal(self._last_duration)
            self._next_ts = packet.timestamp + len(pcm)
            self._last_duration = len(pcm)
            self._waited = 0
            self._underruns = 0
            return pcm
        later = self._later_packet()
        if later is not None:
            return self._mend_loss(later, now)
        # Nothing here: the next packet is late. Conceal one tick and wait for it: if it
        # comes, the voice plays that much later from then on (how the delay grows within a
        # talkspurt when the jitter does); if it turns out lost, this tick stood in for it.
        self._underruns += 1
        if self._underruns > MAX_UNDERRUN_TICKS:
            self._stop()
            return None
        self.stats.concealed_ticks += 1
        self._waited += FRAME_SAMPLES
        return self.decoder.conceal(FRAME_SAMPLES)

    def _later_packet(self) -> int | None:
        assert self._next_seq is not None
        later = [seq for seq in self._packets if seq > self._next_seq]
        return min(later) if later else None

    def _mend_loss(self, later: int, now: float) -> Pcm:
        """Packets before ``later`` are lost: recover or conceal the audio they held."""
        assert self._next_seq is not None
        missing = later - self._next_seq
        after = self._packets[later]
        gap = after.timestamp - self._next_ts
        if gap <= 0 or gap > missing * 5760:
            gap = missing * self._last_duration  # timestamps that do not add up
        gap -= self._waited  # what was concealed already while waiting
        self.stats.lost += missing
        speech = len(after.payload) > DTX_MAX_BYTES
        flags = silk_flags(after.payload) if speech else None
        if flags is not None and flags[1]:
            # The sender sends FEC copies: keep the next packet at hand from now on.
            self.delay.lost(now)
        self._next_seq = later
        self._next_ts = after.timestamp
        self._waited = 0
        self._underruns = 0
        if gap <= 0:
            return np.zeros(0, dtype=np.int16)
        if speech:
            if missing == 1 and flags is not None and flags[1]:
                self.stats.recovered += 1
            try:
                return self.decoder.recover(after.payload, gap)
            except OpusDecodeError:
                pass
        return self.decoder.conceal(gap)

    def _drops(self, chunk: Pcm) -> bool:
        """While trimming: whether to drop this chunk (quiet, or the second chance passed)."""
        power = float(np.mean(np.square(chunk, dtype=np.float64))) / 32768.0**2
        if power < QUIET_POWER or self._window_ticks > DEPTH_WINDOW_TICKS // 2:
            self._trim = False
            self.stats.dropped_for_depth += 1
            dropped_packets["catch_up"] += 1
            return True
        return False

    def _watch_depth(self) -> None:
        """Trim a frame when the voice has been held a frame longer than needed for a while."""
        ahead = len(self._pcm)
        if self._packets and self._highest is not None:
            ahead += max(0, self._highest_ts + self._last_duration - self._next_ts)
        if self._min_ahead is None or ahead < self._min_ahead:
            self._min_ahead = ahead
        self._window_ticks += 1
        if self._window_ticks < DEPTH_WINDOW_TICKS:
            return
        excess = self._min_ahead / SAMPLE_RATE - self.delay.target()
        self._trim = excess >= FRAME_SECONDS
        self._min_ahead = None
        self._window_ticks = 0
