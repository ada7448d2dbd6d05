"""Commit only offsets Sluice has processed: the at-least-once floor under Faust.

Faust acks an event it *skips* as if it were processed: events that reach a stream while flow
control is suspended (a rebalance, a graceful stop) or that carry an older consumer generation
are dropped and acked "so that the lag does not grow", and its commit then moves past them.
Measured here: a worker stopped with SIGTERM right after a submission committed 17 chunks it
never applied. Faust's own gap check also lets one un-acked offset be committed past
(shared/BROKER.md #8).

So for the topics Sluice consumes, the committed offset is computed here instead, from the
offsets the agents report done: it is the end of the contiguous run of done offsets starting at
the partition's committed offset. An offset Faust skipped holds the commit back, and is read
again: the chunk agent admits events strictly in offset order (`admit`) and seeks back to the
first hole it meets, so records sharing a key are still applied in submission order; a repair
timer does the same for a partition whose last events were skipped. Redelivery is harmless:
applying a chunk and counting progress are idempotent.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition
from faust.transport import consumer as faust_consumer

from streams.kafka.consumer import committed_offsets

log = logging.getLogger(__name__)

# A partition whose reader is past a hole and has had nothing in flight for this long is
# re-read from its committed offset.
REPAIR_AFTER_SECONDS = 3.0


class CommitGuard:
    def __init__(self, topics: Iterable[str]):
        self.topics = frozenset(topics)
        self._done: dict[TopicPartition, set[int]] = defaultdict(set)
        self._in_flight: dict[TopicPartition, set[int]] = defaultdict(set)
        self._watermark: dict[TopicPartition, int] = {}
        self._earliest: dict[TopicPartition, int] = {}
        self._last_progress: dict[TopicPartition, float] = {}
        self._busy_since: dict[TopicPartition, float] = {}  # when its work in flight began
        self._rewinding: dict[TopicPartition, tuple[int, float]] = {}
        # the offset after the last one admitted: chunks parked for a retry are admitted, not done
        self._admitted: dict[TopicPartition, int] = {}

    def guards(self, tp: TopicPartition) -> bool:
        return tp.topic in self.topics

    # -- reported by the agents --------------------------------------------------------------

    def begin(self, tp: TopicPartition, offset: int) -> None:
        if not self._in_flight[tp]:
            self._busy_since[tp] = time.monotonic()
        self._in_flight[tp].add(offset)

    def done(self, tp: TopicPartition, offset: int) -> None:
        self._in_flight[tp].discard(offset)
        self._done[tp].add(offset)
        self._last_progress[tp] = time.monotonic()
        self._rewinding.pop(tp, None)

    def abandon(self, tp: TopicPartition, offset: int) -> None:
        """Its work failed: not in flight, not done (it holds the commit back, to be read again)."""
        self._in_flight[tp].discard(offset)

    def stalled(self, now: float, seconds: float) -> list[TopicPartition]:
        """Partitions with work in flight and no offset done for more than `seconds`."""
        return [
            tp
            for tp, offsets in self._in_flight.items()
            if offsets
            and now - max(self._busy_since.get(tp, now), self._last_progress.get(tp, 0.0)) > seconds
        ]

    # -- rebalances ----------------------------------------------------------------------------

    def set_earliest(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Log-start offsets: where a partition with no committed offset begins."""
        self._earliest.update(offsets)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            for table in (
                self._done,
                self._in_flight,
                self._watermark,
                self._last_progress,
                self._busy_since,
                self._rewinding,
                self._admitted,
            ):
                table.pop(tp, None)

    # -- the watermark: the next offset after the contiguous run of done offsets ---------------

    def watermark(
        self, tp: TopicPartition, committed: int | None, default: int | None = None
    ) -> int | None:
        base = committed if committed is not None else self._earliest.get(tp)
        if base is None:  # nothing known yet: continue from where this process got to
            base = self._watermark.get(tp, default)
        if base is None:
            return None
        mark = max(self._watermark.get(tp, base), base)
        done = self._done[tp]
        while mark in done:
            mark += 1
        done.difference_update([o for o in done if o < mark])
        self._watermark[tp] = mark
        return mark

    def commit_offset(self, tp: TopicPartition, committed: int | None) -> int | None:
        """What may be committed for `tp` now, or None when nothing new."""
        mark = self.watermark(tp, committed)
        base = committed if committed is not None else self._earliest.get(tp)
        if mark is None or base is None or mark <= base:
            return None
        return mark

    def committable(
        self, committed: Mapping[TopicPartition, int | None], assignment: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        offsets = {}
        for tp in assignment:
            if self.guards(tp):
                offset = self.commit_offset(tp, committed.get(tp))
                if offset is not None:
                    offsets[tp] = offset
        return offsets

    # -- in-order admission, for agents whose effects must follow the partition's order --------

    def admit(self, tp: TopicPartition, offset: int, committed: int | None) -> int | None:
        """None: apply this event now. -1: applied (or admitted) before, drop it. Otherwise the
        offset of a hole before it: drop it, and read the partition again from there."""
        mark = self.watermark(tp, committed, default=offset)
        assert mark is not None
        expected = max(mark, self._admitted.get(tp, mark))
        if offset < expected:
            return -1
        if offset > expected:
            return expected
        self._admitted[tp] = offset + 1
        return None

    def skip_gap(self, tp: TopicPartition, first_offset: int) -> None:
        """The log itself has no records before `first_offset` (control records, compaction)."""
        self._watermark[tp] = max(self._watermark.get(tp, first_offset), first_offset)

    def start_rewind(self, tp: TopicPartition, offset: int, seconds: float = 5.0) -> bool:
        """True when a re-read from `offset` should start now (not one already under way)."""
        pending = self._rewinding.get(tp)
        now = time.monotonic()
        if pending and pending[0] == offset and now - pending[1] < seconds:
            return False
        self._rewinding[tp] = (offset, now)
        return True

    def reread_from(
        self, tp: TopicPartition, position: int | None, committed: int | None
    ) -> int | None:
        """Where to re-read a quiet partition whose reader is past offsets never processed."""
        mark = self.watermark(tp, committed)
        if position is None or mark is None or position <= mark or self._in_flight[tp]:
            return None
        since = time.monotonic() - self._last_progress.get(tp, 0.0)
        if since < REPAIR_AFTER_SECONDS or not self.start_rewind(tp, mark):
            return None
        return mark


def install(app: Any, guard: CommitGuard) -> None:
    """Route the Faust consumer's commit decisions for `guard.topics` through `guard`."""
    app._sluice_commit_guard = guard
    consumer_class: Any = faust_consumer.Consumer
    if getattr(consumer_class, "_sluice_commit_guard_installed", False):
        return
    original = consumer_class._filter_committable_offsets

    def _filter_committable_offsets(self: Any, tps: Iterable[Any]) -> dict[Any, int]:
        offsets = original(self, tps)
        guard: CommitGuard | None = getattr(self.app, "_sluice_commit_guard", None)
        if guard is None:
            return offsets
        offsets = {tp: offset for tp, offset in offsets.items() if not guard.guards(tp)}
        committed = committed_offsets(self)
        for tp, offset in guard.committable(committed, self.assignment()).items():
            if committed.get(tp) is None or offset > committed[tp]:
                offsets[tp] = offset
        return offsets

    consumer_class._filter_committable_offsets = _filter_committable_offsets
    consumer_class._sluice_commit_guard_installed = True
