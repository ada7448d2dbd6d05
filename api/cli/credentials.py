"""The API key the `sluice` command sends: SLUICE_API_KEY, else the one in the config file
(`sluice keys create` writes it there), else the development key `sluice run` made in this
folder's data directory (streams/worker/dev_key.py)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from streams.access import key_problem
from streams.config import settings
from streams.worker.dev_key import saved_dev_key

CONFIG_KEY = "apiKey"


def api_key() -> str | None:
    current = settings()
    chosen = current.api_key.get_secret_value()
    return chosen or saved_key(current.config_file) or saved_dev_key(current)


def saved_key(path: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        key = json.loads(path.read_text()).get(CONFIG_KEY)
        if isinstance(key, str) and key_problem(key) is None:
            return key
    return None


def save_key(path: Path, key: str) -> None:
    """Keep `key` in the config file (mode 0600: it is a secret), other settings kept."""
    config: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            config = loaded
    config[CONFIG_KEY] = key
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(config, out, indent=2)
        out.write("\n")
    os.replace(temp, path)


def auth_headers() -> dict[str, str]:
    key = api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}
