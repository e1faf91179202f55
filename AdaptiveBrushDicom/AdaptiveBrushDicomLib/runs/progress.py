"""Progress output of a migration: a one-line bar on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A one-line progress bar on a TTY, plain ``label: n/total text`` lines otherwise.

    Parameters
    ----------
    label : prefix of every line (e.g. ``run <name>``)
    total : number of steps
    stream : where to write (default stderr)
    enabled : False writes nothing
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, max(total, 0), 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def step(self, text: str) -> None:
        """One step done; ``text`` says what."""
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {text[:40]:<40}")
            if self.done >= self.total:
                self.stream.write(f" {time.perf_counter() - self.t0:.1f} s\n")
        else:
            self.stream.write(f"{self.label}: {self.done}/{self.total} {text}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line that is not a step."""
        if self.enabled:
            self.stream.write(f"{self.label}: {text}\n")
            self.stream.flush()


__all__ = ["Progress"]
