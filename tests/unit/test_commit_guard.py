"""streams.kafka.commit_guard: commit only offsets Sluice processed, and find the holes."""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition

from streams.kafka import commit_guard
from streams.kafka.commit_guard import CommitGuard

TP = TopicPartition("app.chunks", 0)
OTHER = TopicPartition("app.chunks", 1)
UNGUARDED = TopicPartition("app-job-progress-changelog", 0)


class Clock:
    """A stand-in for time.monotonic inside commit_guard."""

    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(commit_guard.time, "monotonic", fake)
    return fake


def guard_with_done(*offsets: int, tp: TopicPartition = TP) -> CommitGuard:
    guard = CommitGuard({"app.chunks", "app.progress"})
    for offset in offsets:
        guard.begin(tp, offset)
        guard.done(tp, offset)
    return guard


# -- what may be committed ---------------------------------------------------------------------


def test_commit_offset_is_the_end_of_the_contiguous_done_run() -> None:
    guard = guard_with_done(10, 11, 12)
    assert guard.commit_offset(TP, committed=10) == 13


def test_a_hole_holds_the_commit_back() -> None:
    guard = guard_with_done(10, 12, 13)  # 11 was skipped
    assert guard.commit_offset(TP, committed=10) == 11
    assert guard.commit_offset(TP, committed=11) is None  # nothing new past the hole
    guard.done(TP, 11)
    assert guard.commit_offset(TP, committed=11) == 14


def test_nothing_to_commit_when_the_committed_offset_is_not_done() -> None:
    guard = guard_with_done(11, 12)
    assert guard.commit_offset(TP, committed=10) is None


def test_offsets_before_the_committed_one_do_not_count() -> None:
    guard = guard_with_done(3, 4, 5)
    assert guard.commit_offset(TP, committed=20) is None
    guard.done(TP, 20)
    assert guard.commit_offset(TP, committed=20) == 21


def test_in_flight_offsets_hold_the_commit() -> None:
    guard = guard_with_done(0)
    guard.begin(TP, 1)
    guard.begin(TP, 2)
    guard.done(TP, 2)
    assert guard.commit_offset(TP, committed=0) == 1


def test_earliest_offset_is_the_base_when_nothing_is_committed() -> None:
    guard = guard_with_done(5, 6)
    assert guard.commit_offset(TP, committed=None) is None  # no base known yet
    guard.set_earliest({TP: 5})
    assert guard.commit_offset(TP, committed=None) == 7


def test_earliest_offset_with_a_hole_at_the_log_start() -> None:
    guard = guard_with_done(6, 7)
    guard.set_earliest({TP: 5})
    assert guard.commit_offset(TP, committed=None) is None


def test_committable_covers_only_guarded_topics_of_the_assignment() -> None:
    guard = guard_with_done(0, 1)
    guard.done(OTHER, 0)
    guard.done(UNGUARDED, 0)
    committable = guard.committable({TP: 0, OTHER: 0, UNGUARDED: 0}, [TP, OTHER, UNGUARDED])
    assert committable == {TP: 2, OTHER: 1}
    assert guard.committable({TP: 0, OTHER: 0}, [OTHER]) == {OTHER: 1}  # only what is assigned


# -- in-order admission --------------------------------------------------------------------------


def test_admit_the_expected_offset() -> None:
    guard = CommitGuard({"app.chunks"})
    assert guard.admit(TP, 10, committed=10) is None


def test_admit_drops_offsets_already_done() -> None:
    guard = guard_with_done(10, 11)
    assert guard.admit(TP, 10, committed=10) == -1
    assert guard.admit(TP, 11, committed=10) == -1
    assert guard.admit(TP, 12, committed=10) is None


def test_admit_names_the_hole_before_an_early_offset() -> None:
    guard = guard_with_done(10)
    assert guard.admit(TP, 13, committed=10) == 11
    guard.done(TP, 11)
    assert guard.admit(TP, 13, committed=10) == 12


def test_admit_with_nothing_committed_and_no_log_start_admits_the_first_offset() -> None:
    guard = CommitGuard({"app.chunks"})
    assert guard.admit(TP, 42, committed=None) is None
    guard.done(TP, 42)
    assert guard.admit(TP, 42, committed=None) == -1
    assert guard.commit_offset(TP, committed=None) is None  # no base: nothing is committed


def test_admit_with_nothing_committed_uses_the_log_start() -> None:
    guard = CommitGuard({"app.chunks"})
    guard.set_earliest({TP: 0})
    assert guard.admit(TP, 3, committed=None) == 0


def test_skip_gap_steps_over_offsets_the_log_does_not_have() -> None:
    guard = guard_with_done(0)
    assert guard.admit(TP, 5, committed=0) == 1
    guard.skip_gap(TP, 5)  # offsets 1..4 are control records
    assert guard.admit(TP, 5, committed=0) is None
    guard.done(TP, 5)
    assert guard.commit_offset(TP, committed=0) == 6


