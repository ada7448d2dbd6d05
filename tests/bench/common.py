"""What every benchmark does around its run: clean up on SIGTERM, print, keep the figures."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "bench-results"


class BenchFailure(Exception):
    """An error or an incorrect result: the run exits non-zero."""


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_bench(
    label: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
    try:
        results = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped and removed", file=sys.stderr)
        return 130
    except BenchFailure as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 1
    print(report(results))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{label}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures written to {path.relative_to(REPO)}")
    return 0
