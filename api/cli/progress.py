"""The CLI's live progress, on stderr: the upload (bytes and records sent), then the job
(records processed, rate, ETA), so a long upload is never silent and a job's end is no surprise.

On a terminal one line is redrawn in place at every update (the follower polls twice a second);
elsewhere (a log file, a pipe, a test) a line is written every `LINE_SECONDS` and at each change
of status, so logs stay short and each line stands alone. Counts are whole records; a rate and
an ETA appear once they can be measured (api/cli/meter.py).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from api.cli import meter

LINE_SECONDS = 5.0  # a line this often when stderr is not a terminal
REDRAW_SECONDS = 0.2  # a terminal line is redrawn at most this often while uploading
FINAL = ("completed", "failed", "cancelled")

Clock = Callable[[], float]


class Lines:
    """One status line: redrawn in place on a terminal, written now and then elsewhere."""

    def __init__(
        self,
        stream: IO[str],
        *,
        tty: bool | None = None,
        every: float = LINE_SECONDS,
        clock: Clock = time.monotonic,
    ):
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.every = every if not self.tty else REDRAW_SECONDS
        self.clock = clock
        self._last: float | None = None
        self._open = False  # a terminal line is drawn and not ended yet

    def show(self, text: str, *, now: bool = False) -> None:
        """Draw `text`; unless `now`, only if the last line is older than the interval."""
        moment = self.clock()
        if not now and self._last is not None and moment - self._last < self.every:
            return
        self._last = moment
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self, text: str) -> None:
        """The last state of this line, kept: the next line starts below it."""
        self.show(text, now=True)
        if self.tty and self._open:
            self.stream.write("\n")
            self.stream.flush()
        self._open = False
        self._last = None


class UploadReader:
    """The file `http.client` reads the request body from, counting what it sends.

    Records are counted as lines (less a CSV header): close enough while sending (a CSV field
    may hold a line break), and the server's exact total follows in its answer.
    """

    def __init__(self, file: IO[bytes], size: int, name: str, lines: Lines, *, header: bool):
        self._file = file
        self.size, self.name, self.lines = size, name, lines
        self._header = header
        self.sent = 0
        self._newlines = 0
        self._last_byte = b""
        self._waiting: Waiting | None = None
        self._began = lines.clock()
        self._rate = meter.RateMeter(window=5.0, min_span=1.0)

    @property
    def records(self) -> int:
        lines = self._newlines + (1 if self._last_byte not in (b"", b"\n") else 0)
        return max(0, lines - (1 if self._header else 0))

    def read(self, size: int = -1) -> bytes:
        block = self._file.read(size)
        if block:
            self.sent += len(block)
            self._newlines += block.count(b"\n")
            self._last_byte = block[-1:]
            self._rate.add(self.lines.clock(), self.sent)
            self.lines.show(self.line())
        elif self._waiting is None:  # http.client reads until the file is done
            self._waiting = Waiting(self.lines, self._sent_line())
        return block

    def __enter__(self) -> UploadReader:
        return self

    def __exit__(self, *exc: object) -> None:
        """The server answered (or the upload broke off): the line ends, so what is said next
        starts on a line of its own."""
        if self._waiting is not None:
            self._waiting.stop()
        elif self.sent:
            self.lines.end(self.line())

    def line(self) -> str:
        fraction = self.sent / self.size if self.size else 1.0
        parts = [
            f"uploading {self.name} {meter.bar(fraction)} {meter.percent(self.sent, self.size)}%",
            f"{meter.megabytes(self.sent)} of {meter.megabytes(self.size)}",
            f"{meter.count(self.records)} records",
        ]
        rate = self._rate.rate()
        if rate:
            parts.append(f"{rate / 1_000_000:,.1f} MB/s")
            parts.append(f"ETA {meter.duration((self.size - self.sent) / rate)}")
        return " · ".join(parts)

    def _sent_line(self) -> str:
        """Every byte is sent; the server answers once the job's chunks are on Kafka."""
        took = meter.duration(self.lines.clock() - self._began)
        self.lines.end(
            f"sent {self.name}: {meter.megabytes(self.sent)}, "
            f"{meter.count(self.records)} records in {took}"
        )
        return "the server reads it, splits it into chunks and puts them on Kafka"


