"""An enum whose members behave like their string values (``enum.StrEnum`` on 3.10 too)."""

from __future__ import annotations

import enum


class ValueEnum(str, enum.Enum):
    """``str`` enum: members compare equal to, hash like, print and format as their values,
    so they can stand in dict keys, SQLite rows, JSON and f-strings beside plain strings."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)

    def __hash__(self) -> int:  # hash like the value, so members and plain strings share dict keys
        return hash(str(self.value))
