"""The scheduling priority of a process that carries live audio.

One Hearth process carries every circle's audio on one thread (its event loop), while a
machine's other work may run on many: Linux's scheduler shares the CPU per thread, so on a
starved machine that one thread gets a thin slice and audio stops where a many-threaded
server (Janus runs one or more threads per participant) still gets through
(docs/performance.md, "Overload"). Audio servers ask for a higher priority for this reason
(PipeWire and PulseAudio through rtkit; PipeWire takes nice -11). Hearth asks for a nice
value (``HEARTH_NICE``, default -10: about nine times the CPU weight of a normal process),
never a real-time class that could starve the machine. With the refusal of newcomers when
the loop lags (rooms/overload.py) one process uses at most about one core, so the rest of
the machine keeps the others.

Lowering a nice value needs privilege (root, or CAP_SYS_NICE, or an RLIMIT_NICE allowance):
without it the process runs at its normal priority and says so once.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def apply_nice(nice: int) -> int:
    """Set this process's nice value to ``nice`` (threads started later inherit it) when it
    is allowed to; return the nice value it runs at."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice == current:
        return current
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except PermissionError:
        log.info(
            "running at nice %d: not allowed to take %d (needs CAP_SYS_NICE); on a busy "
            "machine audio gets less CPU (docs/deploy.md)",
            current,
            nice,
        )
        return current
    return os.getpriority(os.PRIO_PROCESS, 0)
