"""Wall time and peak resident memory of one stage of the benchmark.

Peak memory is the kernel's high-water mark of this process (``VmHWM``), reset before each stage
by writing ``5`` to ``/proc/self/clear_refs`` (Linux 4.0+), so each stage reports its own peak
and not the largest one so far. Everything (dbt, DuckDB, the SMTP sink thread) runs in this one
process, so the number covers all of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the high-water mark to the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    kb = _status_kb("VmHWM")
    return None if kb is None else round(kb / 1024, 1)


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mb: float | None = None


@contextmanager
def measured() -> Iterator[Measurement]:
    """Time the block and record this process's peak RSS while it ran."""
    result = Measurement()
    reset_peak_rss()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = round(time.perf_counter() - started, 3)
        result.peak_rss_mb = peak_rss_mb()
