"""How an upstream job's total becomes known, and what records counted past it mean.

Records from an input topic come without a count (streams/intake/). A batch's total is what its
`end` message says (BatchEnded): the first end holds, copies change nothing, and more records
than it said fail the job. The standing job of a day (records without a batch) closes once its
day is over and every record of that day the intake had read is counted (StandingClosed, sent
by streams/agents/standing.py, which says why that count is exact): its total is the records its
progress has counted when the close is folded. A record of that day counted after the close
reopens the job (active again, total unknown) until the next StandingClosed closes it again with
the new counts, as a replay does; a batch's job is never reopened.

Pure: these change a progress state (streams/progress.py) in place.
"""

from __future__ import annotations

from typing import Any

from streams.wire.events import BATCH_ENDED, STANDING_CLOSED


def end(state: dict[str, Any], kind: str, body: dict[str, Any]) -> bool:
    """Fold a BatchEnded or StandingClosed into `state`; False when it changes nothing."""
    if state.get("ended"):
        return False  # a copy: the first end holds (a standing job's until it reopens)
    if kind == BATCH_ENDED:
        state.update(totalRecords=body["count"], ended=True)
        return True
    if kind == STANDING_CLOSED and state.get("standingDay") == body["day"]:
        state.update(totalRecords=state["records"], ended=True)
        return True
    return False


def note_past_end(state: dict[str, Any]) -> None:
    """Records counted past an upstream job's end: a batch's job fails, a standing job reopens
    (its total is what its next close finds)."""
    if not (state.get("upstream") and state.get("ended")) or state["error"]:
        return
    total, records = state["totalRecords"], state["records"]
    if state.get("standingDay"):
        if records != total:  # a late record; or a replay that counted fewer than before
            state.update(ended=False, totalRecords=None)
    elif records > total:
        state["error"] = f"the batch's end said {total} records; {records} arrived"
