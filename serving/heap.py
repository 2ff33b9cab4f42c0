"""Give the C heap's free memory back to the system now and then (glibc `malloc_trim`).

A model called with batches of every shape (1 to 64 posts, 5 to 128 tokens) frees and allocates
blocks of ever-changing sizes; glibc keeps the freed ones in its arenas instead of returning them,
so the Classifier's resident memory crept up under a soak although nothing was held
(docs/SECURITY.md, "Soak"). `malloc_trim(0)` releases the free pages; it takes about a millisecond
and runs at most once per `every_s`. On a C library without it (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time


class HeapTrimmer:
    def __init__(self, every_s: float = 10.0):
        self.every_s = every_s
        self._last = time.monotonic()
        self.trims = 0
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            self._trim = libc.malloc_trim
            self._trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            self._trim = None

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe_trim(self) -> bool:
        """Trim when `every_s` has passed since the last trim; returns whether it trimmed."""
        now = time.monotonic()
        if self._trim is None or now - self._last < self.every_s:
            return False
        self._last = now
        self._trim(0)
        self.trims += 1
        return True
