"""The `sluice` command's side of the HTTP API: where it is, requests (every failure to reach
it, or an answer no Sluice gives, becomes one of api/cli/errors.py's), following a job."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from api.cli.credentials import auth_headers
from api.cli.errors import (
    CONFIG,
    POINT_ELSEWHERE,
    ApiError,
    CliError,
    NotSluice,
    Unreachable,
    UsageError,
)
from api.cli.progress import JobProgress, Lines
from streams.config import settings

TERMINAL = {"completed", "failed", "cancelled"}
NO_KEY_HINT = (
    "The sluice command sends SLUICE_API_KEY, else the key saved by `sluice keys create`, "
    "else the development key of `sluice run` in this folder"
)
TIMEOUT = 30.0  # seconds a socket may stay silent; an upload's answer may take longer
GIVE_UP = (401, 403, 404)  # the job is gone, or the key no longer sees it: polling cannot help


def api_url(given: str | None = None) -> str:
    """The API the CLI talks to: --api-url (`given`), else SLUICE_API_URL, else this host's
    SLUICE_API_PORT."""
    if given is not None:
        return _checked(given, "--api-url")
    current = settings()
    if current.api_url:
        return _checked(current.api_url, "SLUICE_API_URL")
    return f"http://127.0.0.1:{current.api_port}"


def _checked(url: str, source: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query:
        return url.strip().rstrip("/")
    message = f"{source} must be an http(s) URL such as http://127.0.0.1:8000, not {url!r}"
    raise UsageError(message) if source.startswith("--") else CliError(message, CONFIG)


def base_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# -- client -----------------------------------------------------------------------------------


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = TIMEOUT,
) -> tuple[int, dict[str, Any]]:
    """One call of the API with the CLI's key (api/cli/credentials.py): its status and JSON.
    Unreachable when nothing answers, NotSluice when the answer is not one Sluice gives."""
    sent = urllib.request.Request(
        url, data=body, method=method, headers={**auth_headers(), **(headers or {})}
    )
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as answer:
            raw = answer.read()
            return answer.status, _json(method, url, answer.status, answer.headers, raw)
    except urllib.error.HTTPError as error:
        answer = _error_answer(method, url, error)
        if error.code == 401:
            answer["error"]["message"] = f"{answer['error']['message']}. {NO_KEY_HINT}"
        return error.code, answer
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise unreachable(method, url, exc, timeout) from None


def call(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    ok: tuple[int, ...] = (200,),
    timeout: float | None = TIMEOUT,
) -> dict[str, Any]:
    """request(), for an answer with one of the `ok` statuses; ApiError otherwise."""
    status, answer = request(method, url, body, headers, timeout)
    if status not in ok:
        raise ApiError(status, answer, base_of(url))
    return answer


def open_url(url: str, timeout: float = TIMEOUT, *, key: bool = True) -> Any:
    """A streamed GET (the caller closes it), with the CLI's key unless the link is signed."""
    sent = urllib.request.Request(url, headers=auth_headers() if key else {})
    try:
        return urllib.request.urlopen(sent, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise ApiError(error.code, _error_answer("GET", url, error), base_of(url)) from None
    except (OSError, http.client.HTTPException) as exc:
        raise unreachable("GET", url, exc, timeout) from None


def _not_sluice(method: str, url: str, status: int, content_type: str) -> NotSluice:
    path = urllib.parse.urlsplit(url).path
    return NotSluice(
        f"{base_of(url)} does not answer as a Sluice API does ({method} {path}: {status}, "
        f"{content_type}): is another service on that port? {POINT_ELSEWHERE}"
    )


def _json(method: str, url: str, status: int, headers: Any, raw: bytes) -> dict[str, Any]:
    if not raw and status == 204:
        return {}
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise _not_sluice(method, url, status, headers.get_content_type())
    return answer


def _error_answer(method: str, url: str, error: urllib.error.HTTPError) -> dict[str, Any]:
    """The API's error answer, {error: {code, message}}, which every Sluice error has."""
    try:
        answer = json.loads(error.read())
    except (ValueError, OSError):
        answer = None
    shaped = isinstance(answer, dict) and isinstance(answer.get("error"), dict)
    if not shaped or not isinstance(answer["error"].get("message"), str):
        raise _not_sluice(method, url, error.code, error.headers.get_content_type())
    return answer


def unreachable(method: str, url: str, exc: BaseException, timeout: float | None) -> CliError:
    """Why the API at `url` could not be talked to, and what to do about it."""
    base, path = base_of(url), urllib.parse.urlsplit(url).path
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return Unreachable(
            f"nothing answers at {base} (connection refused): start Sluice with `sluice run`, "
            f"or {POINT_ELSEWHERE}"
        )
    if isinstance(reason, TimeoutError):
        return Unreachable(
            f"{base} did not answer {method} {path} within {timeout:g} s: is it a Sluice API? "
            f"{POINT_ELSEWHERE}"
        )
    if isinstance(reason, socket.gaierror):
        return Unreachable(f"cannot find the host of {base} ({reason.strerror}): {POINT_ELSEWHERE}")
    if isinstance(reason, http.client.HTTPException | ConnectionError):
        return Unreachable(
            f"{base} broke the connection off without an HTTP answer to {method} {path} "
            f"({type(reason).__name__}): is it a Sluice API? {POINT_ELSEWHERE}"
        )
    return Unreachable(f"cannot talk to {base} ({reason}): {POINT_ELSEWHERE}")


def follow(
    base: str, job_id: str, interval: float = 0.5, estimated_seconds: int | None = None
) -> dict[str, Any]:
    """Live progress on stderr until the job ends (api/cli/progress.py); then its status view
    (the caller prints it)."""
    display = JobProgress(Lines(sys.stderr), job_id, estimated_seconds)
    view: dict[str, Any] = {}
    while True:
        status, view = request("GET", f"{base}/api/batch/jobs/{job_id}")
        if status in GIVE_UP:
            raise ApiError(status, view, base)
        if status == 200:
            display.update(view)
            if view["status"] in TERMINAL:
                return view
        time.sleep(interval)


def wait_finished(base: str, job_id: str, interval: float = 0.5) -> dict[str, Any]:
    """The job's status view once it has ended."""
    while True:
        status, view = request("GET", f"{base}/api/batch/jobs/{job_id}")
        if status in GIVE_UP:
            raise ApiError(status, view, base)
        if status == 200 and view["status"] in TERMINAL:
            return view
        time.sleep(interval)