# -- repairing a quiet partition ------------------------------------------------------------------


def test_reread_from_waits_for_the_quiet_period(clock: Clock) -> None:
    guard = guard_with_done(0, 2)  # 1 was skipped, the reader is at 3
    assert guard.reread_from(TP, position=3, committed=0) is None
    clock.now += commit_guard.REPAIR_AFTER_SECONDS - 0.1
    assert guard.reread_from(TP, position=3, committed=0) is None
    clock.now += 0.2
    assert guard.reread_from(TP, position=3, committed=0) == 1


def test_reread_from_starts_one_rewind_at_a_time(clock: Clock) -> None:
    guard = guard_with_done(0, 2)
    clock.now += commit_guard.REPAIR_AFTER_SECONDS + 1
    assert guard.reread_from(TP, position=3, committed=0) == 1
    assert guard.reread_from(TP, position=3, committed=0) is None  # already under way
    clock.now += 5.1  # the rewind did not help: try again
    assert guard.reread_from(TP, position=3, committed=0) == 1


def test_reread_from_not_while_offsets_are_in_flight(clock: Clock) -> None:
    guard = guard_with_done(0, 2)
    guard.begin(TP, 3)
    clock.now += 60
    assert guard.reread_from(TP, position=4, committed=0) is None
    guard.done(TP, 3)
    clock.now += 60
    assert guard.reread_from(TP, position=4, committed=0) == 1


def test_abandoned_work_is_read_again_and_holds_the_commit(clock: Clock) -> None:
    guard = guard_with_done(0)
    guard.begin(TP, 1)  # its chunk was not acknowledged
    guard.begin(TP, 2)
    guard.done(TP, 2)
    guard.abandon(TP, 1)
    assert guard.commit_offset(TP, committed=0) == 1
    clock.now += commit_guard.REPAIR_AFTER_SECONDS + 1
    assert guard.reread_from(TP, position=3, committed=0) == 1


def test_reread_from_not_when_the_reader_is_at_the_watermark(clock: Clock) -> None:
    guard = guard_with_done(0, 1, 2)
    clock.now += 60
    assert guard.reread_from(TP, position=3, committed=0) is None
    assert guard.reread_from(TP, position=None, committed=0) is None


def test_reread_from_with_a_patched_quiet_period(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_guard, "REPAIR_AFTER_SECONDS", 0.0)
    guard = guard_with_done(0, 2)
    assert guard.reread_from(TP, position=3, committed=0) == 1


def test_done_cancels_a_pending_rewind(clock: Clock) -> None:
    guard = guard_with_done(0, 2)
    guard.start_rewind(TP, 1)
    assert guard.start_rewind(TP, 1) is False
    guard.done(TP, 1)
    assert guard.start_rewind(TP, 1) is True


def test_start_rewind_to_another_offset_starts_at_once(clock: Clock) -> None:
    guard = CommitGuard({"app.chunks"})
    assert guard.start_rewind(TP, 1) is True
    assert guard.start_rewind(TP, 1) is False
    assert guard.start_rewind(TP, 7) is True


# -- revocation ----------------------------------------------------------------------------------


def test_forget_drops_a_revoked_partition() -> None:
    guard = guard_with_done(0, 1, 2)
    guard.done(OTHER, 0)
    assert guard.admit(TP, 5, committed=0) == 3
    guard.forget([TP])
    assert guard.commit_offset(TP, committed=0) is None
    assert guard.admit(TP, 0, committed=0) is None  # read again from the commit, nothing known
    assert guard.commit_offset(OTHER, committed=0) == 1  # other partitions are untouched


def test_admit_with_no_base_known_still_sees_a_later_hole() -> None:
    guard = CommitGuard({TP.topic})
    assert guard.admit(TP, 42, committed=None) is None
    guard.begin(TP, 42)
    guard.done(TP, 42)
    assert guard.admit(TP, 44, committed=None) == 43


def test_an_offset_after_a_parked_one_is_admitted_not_a_hole() -> None:
    guard = CommitGuard({TP.topic})
    assert guard.admit(TP, 10, 10) is None
    guard.begin(TP, 10)  # parked for a retry: admitted, not done
    assert guard.admit(TP, 11, 10) is None
    guard.begin(TP, 11)
    guard.done(TP, 11)
    assert guard.commit_offset(TP, 10) is None  # the parked offset holds the commit
    assert guard.admit(TP, 10, 10) == -1  # read again (a re-read): it is parked already
    assert guard.admit(TP, 13, 10) == 12  # a real hole is still one
    guard.done(TP, 10)
    assert guard.commit_offset(TP, 10) == 12


def test_forgetting_a_partition_forgets_what_was_admitted() -> None:
    guard = CommitGuard({TP.topic})
    assert guard.admit(TP, 10, 10) is None
    guard.forget([TP])
    assert guard.admit(TP, 10, 10) is None
