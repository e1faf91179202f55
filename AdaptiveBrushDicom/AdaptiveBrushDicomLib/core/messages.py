"""Warnings for people: one line per kind, with a count, instead of one per segment.

A writer produces one message per segment (``segment 'Liver': no terminology; written as
...``); with a thousand segments that is a thousand lines nobody reads.
:func:`summarize_warnings` groups messages of the same kind -- the same text once the
segment name and quoted values are set aside -- and keeps the first few names.
"""

from __future__ import annotations

import re
from typing import Iterable

_SEGMENT = re.compile(r"^segment (?P<name>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"): (?P<rest>.*)$", re.S)
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def summarize_warnings(messages: Iterable[str], names_shown: int = 3) -> list[str]:
    """One line per kind of message, in order of first appearance.

    A kind seen once keeps its message unchanged. A kind seen ``n > 1`` times becomes
    ``"<n> segments ('a', 'b', 'c', ...): <text>"``, where ``<text>`` is the shared text, or
    the first message's text with values that differ replaced by ``'…'``. Messages not
    about one segment are grouped when identical (``"<message> (<n> times)"``).
    """
    groups: dict[str, list[tuple[str | None, str]]] = {}
    for message in messages:
        m = _SEGMENT.match(message)
        name, rest = (m.group("name"), m.group("rest")) if m else (None, message)
        key = ("segment:" if m else "other:") + _QUOTED.sub("'…'", rest)
        groups.setdefault(key, []).append((name, rest))
    out: list[str] = []
    for key, items in groups.items():
        name, rest = items[0]
        if len(items) == 1:
            out.append(rest if name is None else f"segment {name}: {rest}")
            continue
        texts = {r for _, r in items}
        text = rest if len(texts) == 1 else key.split(":", 1)[1]
        if name is None:
            out.append(f"{text} ({len(items)} times)")
            continue
        names = [n for n, _ in items if n is not None]
        shown = ", ".join(names[:names_shown]) + (", ..." if len(names) > names_shown else "")
        out.append(f"{len(items)} segments ({shown}): {text}")
    return out
