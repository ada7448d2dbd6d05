"""Job options: the common ones, their ranges, and parsing from query strings or JSON."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streams.exceptions import OptionError

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class IntOption:
    default: int
    low: int
    high: int

    def parse(self, name: str, raw: Any) -> int:
        if isinstance(raw, bool):
            raise OptionError(name, "must be an integer")
        if isinstance(raw, str):
            # ASCII digits only: int() would also take "٣٠٠", "1_000" and "+ 5"
            if not _INTEGER.fullmatch(raw.strip()):
                raise OptionError(
                    name, f"must be an integer from {self.low} to {self.high} (ASCII digits)"
                )
            raw = int(raw.strip())
        if not isinstance(raw, int):
            raise OptionError(name, "must be an integer")
        if not self.low <= raw <= self.high:
            raise OptionError(name, f"must be between {self.low} and {self.high}")
        return raw


@dataclass(frozen=True)
class BoolOption:
    default: bool

    def parse(self, name: str, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise OptionError(name, "must be true or false")


@dataclass(frozen=True)
class ChoiceOption:
    default: str
    choices: tuple[str, ...]

    def parse(self, name: str, raw: Any) -> str:
        if isinstance(raw, str) and raw.strip() in self.choices:
            return raw.strip()
        raise OptionError(name, f"must be one of: {', '.join(self.choices)}")


class OptionSpec(Protocol):
    """How one option is parsed: its default, and `parse` raising OptionError naming it."""

    @property
    def default(self) -> Any: ...

    def parse(self, name: str, raw: Any) -> Any: ...


# Options every job type accepts; a job type adds its own (see streams.jobtypes.base).
COMMON_OPTIONS: dict[str, OptionSpec] = {
    "chunkSize": IntOption(1000, 100, 10000),
    "concurrency": IntOption(5, 1, 20),
    "retryAttempts": IntOption(3, 0, 10),
    "validate": BoolOption(True),
    "stopOnError": BoolOption(False),
    "priority": IntOption(0, 0, 100),
}


def parse_options(raw: Mapping[str, Any], specs: Mapping[str, OptionSpec]) -> dict[str, Any]:
    """Every option in `specs`, from `raw` or its default; unknown names are an OptionError."""
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        known = ", ".join(sorted(specs))
        raise OptionError(unknown[0], f"is not a known option (known: {known})")
    return {
        name: spec.parse(name, raw[name]) if name in raw else spec.default
        for name, spec in specs.items()
    }
