"""What RTCP reports say about one stream, counted by the audio path itself (RFC 3550).

The audio path takes voices' packets before aiortc's receiver and writes listeners' packets
past aiortc's sender (signaling.voice), so aiortc's own counters see nothing. These are the
counters instead: ``ReceptionStats`` for a receiver report block (loss, extended highest
sequence number, interarrival jitter, LSR/DLSR, RFC 3550 section 6.4.1 and appendix A.3,
A.8) and ``SendingStats`` for a sender report's sender info (section 6.4.1).

Pure: every time is passed in (Unix seconds, or milliseconds where the caller has them).
"""

from __future__ import annotations

from dataclasses import dataclass

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 (NTP's epoch) to 1970
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
# A sequence number this far ahead of the highest one starts a new count (the sender
# restarted), as RFC 3550 appendix A.1's MAX_DROPOUT; further behind is a stray, ignored.
MAX_DROPOUT = 3000
MAX_MISORDER = 100


def ntp_time(unix_seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) of a Unix time."""
    return int((unix_seconds + NTP_UNIX_OFFSET) * (1 << 32)) & 0xFFFF_FFFF_FFFF_FFFF


def middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: what LSR carries (section 6.4.1)."""
    return (ntp >> 16) & 0xFFFF_FFFF


@dataclass(frozen=True)
class ReceptionReport:
    """One report block's numbers, as they go on the wire."""

    fraction_lost: int  # of 256, since the previous report
    packets_lost: int  # cumulative, 24-bit signed
    highest_sequence: int  # extended: cycles << 16 | highest seq
    jitter: int  # in timestamp units
    lsr: int
    dlsr: int  # 1/65536 s since that sender report arrived


class ReceptionStats:
    """One inbound RTP stream's counts for receiver reports."""

    def __init__(self, clock_rate: int) -> None:
        self._units_per_ms = clock_rate / 1000
        self.received = 0
        self._base = 0  # extended seq of the first packet
        self._highest = -1  # extended highest seq, -1 before any packet
        self._transit: int | None = None
        self._jitter_q4 = 0  # jitter in timestamp units, times 16 (appendix A.8)
        self._expected_prior = 0
        self._received_prior = 0
        self._lsr = 0
        self._lsr_arrival: float | None = None

    def add(self, seq: int, timestamp: int, arrival_ms: int) -> None:
        """A packet arrived (every one, even one dropped before its payload is read)."""
        if self._highest < 0:
            self._base = self._highest = seq
        else:
            ext = self._highest + ((seq - self._highest + 0x8000) & 0xFFFF) - 0x8000
            if ext > self._highest + MAX_DROPOUT or ext < self._highest - MAX_MISORDER:
                if ext < self._highest and ext > self._highest - MAX_DROPOUT:
                    return  # an old stray: not counted
                # The sender started afresh: count from here.
                self._base = self._highest = seq
                self.received = 0
                self._expected_prior = self._received_prior = 0
                self._transit = None
            elif ext > self._highest:
                self._highest = ext
        self.received += 1
        transit = int(arrival_ms * self._units_per_ms) - timestamp
        if self._transit is not None:
            d = (transit - self._transit + (TS_MOD >> 1)) % TS_MOD - (TS_MOD >> 1)
            self._jitter_q4 += abs(d) - ((self._jitter_q4 + 8) >> 4)
        self._transit = transit

    def sender_report(self, ntp_timestamp: int, arrival: float) -> None:
        """The stream's sender report arrived (its NTP timestamp, our Unix time)."""
        self._lsr = middle_32(ntp_timestamp)
        self._lsr_arrival = arrival

    @property
    def expected(self) -> int:
        return 0 if self._highest < 0 else self._highest - self._base + 1

    @property
    def lost(self) -> int:
        """Cumulative loss: negative when duplicates outnumber losses (section 6.4.1)."""
        return self.expected - self.received

    @property
    def jitter(self) -> int:
        return self._jitter_q4 >> 4

    def report(self, now: float) -> ReceptionReport | None:
        """The next report block (this starts a new interval for the loss fraction), or None
        before any packet."""
        if self._highest < 0:
            return None
        expected = self.expected
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        dlsr = 0
        if self._lsr_arrival is not None:
            dlsr = max(0, min(0xFFFF_FFFF, int((now - self._lsr_arrival) * 65536)))
        return ReceptionReport(
            fraction_lost=fraction,
            packets_lost=max(-(1 << 23), min((1 << 23) - 1, self.lost)),
            highest_sequence=self._highest & 0xFFFF_FFFF,
            jitter=self.jitter,
            lsr=self._lsr,
            dlsr=dlsr,
        )


@dataclass(frozen=True)
class SenderInfo:
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int


class SendingStats:
    """One outbound stream's counts for sender reports."""

    def __init__(self, clock_rate: int) -> None:
        self._clock_rate = clock_rate
        self.packets = 0
        self.octets = 0  # payload octets, as section 6.4.1 counts them
        self._timestamp: int | None = None  # newest RTP timestamp sent ...
        self._sent_at = 0.0  # ... and when (Unix seconds)

    def sent(self, timestamp: int, payload_octets: int, now: float) -> None:
        self.packets += 1
        self.octets += payload_octets
        newer = self._timestamp is None or 0 < (timestamp - self._timestamp) % TS_MOD < TS_MOD >> 1
        if newer:
            self._timestamp = timestamp
            self._sent_at = now

    def sender_info(self, now: float) -> SenderInfo | None:
        """The NTP time ``now`` and the RTP timestamp of the same instant (the newest packet's,
        advanced by the time since it went out), with the counts; None before any packet."""
        if self._timestamp is None:
            return None
        elapsed = round((now - self._sent_at) * self._clock_rate)
        return SenderInfo(
            ntp_timestamp=ntp_time(now),
            rtp_timestamp=(self._timestamp + elapsed) % TS_MOD,
            packet_count=self.packets % TS_MOD,
            octet_count=self.octets % TS_MOD,
        )
