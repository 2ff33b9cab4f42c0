"""serving/heap.py: malloc_trim at most once per interval."""

from __future__ import annotations

import time

from serving.heap import HeapTrimmer


def test_trims_at_most_once_per_interval_and_gives_free_memory_back():
    import psutil

    trimmer = HeapTrimmer(every_s=0.2)
    assert trimmer.available  # glibc on the machines this runs on
    assert trimmer.maybe_trim() is False  # the interval starts at creation
    time.sleep(0.25)
    # ~128 MB in blocks below glibc's mmap threshold; keeping every tenth one pins the heap's top,
    # so freeing the rest leaves free pages inside the heap that only a trim returns.
    blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(2000)]
    kept = blocks[::10]
    del blocks
    before = psutil.Process().memory_info().rss
    assert trimmer.maybe_trim() is True and trimmer.trims == 1
    assert before - psutil.Process().memory_info().rss > 50e6
    assert len(kept) == 200
    assert trimmer.maybe_trim() is False  # not again within the interval


def test_without_malloc_trim_it_does_nothing():
    trimmer = HeapTrimmer(every_s=0.0)
    trimmer._trim = None
    assert trimmer.available is False and trimmer.maybe_trim() is False and trimmer.trims == 0
