"""Which trial segment corresponds to which gold segment.

Three passes, each over the segments the earlier passes left unmatched, and each making
a pair only when it is one-to-one (exactly one candidate on each side):

1. **name**: identical names, then names equal after case folding and collapsing
   whitespace / ``_`` / ``-`` ("Left kidney" = "left_kidney");
2. **terminology**: the same five codes (category, type, type modifier, region, region
   modifier; context names ignored), but not the generic Tissue/Tissue default that
   every writer puts on segments without a meaning;
3. **label value**: the same label value (the number in the voxel array), unless both
   segments carry specific terminologies that differ (that is evidence against the pair).

Everything else is reported as unmatched, never guessed. Ambiguous candidates (two gold
segments called "Tumor") stay unmatched with a note saying why.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

from AdaptiveBrushDicomLib.core.segment import TISSUE, Segment, Terminology


class MatchMethod(str, enum.Enum):
    """How a gold/trial pair was made."""

    NAME = "name"
    TERMINOLOGY = "terminology"
    LABEL = "label"


@dataclass(frozen=True)
class SegmentMatch:
    """One gold segment and its trial counterpart."""

    gold: Segment
    trial: Segment
    method: MatchMethod


@dataclass
class MatchResult:
    """Outcome of :func:`match_segments`; ``matches`` in gold order."""

    matches: list[SegmentMatch] = field(default_factory=list)
    unmatched_gold: list[Segment] = field(default_factory=list)
    unmatched_trial: list[Segment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def normalized_name(name: str) -> str:
    """Case-folded name with runs of whitespace, ``_`` and ``-`` as one space."""
    return re.sub(r"[\s_\-]+", " ", name).strip().casefold()


def _code_key(t: Terminology | None) -> tuple[tuple[str, str] | None, ...] | None:
    """The (scheme, value) pairs of every code of ``t`` (None for an absent code or terminology)."""
    if t is None:
        return None
    codes = (t.category, t.type, t.type_modifier, t.anatomic_region, t.anatomic_region_modifier)
    return tuple(None if c is None else (c.scheme, c.value) for c in codes)


def _specific_terminology(t: Terminology | None) -> tuple[tuple[str, str] | None, ...] | None:
    """Code key of ``t`` unless it is absent or the generic Tissue/Tissue default."""
    key = _code_key(t)
    if key is None or t is None:
        return None
    generic = (TISSUE.scheme, TISSUE.value)
    if key[0] == generic and key[1] == generic and all(k is None for k in key[2:]):
        return None
    return key


def _pass(
    gold: list[Segment], trial: list[Segment], key: Callable[[Segment], Hashable | None],
    method: MatchMethod, out: MatchResult, veto: Callable[[Segment, Segment], bool] | None = None,
) -> None:
    by_gold: dict[Hashable, list[Segment]] = defaultdict(list)
    by_trial: dict[Hashable, list[Segment]] = defaultdict(list)
    for s in gold:
        k = key(s)
        if k is not None:
            by_gold[k].append(s)
    for s in trial:
        k = key(s)
        if k is not None:
            by_trial[k].append(s)
    for k, gs in by_gold.items():
        ts = by_trial.get(k, [])
        if not ts:
            continue
        if len(gs) != 1 or len(ts) != 1:
            out.notes.append(
                f"{method.value} {k!r} is shared by {len(gs)} gold and {len(ts)} trial segments; not matched by it"
            )
            continue
        g, t = gs[0], ts[0]
        if veto is not None and veto(g, t):
            out.notes.append(f"gold {g.name!r} and trial {t.name!r} share label {g.label} but their terminologies "
                             "differ; not matched")
            continue
        out.matches.append(SegmentMatch(g, t, method))
        gold.remove(g)
        trial.remove(t)


def _terminology_conflict(g: Segment, t: Segment) -> bool:
    a, b = _specific_terminology(g.terminology), _specific_terminology(t.terminology)
    return a is not None and b is not None and a != b


def match_segments(gold: Sequence[Segment], trial: Sequence[Segment]) -> MatchResult:
    """Pair the segments of a gold standard with those of a trial (see module docstring).

    Parameters
    ----------
    gold, trial : the segments of the two segmentations

    Returns
    -------
    MatchResult
        ``matches`` in the gold segments' order; unmatched segments in their own order.
    """
    out = MatchResult()
    g_left, t_left = list(gold), list(trial)
    _pass(g_left, t_left, lambda s: s.name, MatchMethod.NAME, out)
    _pass(g_left, t_left, lambda s: normalized_name(s.name), MatchMethod.NAME, out)
    _pass(g_left, t_left, lambda s: _specific_terminology(s.terminology), MatchMethod.TERMINOLOGY, out)
    _pass(g_left, t_left, lambda s: (s.layer, s.label), MatchMethod.LABEL, out, veto=_terminology_conflict)
    order = {id(s): n for n, s in enumerate(gold)}
    out.matches.sort(key=lambda m: order[id(m.gold)])
    out.unmatched_gold = g_left
    out.unmatched_trial = t_left
    return out


__all__ = ["MatchMethod", "SegmentMatch", "MatchResult", "match_segments", "normalized_name"]
