"""What the *Compare trials* hand-off gives CrossSegmentationExplorer (CSE), and how CSE
will see our segments.

CSE (ImagingDataCommons/SlicerCrossSegmentationExplorer, CrossSegmentationExplorer.py)
keeps its state in a singleton ``vtkMRMLScriptedModuleNode`` (tag ``CrossSegmentationExplorer``):

* node reference ``CurrentVolumeNode``: the volume whose segmentations are listed
  (segmentations whose reference-geometry node is that volume);
* parameter ``SegmentationIDs``: ``;``-joined segmentation *node names* checked in its
  "Segmentations" list, read once when its widget is set up (``setupOptions``);
* parameter ``ModelKeywordMapping``: JSON ``{model name: [keywords]}``; a model groups every
  segmentation whose node name contains one of its keywords (case-insensitive).

Rows of its segment table are keyed by :func:`structure_key` (its
``extractStructureNameFromTerminology``: the TerminologyEntry's type meaning plus modifier
meaning, or the segment name when the segment has no TerminologyEntry tag). Two segments
of one segmentation with one key collapse into one row; :func:`structure_collisions`
finds them before that happens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

MODULE_NAME = "CrossSegmentationExplorer"
PARAM_SEGMENTATION_IDS = "SegmentationIDs"
PARAM_MODEL_KEYWORDS = "ModelKeywordMapping"
REF_CURRENT_VOLUME = "CurrentVolumeNode"
#: Model name used for gold standards in the keyword mapping.
GOLD_MODEL = "Gold standard"


def structure_key(terminology_entry: str | None, segment_name: str) -> str:
    """The row key CSE gives a segment (same rule as its
    ``extractStructureNameFromTerminology``; ``None`` = no TerminologyEntry tag)."""
    if terminology_entry is None:
        return segment_name
    parts = terminology_entry.split("~")
    if len(parts) < 3:
        return "Unknown"
    main = parts[2].split("^")
    name = main[2].strip() if len(main) >= 3 else parts[2].strip()
    if len(parts) >= 4:
        modifier = parts[3].split("^")
        if len(modifier) >= 3 and modifier[2].strip() not in name:
            name += f" {modifier[2].strip()}"
    return name or "Unknown"


def structure_collisions(segments: Iterable[tuple[str, str | None]]) -> list[str]:
    """One-line warnings for segments of one segmentation that CSE would show as one row.

    ``segments``: ``(segment name, TerminologyEntry or None)`` pairs.
    """
    by_key: dict[str, list[str]] = {}
    for name, entry in segments:
        by_key.setdefault(structure_key(entry, name), []).append(name)
    return [
        f"segments {', '.join(repr(n) for n in names)} share the terminology type {key!r}; "
        "CrossSegmentationExplorer will show them as one structure (give them distinct types "
        "in the Segment Editor's terminology dialog)"
        for key, names in by_key.items() if len(names) > 1
    ]


@dataclass(frozen=True)
class TrialInfo:
    """The part of a listed SEG the hand-off needs."""

    node_name: str
    is_gold: bool
    algorithm: str | None = None


def trials_for(series_uids: Sequence[str], node_names: Mapping[str, str], infos: Mapping[str, object]) -> list[TrialInfo]:
    """:class:`TrialInfo` per loaded series (``node_names``: series UID -> node name) from the
    database's ``SegSeriesInfo`` (``infos``: series UID -> info with ``is_gold`` and
    ``algorithms``); series without info count as trials of no algorithm."""
    out = []
    for uid in series_uids:
        if uid not in node_names:
            continue
        info = infos.get(uid)
        algorithms = tuple(getattr(info, "algorithms", ()) or ())
        out.append(TrialInfo(node_names[uid], bool(getattr(info, "is_gold", False)), algorithms[0] if algorithms else None))
    return out


def keyword_mapping(trials: Sequence[TrialInfo]) -> dict[str, list[str]]:
    """CSE models: gold standards in :data:`GOLD_MODEL`, trials grouped by algorithm.

    Keywords are the node names themselves (CSE matches substrings, so a node name is the
    one keyword that is certain to select exactly that node); names may not contain ``,``
    (CSE splits keyword lists on it), which :func:`..naming.sanitize_node_name` guarantees.
    """
    mapping: dict[str, list[str]] = {}
    for t in trials:
        model = GOLD_MODEL if t.is_gold else (t.algorithm or "Trials")
        mapping.setdefault(model, [])
        if t.node_name not in mapping[model]:
            mapping[model].append(t.node_name)
    return mapping


def parameters(segmentation_names: Sequence[str], mapping: Mapping[str, Sequence[str]] | None) -> dict[str, str]:
    """String parameters to set on CSE's parameter node before its widget exists.

    Raises
    ------
    ValueError
        A segmentation name contains ``;`` (CSE's list separator).
    """
    for name in segmentation_names:
        if ";" in name:
            raise ValueError(f"segmentation name {name!r} contains ';' (CSE's list separator)")
    out = {PARAM_SEGMENTATION_IDS: ";".join(segmentation_names)}
    if mapping:
        out[PARAM_MODEL_KEYWORDS] = json.dumps({k: list(v) for k, v in mapping.items()})
    return out


def comparison_table(
    series_uids: Sequence[str],
    infos: Mapping[str, object],
    file_for_series: Callable[[str], str | None],
) -> tuple[tuple[str, ...], list[list[str]], str | None]:
    """The metrics table *Compare trials* shows beside CSE: the one selected gold standard
    against every other selected SEG (Dice, Jaccard, HD95, ASSD, volumes; computed by
    :func:`AdaptiveBrushDicomLib.analysis.report.metrics_table`, best trial first).

    ``infos``: series UID -> the database's ``SegSeriesInfo`` (``is_gold``);
    ``file_for_series``: series UID -> its SEG file. Returns ``(columns, rows, why_not)``:
    empty columns/rows and a sentence for the user when the selection has no single gold
    standard or no trial.

    Raises
    ------
    UserError
        A SEG file missing or unreadable, or a trial on another grid than the gold standard.
    """
    golds = [uid for uid in series_uids if getattr(infos.get(uid), "is_gold", False)]
    trials = [uid for uid in series_uids if uid not in golds]
    if len(golds) != 1 or not trials:
        found = f"{len(golds)} gold standards" if golds else "no gold standard"
        return (), [], (f"select one gold standard and at least one trial for the metrics table ({found} and "
                         f"{len(trials)} trial(s) selected)")
    from AdaptiveBrushDicomLib.analysis.report import metrics_table
    from AdaptiveBrushDicomLib.errors import UserError

    files = {uid: file_for_series(uid) for uid in [*golds, *trials]}
    missing = [uid for uid, f in files.items() if not f]
    if missing:
        raise UserError(f"no file in the DICOM database for series {missing[0]}; re-import the run folder")
    columns, rows = metrics_table(str(files[golds[0]]), [str(files[uid]) for uid in trials])
    return tuple(columns), rows, None