class Waiting:
    """A line saying what is awaited and for how long, drawn from a thread of its own while the
    main thread waits for an answer: at least every second on a terminal, else every
    `Lines.every` seconds, until `stop`."""

    def __init__(self, lines: Lines, what: str):
        self.lines = lines
        self.what = what
        self._since = lines.clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-waiting", daemon=True)
        self._thread.start()

    def line(self) -> str:
        return f"{self.what} · {meter.duration(self.lines.clock() - self._since)}"

    def _run(self) -> None:
        self.lines.show(self.line(), now=True)
        while not self._stop.wait(1.0 if self.lines.tty else self.lines.every):
            self.lines.show(self.line(), now=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.lines.end(f"{self.what}: done in {meter.duration(self.lines.clock() - self._since)}")


class JobProgress:
    """A job's progress line, from the status views the follower reads."""

    def __init__(self, lines: Lines, job_id: str, estimated_seconds: int | None = None):
        self.lines = lines
        self.job_id = job_id
        self._since = lines.clock()
        self._estimated = estimated_seconds
        self._rate = meter.RateMeter()
        self._status: str | None = None

    def update(self, view: dict[str, Any]) -> None:
        progress = view["progress"]
        self._rate.add(self.lines.clock(), progress["processed"])
        changed = view["status"] != self._status
        self._status = view["status"]
        if view["status"] in FINAL:
            self.lines.end(self.final_line(view))
        else:
            self.lines.show(self.line(view), now=changed)

    def _eta(self, processed: int, total: int | None) -> float | None:
        if total is not None:
            measured = self._rate.eta(total - processed)
            if measured is not None:
                return measured
        if self._estimated is None or self._rate.rate() is not None:
            return None  # once measured, the rate is what counts
        left = self._estimated - (self.lines.clock() - self._since)
        return left if left > 0 else None

    def line(self, view: dict[str, Any]) -> str:
        progress = view["progress"]
        processed, total = progress["processed"], progress["total"]
        head = f"{view['status']:<9}"
        if total is not None:
            head += f" {meter.bar(processed / total if total else 1.0)}"
            head += f" {meter.percent(processed, total):>3}%"
            done = f"{meter.count(processed)}/{meter.count(total)} records"
        else:
            done = f"{meter.count(processed)} records"
        parts = [f"{head} {done}"]
        rate = self._rate.rate()
        if rate is not None:
            parts.append(meter.per_second(rate))
        if total is not None and processed >= total:
            parts.append("finishing")  # every record counted; an export assembles its file
        elif (eta := self._eta(processed, total)) is not None:
            parts.append(f"ETA {meter.duration(eta)}")
        parts.extend(_problems(progress))
        return " · ".join(parts)

    def final_line(self, view: dict[str, Any]) -> str:
        progress = view["progress"]
        took = self.lines.clock() - self._since
        parts = [
            f"{view['status']}: {meter.count(progress['processed'])} records",
            f"{meter.count(progress['successful'])} successful",
            *_problems(progress),
            f"followed for {meter.duration(took)}",
        ]
        outcome = view.get("outcome")
        if outcome and outcome != "clean":
            parts.append(
                f"{outcome}: `sluice results {self.job_id} --status failed` lists the failures"
            )
        return " · ".join(parts)


def _problems(progress: dict[str, Any]) -> list[str]:
    said = []
    if progress["failed"]:
        said.append(f"{meter.count(progress['failed'])} failed")
    if progress["skipped"]:
        said.append(f"{meter.count(progress['skipped'])} skipped")
    return said
