"""How Sluice's processes (workers and writer processes) use the garbage collector."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Collect young objects less often: a worker allocates a few containers per record, and
    with Python's default threshold (700) the collector ran every few records, walking the
    records buffered for chunking each time. Memory stays bounded by those buffers."""
    gc.freeze()  # what start-up created lives for the whole process
    gc.set_threshold(50_000, 20, 20)
