"""The CLI's progress lines (api/cli/meter.py, api/cli/progress.py): a rate smoothed over a
window and no rate at all on a first frame, an ETA that converges, whole counts, the upload's
bytes and records, and lines a log can keep."""

from __future__ import annotations

import io
import re

import pytest

from api.cli import meter
from api.cli.meter import RateMeter
from api.cli.progress import JobProgress, Lines, UploadReader

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_rate_until_the_samples_span_the_minimum() -> None:
    rates = RateMeter(window=10, min_span=2)
    rates.add(0.0, 0)
    rates.add(0.5, 74_000)  # a burst counted at once: no 148,000/s claim
    assert rates.rate() is None
    rates.add(2.0, 80_000)
    assert rates.rate() == 40_000


def test_a_first_sample_met_late_counts_from_itself() -> None:
    rates = RateMeter(window=10, min_span=2)
    rates.add(0.0, 150_000)  # processed during the upload, before anyone watched
    rates.add(1.0, 152_000)
    rates.add(2.0, 154_000)
    assert rates.rate() == 2_000


def test_the_rate_is_smoothed_over_the_window_and_forgets_what_is_older() -> None:
    rates = RateMeter(window=10, min_span=2)
    counts = [0, 0, 0, 0, 30_000, 30_000, 30_000, 30_000, 60_000, 60_000, 60_000, 60_000]
    for second, count in enumerate(counts):  # progress arrives in bursts every 4 s
        rates.add(float(second), count)
    assert rates.rate() == pytest.approx(60_000 / 10)  # 60,000 in the last 10 s
    for second in range(12, 30):  # steady 1,000/s from here on
        rates.add(float(second), 60_000 + 1_000 * (second - 11))
    assert rates.rate() == pytest.approx(1_000)


def test_the_eta_converges_as_the_job_goes_on() -> None:
    rates = RateMeter(window=10, min_span=2)
    total, errors = 100_000, []
    for second in range(0, 41):
        # 2,500 records/s, counted in bursts every third second: done at 40 s
        done = min(total, 7_500 * (second // 3))
        if second == 40:
            done = total
        rates.add(float(second), done)
        eta = rates.eta(total - done)
        if eta is not None:
            errors.append(abs(eta - (40 - second)))  # against the true time left
    # off by 27 s early on, by at most the burst period near the end, and right at the end
    assert max(errors[:10]) > 20 and max(errors[-10:]) < 3.5 and errors[-1] == 0.0
    assert RateMeter().eta(10) is None


def test_a_count_that_goes_back_starts_the_rate_over() -> None:
    rates = RateMeter(window=10, min_span=2)
    for second, count in ((0, 0), (3, 3_000), (4, 1_000), (5, 1_500)):
        rates.add(float(second), count)
    assert rates.rate() is None  # one second since the count went back


def test_numbers_read_as_people_read_them() -> None:
    assert meter.count(1234567) == "1,234,567"
    assert meter.duration(0.2) == "0:01"
    assert meter.duration(65) == "1:05"
    assert meter.duration(3723) == "1:02:03"
    assert meter.percent(199_999, 200_000) == 99
    assert meter.percent(200_000, 200_000) == 100
    assert meter.percent(0, 0) == 100
    assert meter.bar(0.5, 10) == "█████     "
    assert meter.bar(1.0, 10) == "██████████"
    assert len(meter.bar(0.33, 20)) == 20


def view(status: str, processed: int, total: int | None, failed: int = 0) -> dict:
    return {
        "status": status,
        "outcome": ("allFailed" if failed == processed else "withErrors") if failed else "clean",
        "progress": {
            "processed": processed,
            "total": total,
            "successful": processed - failed,
            "failed": failed,
            "skipped": 0,
        },
    }


def test_a_log_gets_a_line_every_interval_and_at_each_change_of_status() -> None:
    out, clock = io.StringIO(), Clock()
    job = JobProgress(Lines(out, tty=False, every=5, clock=clock), "job-1", estimated_seconds=30)
    job.update(view("queued", 0, 10_000))
    clock.now += 1
    job.update(view("active", 1_000, 10_000))  # a change of status: at once
    for _ in range(8):
        clock.now += 1
        job.update(view("active", 1_000 + 1_000 * int(clock.now - 101), 10_000, failed=3))
    clock.now += 0.5
    job.update(view("completed", 10_000, 10_000, failed=3))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4, lines  # queued, active, one 5 s later, completed
    assert lines[0].startswith("queued") and "ETA 0:30" in lines[0]  # from estimatedTime
    assert "1,000/10,000 records" in lines[1]
    assert re.search(r"1,000/s · ETA 0:0\d · 3 failed$", lines[2]), lines[2]
    assert lines[3].startswith("completed: 10,000 records · 9,997 successful · 3 failed")
    assert "sluice results job-1 --status failed" in lines[3]
    assert not re.search(r"\d\.\d+/", out.getvalue())  # no count drawn as a float


def test_a_terminal_line_is_redrawn_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    job = JobProgress(Lines(out, tty=True, clock=clock), "job-1")
    job.update(view("active", 10, None))
    clock.now += 1
    job.update(view("active", 20, None))
    clock.now += 1
    job.update(view("completed", 30, 30))
    drawn = out.getvalue()
    assert drawn.count("\r") == 3 and drawn.endswith("\n") and drawn.count("\n") == 1
    assert "20 records" in drawn


def test_the_upload_shows_bytes_and_records_sent() -> None:
    body = b"email,name\n" + b"".join(b"u%d@example.com,U\n" % n for n in range(10_000))
    out, clock = io.StringIO(), Clock()
    lines = Lines(out, tty=False, every=5, clock=clock)
    with UploadReader(io.BytesIO(body), len(body), "users.csv", lines, header=True) as upload:
        while upload.read(8192):
            clock.now += 1
        assert upload.records == 10_000 and upload.sent == len(body)
    said = out.getvalue().splitlines()
    assert said[0].startswith("uploading users.csv")
    assert any(re.search(r"\d+% · [\d.]+ MB of 0\.2 MB · [\d,]+ records · ", s) for s in said)
    assert "sent users.csv: 0.2 MB, 10,000 records" in out.getvalue()
    assert said[-1].endswith("done in 0:00")


def test_an_upload_cut_short_ends_its_terminal_line() -> None:
    out, clock = io.StringIO(), Clock()
    lines = Lines(out, tty=True, clock=clock)
    with UploadReader(io.BytesIO(b"email,name\na@b.c,A\n"), 19, "u.csv", lines, header=True) as up:
        up.read(8)  # the server answered (a 400, a refused connection) before the end
    assert out.getvalue().startswith("\ruploading u.csv") and out.getvalue().endswith("\n")
