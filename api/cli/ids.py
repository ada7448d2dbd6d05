"""Job ids as people type them: any unique start of one (as git takes commit ids), such as the
eight characters the progress bar and `sluice jobs` show. The API's job listing finds the jobs
a prefix starts (`idPrefix`)."""

from __future__ import annotations

import re
import urllib.parse

from api.cli.client import call
from api.cli.errors import NOT_FOUND, CliError, UsageError

JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PREFIX = re.compile(r"[0-9a-f-]{1,36}")
SHORT = 8  # characters of a job id shown where space is short
CANDIDATES = 10  # ids an ambiguous prefix lists


def short(job_id: str | None) -> str:
    return "-" if job_id is None else job_id[:SHORT]


def job_id(base: str, given: str) -> str:
    """The job `given` names: itself when it is a whole id (or no prefix of one: the API then
    answers that it has no such job), else the one job whose id starts with it."""
    text = given.strip().lower()
    if not text:
        raise UsageError("give a job id, or the start of one")
    if JOB_ID.fullmatch(text) or not PREFIX.fullmatch(text):
        return given
    query = urllib.parse.urlencode({"idPrefix": text, "limit": str(CANDIDATES)})
    page = call("GET", f"{base}/api/batch/jobs?{query}")
    ids = [item["jobId"] for item in page["items"]]
    return pick(given, ids, more=page.get("nextCursor") is not None, base=base)


def pick(given: str, ids: list[str], *, more: bool, base: str) -> str:
    """The one id of `ids` (the jobs `given` starts), or why there is not one."""
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise CliError(f"no job starts with {given!r} at {base} (see `sluice jobs`)", NOT_FOUND)
    listed = ", ".join(ids) + (", ..." if more else "")
    count = f"more than {len(ids)}" if more else str(len(ids))
    raise UsageError(f"{given!r} starts {count} job ids: {listed}; give more of the id")
