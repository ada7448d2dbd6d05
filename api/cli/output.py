"""What `sluice` prints on stdout: with --json exactly one JSON document per command, else
tables and fields for people (rich: column widths, wide characters, colour only on a terminal).
Messages about what happened go to stderr."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

Pairs = Iterable[tuple[str, str]]


@functools.lru_cache(maxsize=1)
def console() -> Console:
    # piped output keeps its lines whole: no width to wrap to but the text's own
    width = None if sys.stdout.isatty() else 100_000
    return Console(width=width, highlight=False, soft_wrap=False)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def print_json_array(items: Iterator[Any]) -> None:
    """One JSON array, written item by item (bounded memory for long listings)."""
    out = sys.stdout
    out.write("[")
    for number, item in enumerate(items):
        out.write(("\n  " if number == 0 else ",\n  ") + json.dumps(item, ensure_ascii=False))
    out.write("\n]\n")


def say(message: str) -> None:
    """A line for the person at the terminal, on stderr (stdout is for data)."""
    print(message, file=sys.stderr, flush=True)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(text(cell)) for cell in row))  # Text: no markup in data
    _print(table)


def print_page(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], next_cursor: str | None, empty: str
) -> None:
    """One page of a listing as a table (or `empty` said when it has no rows), and how to
    get the next page."""
    if not rows:
        say(empty)
        return
    print_table(columns, rows)
    if next_cursor:
        say(f"(more: --cursor '{next_cursor}')")


def _print(renderable: Any) -> None:
    """Rendered by rich, written without the spaces that pad the last column."""
    with console().capture() as captured:
        console().print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_fields(pairs: Pairs) -> None:
    """Name and value, one pair a line, the values aligned."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(Text(name), Text(value))
    _print(grid)


def print_lines(lines: Iterable[str]) -> None:
    """Lines as they come (a long listing is streamed, not measured as a table)."""
    out = sys.stdout
    for line in lines:
        out.write(line + "\n")


def text(value: Any) -> str:
    """A value as a cell shows it: - for nothing, integers with thousands separators."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{key} {text(item)}" for key, item in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(text(item) for item in value) or "-"
    return str(value)


def age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
