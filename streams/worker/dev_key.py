"""The development key of `sluice run`: made once, printed once, kept in the data folder.

`sluice run` is one person's Sluice on one machine. So that it starts with one command and the
`sluice` command works against it at once, its first start makes an admin key for the default
tenant and keeps its value in `<data dir>/dev-api-key` (mode 0600), where the CLI finds it too.
SLUICE_DEV_API_KEY, when set, is that key's value instead. Every worker makes sure the key
SLUICE_DEV_API_KEY names exists (api/http.py); a revoked one stays revoked.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pydantic import SecretStr

from streams.access import key_prefix, key_problem, new_key
from streams.config import Settings

DEV_KEY_FILE = "dev-api-key"


def dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / DEV_KEY_FILE


def saved_dev_key(settings: Settings) -> str | None:
    """The key `sluice run` keeps in this data folder, if it made one."""
    with contextlib.suppress(OSError):
        key = dev_key_path(settings).read_text().strip()
        if key and key_problem(key) is None:
            return key
    return None


def with_dev_key(settings: Settings) -> tuple[Settings, str]:
    """Settings whose dev_api_key is set (made now if need be), and what to tell the person."""
    chosen = settings.dev_api_key.get_secret_value()
    if chosen:
        return settings, f"API key: SLUICE_DEV_API_KEY ({key_prefix(chosen)}...)"
    path = dev_key_path(settings)
    key = saved_dev_key(settings)
    if key is not None:
        told = f"API key: {key_prefix(key)}... (made on the first start; its value is in {path})"
    else:
        key = new_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(key + "\n")
        told = (
            f"A development API key was made (admin, tenant 'default'); it is shown once:\n"
            f"  {key}\n"
            f"The sluice command in this folder uses it; send it as `Authorization: Bearer <key>`."
            f" Its value is kept in {path}."
        )
    return settings.model_copy(update={"dev_api_key": SecretStr(key)}), told
