"""JSON records: NDJSON uploads pushed block by block, and inline JSON batches (pure).

Values keep their JSON types; what a chunk cannot carry (nested values, integers wider than an
Avro long) is flattened to text, and a record that cannot be stored (not an object, a lone
surrogate) fails alone with its row number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from streams.exceptions import RequestError, UploadError
from streams.models import ParsedRecord
from streams.parse.lines import NOT_UTF8, UNDECODABLE, ParseLimits, PushParser, has_undecodable

NOT_AN_OBJECT = "record is not a JSON object"
LONE_SURROGATE = "contains a \\u escape that is not valid Unicode (a lone surrogate)"

_ANY_SURROGATE = re.compile("[\ud800-\udfff]")
# The chunk schema carries integers as Avro longs.
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


class NdjsonParser(PushParser):
    """Newline-delimited JSON: one object per non-blank line, values keep their JSON types."""

    def __init__(self, limits: ParseLimits | None = None) -> None:
        super().__init__(limits)
        self._seen_any = False

    def _finish(self) -> list[ParsedRecord]:
        if not self._seen_any:
            raise UploadError("the upload is empty")
        return []

    def _records(self, lines: list[str], body: str) -> list[ParsedRecord]:
        dirty = has_undecodable(body)
        out: list[ParsedRecord] = []
        for line in lines:
            if not line or line.isspace():
                continue
            self._seen_any = True
            self._row += 1
            if dirty and UNDECODABLE.search(line):
                out.append(ParsedRecord(self._row, None, NOT_UTF8))
                continue
            out.append(self._record(self._row, line))
        return out

    def _record(self, row: int, line: str) -> ParsedRecord:
        limits = self.limits
        if line.count("{") + line.count("[") > 1 and json_depth(line) > limits.max_json_depth:
            return ParsedRecord(row, None, f"nested deeper than {limits.max_json_depth} levels")
        try:
            value = _decode_json(line)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            return ParsedRecord(row, None, f"invalid JSON: {reason}")
        except RecursionError:
            return ParsedRecord(row, None, "invalid JSON: nested too deeply")
        if type(value) is not dict:
            return ParsedRecord(row, None, NOT_AN_OBJECT)
        # JSON escapes can spell lone surrogates, which no UTF-8 sink can store.
        if "\\u" in line and _has_lone_surrogate(value):
            return ParsedRecord(row, None, LONE_SURROGATE)
        if len(value) > limits.max_columns:
            return ParsedRecord(row, None, f"more than {limits.max_columns} fields")
        if self._columns is None:
            self._columns = list(value)
        return ParsedRecord(row, _json_fields(value))


def records_from_json_items(items: list[Any]) -> Iterator[ParsedRecord]:
    """Records of an inline JSON batch, numbered from 1 like an upload's rows."""
    for row, item in enumerate(items, 1):
        if not isinstance(item, dict):
            yield ParsedRecord(row, None, NOT_AN_OBJECT)
        elif _has_lone_surrogate(item):
            yield ParsedRecord(row, None, LONE_SURROGATE)
        else:
            yield ParsedRecord(row, dict(_json_fields(item)))  # a copy: the items stay the caller's


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply JSON text nests arrays and objects (strings do not count)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_body(body: bytes, max_depth: int) -> Any:
    """A whole JSON body (an inline batch), parsed; a RequestError saying why it cannot be."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("the body is not valid JSON: it is not UTF-8") from None
    if json_depth(text) > max_depth:
        raise RequestError(f"the body is not accepted: JSON nested deeper than {max_depth} levels")
    try:
        return _decode_json(text)
    except ValueError as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError("the body is not accepted: JSON nested too deeply") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_decode_json = json.JSONDecoder(parse_constant=_reject_constant).decode


def _json_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Flatten values to what a chunk can carry; the dict is returned as is when already flat."""
    for value in obj.values():
        if isinstance(value, dict | list) or (
            type(value) is int and not _LONG_MIN <= value <= _LONG_MAX
        ):
            return {key: _json_value(item) for key, item in obj.items()}
    return obj


def _json_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if type(value) is int and not _LONG_MIN <= value <= _LONG_MAX:
        return str(value)  # too wide for a long: keep the digits rather than lose the record
    return value


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _ANY_SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(
            _has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False
