"""A job's `summary`, by what its type does: an import's says what the records did to the
users (created, updated) and which columns it ignored; an export's how many users it wrote and
with which format and filter. Both say what sits in dead letters and sample the failures."""

from __future__ import annotations

from typing import Any

from streams.clock import iso_ms
from streams.jobtypes import JOB_TYPES
from streams.progress import State


def summary(state: State, job_type: str) -> dict[str, Any]:
    known = JOB_TYPES.get(state.get("type") or job_type)
    if known is not None and known.generates_records:
        own = _export(state)
    else:
        own = {
            "created": state["created"],
            "updated": state["updated"],
            "unknownColumns": state["unknownColumns"],
        }
    return {**own, **_failures(state)}


def _export(state: State) -> dict[str, Any]:
    options = state.get("options") or {}
    return {
        "exported": state["successful"],
        "format": options.get("format"),
        "filter": options.get("filter") or {},
    }


def _failures(state: State) -> dict[str, Any]:
    return {
        "deadLettered": state["deadLettered"],
        "deadLetteredChunks": len(state.get("deadLetters", {})),
        "deadLettersLost": 0,  # dead-lettered chunks the broker lost (job_view: the registry's)
        "lastReplayAt": iso_ms(state.get("lastReplayAt")),
        "errorsTotal": state["failed"],
        "errors": sorted(state["errors"], key=lambda e: e["row"]),
    }
