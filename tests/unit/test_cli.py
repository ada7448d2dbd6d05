"""The `sluice` command's pure parts: which API it talks to, how failures map to one line and an
exit code, short job ids, file names and formats, a followed job's exit code, and what people
read. The command against a running stack: tests/e2e/test_cli.py."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from api.cli import build_parser, main
from api.cli.client import api_url
from api.cli.errors import (
    CONFIG,
    DATA,
    FAILED,
    INTERRUPTED,
    IO,
    NO_PERMISSION,
    NOT_FOUND,
    PIPE,
    SOFTWARE,
    UNAVAILABLE,
    USAGE,
    ApiError,
    CliError,
    UsageError,
    code_of_status,
    failure,
)
from api.cli.export import export_target
from api.cli.files import format_of
from api.cli.ids import pick, short
from api.cli.jobs import verdict
from api.cli.output import text
from api.cli.render import job_fields, progress_text, replay_text, result_line
from api.cli.results import output_kind
from streams.config import settings
from streams.exceptions import ConfigError

JOB = "0a1b2c3d-1111-4222-8333-444455556666"
OTHER = "0a1b2c3d-9999-4222-8333-444455556666"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in [n for n in os.environ if n.startswith("SLUICE_")]:
        monkeypatch.delenv(name)
    settings.cache_clear()
    yield monkeypatch
    settings.cache_clear()


def test_the_api_url_comes_from_the_switch_then_the_environment_then_the_port(
    environment: pytest.MonkeyPatch,
) -> None:
    assert api_url() == "http://127.0.0.1:8000"
    environment.setenv("SLUICE_API_PORT", "8123")
    settings.cache_clear()
    assert api_url() == "http://127.0.0.1:8123"
    environment.setenv("SLUICE_API_URL", "http://sluice.example:9000/")
    settings.cache_clear()
    assert api_url() == "http://sluice.example:9000"
    assert api_url("http://127.0.0.1:8001") == "http://127.0.0.1:8001"  # the switch wins
    with pytest.raises(UsageError, match="--api-url must be an http"):
        api_url("127.0.0.1:8001")
    environment.setenv("SLUICE_API_URL", "ftp://x")
    settings.cache_clear()
    with pytest.raises(CliError, match="SLUICE_API_URL must be") as raised:
        api_url()
    assert raised.value.code == CONFIG


def test_the_shared_switches_work_before_and_after_the_command() -> None:
    parser = build_parser()
    after = parser.parse_args(["jobs", "--json", "--api-url", "http://a:1"])
    before = parser.parse_args(["--json", "--api-url", "http://a:1", "jobs"])
    neither = parser.parse_args(["jobs"])
    assert (after.json, after.api_url) == (before.json, before.api_url) == (True, "http://a:1")
    assert (neither.json, neither.api_url) == (False, None)
    for command in (
        ["submit", "f.csv", "--type", "user-import"],
        ["status", "x"],
        ["cancel", "x"],
        ["delete", "x"],
        ["errors", "x"],
        ["results", "x"],
        ["export", "-o", "x.csv"],
        ["dlq", "list"],
        ["dlq", "show", "x"],
        ["dlq", "replay"],
    ):
        parsed = parser.parse_args([*command, "--json", "--api-url", "http://b:2"])
        assert (parsed.json, parsed.api_url) == (True, "http://b:2"), command
    for command in (["keys", "list"], ["keys", "create", "--tenant", "t"], ["config"]):
        assert parser.parse_args([*command, "--json"]).json is True, command


def test_an_api_error_ends_with_the_code_of_its_status() -> None:
    assert [code_of_status(s) for s in (400, 401, 403, 404, 409, 413, 415, 422)] == [
        DATA,
        NO_PERMISSION,
        NO_PERMISSION,
        NOT_FOUND,
        DATA,
        DATA,
        DATA,
        DATA,
    ]
    assert {code_of_status(s) for s in (408, 429, 500, 502, 503)} == {UNAVAILABLE}
    error = ApiError(404, {"error": {"code": "not_found", "message": "no job 'x'"}}, "http://h:1")
    assert failure(error) == ("no job 'x' (404 not_found from http://h:1)", NOT_FOUND)


def test_every_failure_is_one_line_and_a_code() -> None:
    assert failure(BrokenPipeError()) == ("", PIPE)
    assert failure(KeyboardInterrupt()) == ("interrupted", INTERRUPTED)
    assert failure(ConfigError("SLUICE_X must be a number")) == ("SLUICE_X must be a number", 78)
    assert failure(UsageError("give more")) == ("give more", USAGE)
    lost = OperationalError("SELECT 1", {}, Exception("connection refused\n\tIs it running?"))
    assert failure(lost) == ("the database did not answer: connection refused", UNAVAILABLE)
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory", "x.csv")
    assert failure(gone) == ("x.csv: No such file or directory", IO)
    message, code = failure(KeyError("jobId"))
    assert code == SOFTWARE and "\n" not in message and "KeyError" in message


def test_a_prefix_names_one_job_or_says_why_not() -> None:
    assert pick("0a1b", [JOB], more=False, base="http://h:1") == JOB
    with pytest.raises(CliError, match="no job starts with '9f'") as none:
        pick("9f", [], more=False, base="http://h:1")
    assert none.value.code == NOT_FOUND
    with pytest.raises(UsageError) as two:
        pick("0a1b", [JOB, OTHER], more=False, base="http://h:1")
    assert str(two.value) == f"'0a1b' starts 2 job ids: {JOB}, {OTHER}; give more of the id"
    with pytest.raises(UsageError, match=r"more than 2 job ids: .*, \.\.\.;"):
        pick("0", [JOB, OTHER], more=True, base="http://h:1")
    assert short(JOB) == "0a1b2c3d" and short(None) == "-"


def test_a_file_name_says_its_format_and_whether_it_is_gzip() -> None:
    assert format_of("users.ndjson.gz") == ("ndjson", True)
    assert format_of("users.NDJSON") == ("ndjson", False)
    assert format_of("a.jsonl") == ("ndjson", False)
    assert format_of("out.gz") == (None, True)
    assert format_of("out.txt") == (None, False)
    assert export_target("x.ndjson", None) == ("ndjson", False)  # plain: not gzip
    assert export_target("x.json.gz", None) == ("json", True)
    assert export_target("x.gz", None) == ("csv", True)  # --format's default
    assert export_target("x.gz", "ndjson") == ("ndjson", True)
    with pytest.raises(UsageError, match=r"--format csv but -o x\.ndjson names ndjson"):
        export_target("x.ndjson", "csv")
    assert output_kind("failed.csv") == ("csv", False)
    assert output_kind("failed.jsonl.gz") == ("ndjson", True)
    for name in ("failed.txt", "failed.json"):
        with pytest.raises(UsageError, match=r"\.csv, \.ndjson or \.jsonl"):
            output_kind(name)


def _ended(status: str, failed: int = 0, error: str | None = None) -> dict:
    return {"jobId": JOB, "status": status, "error": error, "progress": {"failed": failed}}


def test_a_followed_job_exits_non_zero_when_it_failed_or_was_cancelled() -> None:
    assert verdict(_ended("completed"), fail_on_errors=True) == (0, None)
    assert verdict(_ended("completed", failed=3), fail_on_errors=False) == (0, None)
    code, why = verdict(_ended("completed", failed=3), fail_on_errors=True)
    assert (
        code == FAILED and why == "job 0a1b2c3d completed, but 3 records failed (--fail-on-errors)"
    )
    assert verdict(_ended("completedWithErrors", failed=1), fail_on_errors=True)[0] == FAILED
    assert verdict(_ended("failed", error="boom"), fail_on_errors=False) == (
        FAILED,
        "job 0a1b2c3d failed: boom",
    )
    assert verdict(_ended("cancelled"), fail_on_errors=False)[0] == FAILED


def test_people_read_integers_and_no_markup() -> None:
    assert (text(None), text(1234567), text(12.5), text(100.0), text(True)) == (
        "-",
        "1,234,567",
        "12.5",
        "100",
        "yes",
    )
    progress = {"percentage": 40.0, "processed": 4000, "total": 10000, "successful": 3990}
    progress |= {"failed": 10, "skipped": 0, "currentChunk": 4, "totalChunks": 10}
    assert progress_text(progress) == (
        "40% - 4,000 of 10,000 records (3,990 successful, 10 failed, 0 skipped); chunk 4 of 10"
    )
    view = {**_ended("completed"), "progress": progress, "summary": {"errors": []}}
    view["summary"] |= {"created": 3990, "updated": 0, "deadLettered": 0}
    view["summary"]["errors"] = [{"row": 7, "field": "email", "reason": "[bold]x"}]
    fields = dict(job_fields(view))
    assert fields["summary"] == "created 3,990"  # zero counts left out
    assert fields["failed record"] == "row 7 email: [bold]x"
    line = result_line({"row": 12345, "status": "failed", "field": "age", "reason": "too old"})
    assert line.split() == ["12345", "failed", "-", "-", "age", "too", "old"]


def test_a_dry_run_says_what_it_would_replay() -> None:
    dry = {"dryRun": True, "matched": 3, "replayed": 0, "wouldReplay": 3, "alreadyReplayed": 0}
    assert replay_text({**dry, "jobs": {JOB: 3}}) == (
        "would replay 3 dead letters of 1 job (3 matched, 0 replayed before)"
    )
    done = {**dry, "dryRun": False, "replayed": 2, "wouldReplay": None, "alreadyReplayed": 1}
    assert replay_text({**done, "jobs": {JOB: 1, OTHER: 1}}).startswith(
        "replayed 2 dead letters of 2 jobs"
    )


def test_usage_errors_exit_2_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "x.csv"
    assert main(["submit", str(missing), "--type", "user-import"]) == NOT_FOUND
    assert capsys.readouterr().err == f"sluice: no such file: {missing}\n"
    missing.write_text("email,name\n")
    assert main(["submit", str(missing), "--type", "user-import", "--fail-on-errors"]) == USAGE
    assert capsys.readouterr().err == (
        "sluice: --fail-on-errors needs --follow (the job's end decides the exit code)\n"
    )
    assert main(["status", "--api-url", "nope", "abc"]) == USAGE
    assert capsys.readouterr().err.count("\n") == 1
