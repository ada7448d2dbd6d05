"""Generated user uploads with known outcomes, and the expected result of each duplicate mode.

The expected results come from a deliberately naive sequential model of the contract, so the
pipeline (parallel partitions, chunks, set-based SQL) is checked against first principles.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any

INVALID_KINDS = (
    ("email", "no-at-sign.example.com"),
    ("email", "two@@example.com"),
    ("name", "   "),
    ("age", "abc"),
    ("age", "42.5"),
    ("age", "7"),
    ("country", "DEU"),
    ("signup_ts", "yesterday"),
)


@dataclass
class Row:
    number: int
    values: dict[str, str]
    valid: bool

    @property
    def identity(self) -> str:
        return self.values["email"].strip().lower()


@dataclass
class Upload:
    rows: list[Row]
    existing: dict[str, dict[str, Any]] = field(default_factory=dict)

    def csv_bytes(self) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=["email", "name", "country", "age", "signup_ts"], lineterminator="\r\n"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(row.values)
        return out.getvalue().encode()

    def ndjson_bytes(self) -> bytes:
        return "".join(json.dumps(r.values) + "\n" for r in self.rows).encode()


def generate(n: int, *, seed: int = 7, existing: int = 300) -> Upload:
    """n rows: ~2 % invalid, ~4 % in-file duplicates in mixed case, some already in the table."""
    rng = random.Random(seed)
    stored = {
        f"old{i}@example.org": {
            "email": f"old{i}@example.org",
            "name": f"Old {i}",
            "country": "FR",
            "age": 50,
            "signup_ts": None,
        }
        for i in range(existing)
    }
    old = list(stored)
    seen: list[str] = []
    rows: list[Row] = []
    for number in range(1, n + 1):
        roll = rng.random()
        if roll < 0.04 and seen:
            email = _mixed_case(rng.choice(seen), rng)
        elif roll < 0.06 and old:
            email = _mixed_case(rng.choice(old), rng)
        else:
            email = f"user{number}@example.com"
        values = {
            "email": f" {email} " if number % 97 == 0 else email,
            "name": f"Name {number} Ünïcødé" if number % 13 == 0 else f"Name {number}",
            "country": rng.choice(["de", "US", "", "fr"]),
            "age": rng.choice(["", "13", "42", "130"]),
            "signup_ts": rng.choice(["", "2024-05-06T07:08:09", "2023-01-02T03:04:05+02:00"]),
        }
        valid = True
        if rng.random() < 0.02:
            column, bad = rng.choice(INVALID_KINDS)
            values[column] = bad
            valid = False
        rows.append(Row(number, values, valid))
        if valid:
            seen.append(email.lower())
    return Upload(rows, stored)


def _mixed_case(email: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in email)


@dataclass
class Expected:
    table: dict[str, tuple[Any, ...]]
    successful: int = 0
    failed: int = 0
    skipped: int = 0
    created: int = 0
    updated: int = 0


def stored_tuple(values: dict[str, Any]) -> tuple[Any, ...]:
    """A users row as the tests compare it: (email, name, country, age, signup_ts iso)."""
    from datetime import UTC, datetime

    ts = values.get("signup_ts") or None
    if isinstance(ts, str):
        parsed = datetime.fromisoformat(ts)
        ts = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    country = (values.get("country") or "").strip().upper() or None
    age = values.get("age")
    age = int(age) if isinstance(age, str) and age.strip() else (age if age != "" else None)
    return (
        values["email"].strip().lower(),
        values["name"].strip(),
        country,
        age,
        ts.isoformat() if ts else None,
    )


def expected(upload: Upload, mode: str) -> Expected:
    """mode: 'skip', 'update' or 'fail' (neither option)."""
    table = {email: stored_tuple(v) for email, v in upload.existing.items()}
    result = Expected(table)
    for row in upload.rows:
        if not row.valid:
            result.failed += 1
            continue
        key = row.identity
        if key not in table:
            table[key] = stored_tuple(row.values)
            result.successful += 1
            result.created += 1
        elif mode == "skip":
            result.skipped += 1
        elif mode == "update":
            table[key] = stored_tuple(row.values)
            result.successful += 1
            result.updated += 1
        else:
            result.failed += 1
    return result
