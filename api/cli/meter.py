"""What the CLI's progress lines say, as plain functions of counts and times: a rate smoothed
over a window, an ETA from it, and numbers a person reads at a glance (whole records with
thousands separators, bytes in MB, durations as 1:05). No terminal here: api/cli/progress.py
draws the lines."""

from __future__ import annotations

import math
from collections import deque

WINDOW_SECONDS = 10.0  # the rate is measured over the last this many seconds
MIN_SPAN_SECONDS = 2.0  # no rate until the samples span this long: no absurd first frame
BAR_WIDTH = 20


class RateMeter:
    """Counts seen at times; their rate over the last `window` seconds.

    A rate is only given once the samples span `min_span` seconds, so a first frame that meets
    a count done before it was watched (records processed during the upload) claims no rate.
    Over a window, rather than from the last two samples, a batch of progress arriving at once
    moves the rate a little instead of making it spike, and the ETA drawn from it converges as
    the job goes on instead of jumping with each batch.
    """

    def __init__(self, window: float = WINDOW_SECONDS, min_span: float = MIN_SPAN_SECONDS):
        self.window = window
        self.min_span = min_span
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, count: int) -> None:
        samples = self._samples
        if samples and count < samples[-1][1]:
            samples.clear()  # the count went back (a replay reopened the job): start over
        samples.append((at, count))
        # keep one sample at or before the window's start, so the span is the whole window
        while len(samples) > 2 and samples[1][0] <= at - self.window:
            samples.popleft()

    def rate(self) -> float | None:
        """Counts per second over the window; None until the samples span `min_span`."""
        if len(self._samples) < 2:
            return None
        (first_at, first), (last_at, last) = self._samples[0], self._samples[-1]
        span = last_at - first_at
        if span < self.min_span:
            return None
        return (last - first) / span

    def eta(self, remaining: int) -> float | None:
        """Seconds until `remaining` more counts at the current rate; None without a rate."""
        rate = self.rate()
        if rate is None or remaining < 0:
            return None
        if remaining == 0:
            return 0.0
        return remaining / rate if rate > 0 else None


def count(n: int) -> str:
    """A whole number as people read it: 1,234,567."""
    return f"{n:,}"


def megabytes(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"


def duration(seconds: float) -> str:
    """0:07, 1:05, 1:02:03 (rounded up: an ETA of 0.2 s is 0:01, not 0:00)."""
    whole = max(0, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def per_second(rate: float, unit: str = "") -> str:
    return f"{rate:,.0f}{unit}/s"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A bar of `width` cells, filled to `fraction` (eighths of a cell for a smooth edge)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return ("█" * full + partial).ljust(width)


def percent(done: int, total: int) -> int:
    """Whole percent, never 100 before everything is done."""
    if total <= 0:
        return 100
    value = math.floor(100 * done / total)
    return 99 if value == 100 and done < total else min(value, 100)
