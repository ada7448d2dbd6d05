"""The processes a process started, found by walking /proc (Linux): children, grandchildren."""

from __future__ import annotations

import time
from pathlib import Path

LINUX = Path("/proc/self/stat").exists()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # after the parenthesised command name: the state, then the parent pid
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return state, int(parent)


def alive(pid: int) -> bool:
    """Running (a zombie has ended; only its exit status waits to be collected)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def descendants(pid: int) -> dict[int, str]:
    """Every living process below `pid` (children, theirs, ...), with its command line."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X"):
                parents[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = command_line(child)
                frontier.append(child)
    return found


def still_alive(pids: dict[int, str], timeout: float) -> dict[int, str]:
    """Those of `pids` still running after waiting up to `timeout` seconds for them to end."""
    deadline = time.monotonic() + timeout
    left = {pid: line for pid, line in pids.items() if alive(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = {pid: line for pid, line in left.items() if alive(pid)}
    return left
