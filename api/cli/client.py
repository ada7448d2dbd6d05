"""The `sluice` command's side of the HTTP API: requests, following a job, downloads."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from api.cli.credentials import auth_headers
from api.cli.progress import JobProgress, Lines
from streams.config import settings

TERMINAL = {"completed", "failed", "cancelled"}
NO_KEY_HINT = (
    "The sluice command sends SLUICE_API_KEY, else the key saved by `sluice keys create`, "
    "else the development key of `sluice run` in this folder"
)


def api_url() -> str:
    """The API the CLI talks to: SLUICE_API_URL, else this host's SLUICE_API_PORT."""
    current = settings()
    return (current.api_url or f"http://127.0.0.1:{current.api_port}").rstrip("/")


# -- client -----------------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = 600,
) -> tuple[int, dict[str, Any]]:
    """One call of the API with the CLI's key (api/cli/credentials.py): its status and JSON."""
    request = urllib.request.Request(
        url, data=body, method=method, headers={**auth_headers(), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {"error": {"message": payload.decode(errors="replace")}}
        if error.code == 401 and isinstance(answer.get("error"), dict):
            answer["error"]["message"] = f"{answer['error'].get('message')}. {NO_KEY_HINT}"
        return error.code, answer


def open_url(url: str, timeout: float = 600) -> Any:
    """A streamed GET with the CLI's key (the caller closes it); HTTPError on a 4xx or 5xx."""
    return urllib.request.urlopen(
        urllib.request.Request(url, headers=auth_headers()), timeout=timeout
    )


def follow(
    base: str, job_id: str, interval: float = 0.5, estimated_seconds: int | None = None
) -> int:
    """Live progress on stderr until the job ends (api/cli/progress.py); then the summary.
    Exit 0 only if completed."""
    display = JobProgress(Lines(sys.stderr), job_id, estimated_seconds)
    view: dict[str, Any] = {}
    while True:
        status, view = request("GET", f"{base}/api/batch/jobs/{job_id}")
        if status == 200:
            display.update(view)
            if view["status"] in TERMINAL:
                break
        time.sleep(interval)
    print(
        json.dumps(
            {
                "status": view["status"],
                "outcome": view.get("outcome"),
                "progress": view["progress"],
                "summary": view["summary"],
                "error": view["error"],
            },
            indent=2,
        )
    )
    return 0 if view["status"] == "completed" else 1


def wait_finished(base: str, job_id: str, interval: float = 0.5) -> int:
    while True:
        status, view = request("GET", f"{base}/api/batch/jobs/{job_id}")
        if status == 200 and view["status"] in TERMINAL:
            if view["status"] != "completed":
                print(f"job {job_id} {view['status']}: {view['error']}", file=sys.stderr)
            return 0 if view["status"] == "completed" else 1
        time.sleep(interval)


def download(url: str, path: Path, result: dict[str, Any]) -> int:
    """Stream the file to `path` (a temporary name, renamed once its SHA-256 matches)."""
    temp = path.with_name(f".{path.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=600) as answer, temp.open("wb") as out:
            while block := answer.read(1 << 16):
                out.write(block)
                digest.update(block)
                size += len(block)
    except urllib.error.HTTPError as error:
        temp.unlink(missing_ok=True)
        print(
            f"download failed ({error.code}): {error.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    if (size, digest.hexdigest()) != (result["bytes"], result["sha256"]):
        temp.unlink(missing_ok=True)
        print(
            f"download corrupt: {size} bytes, sha256 {digest.hexdigest()}; expected "
            f"{result['bytes']} bytes, sha256 {result['sha256']}",
            file=sys.stderr,
        )
        return 1
    os.replace(temp, path)
    print(
        f"wrote {path}: {result['recordCount']:,} records, {size:,} bytes, "
        f"sha256 {result['sha256']}",
        file=sys.stderr,
    )
    return 0
