"""Dead letters: park what failed (envelope), look at it (inspect), publish it again (replay)."""

from streams.deadletter.envelope import (
    MAX_MESSAGE_CHARS,
    dead_letter,
    dead_letter_headers,
    sanitize,
)

__all__ = ["MAX_MESSAGE_CHARS", "dead_letter", "dead_letter_headers", "sanitize"]
