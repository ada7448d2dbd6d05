"""Signed download URLs: HMAC-SHA256 over the tenant, the file and the expiry time, checked by
any worker.

A download names the job, the file, `expires` (epoch seconds) and `signature` (hex); the
signature covers the job's tenant, the job id, the file name and `expires`, so changing any of
them, or the signature, is refused (403), and so is a link past its expiry. The API signs the
URL when a key of the job's tenant reads the job's status (api/views.py, api/paths.py). The key
is SLUICE_SIGNING_KEY; without it, a random key is created once in the export directory
(`.signing-key`, mode 0600), which every worker sharing that directory reads, so a URL signed
by one worker is accepted by all of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import uuid
from functools import lru_cache
from pathlib import Path

from streams.config import Settings
from streams.exceptions import RequestError

KEY_FILE = ".signing-key"


def signing_key(settings: Settings) -> bytes:
    configured = settings.signing_key.get_secret_value()
    if configured:
        return configured.encode()
    return _key_from_file(settings.export_dir.resolve())


@lru_cache(maxsize=4)
def _key_from_file(directory: Path) -> bytes:
    path = directory / KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        temp = directory / f".tmp-{uuid.uuid4().hex}-key"
        temp.write_text(secrets.token_hex(32) + "\n")
        temp.chmod(0o600)
        try:
            os.link(temp, path)  # atomic, and fails when another worker created it first
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    key = path.read_bytes().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it, or set SLUICE_SIGNING_KEY")
    return key


def signature(key: bytes, tenant: str, job_id: str, name: str, expires: int) -> str:
    message = f"{tenant}\n{job_id}/{name}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def check(
    key: bytes,
    tenant: str,
    job_id: str,
    name: str,
    expires: str | None,
    signed: str | None,
    now: float,
) -> None:
    """Accept a URL's parts, or raise a RequestError (403) saying why not."""
    if not expires or not signed:
        raise RequestError(
            "the link is not signed (expires and signature are required)", status=403
        )
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        raise RequestError("the link's expiry is not valid", status=403)
    expected = signature(key, tenant, job_id, name, int(expires))
    if not hmac.compare_digest(expected.encode(), signed.lower().encode()):
        raise RequestError("the link's signature is not valid", status=403)
    if int(expires) <= now:
        raise RequestError("the link has expired", status=403)
