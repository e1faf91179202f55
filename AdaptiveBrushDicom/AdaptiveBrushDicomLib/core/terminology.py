"""Slicer ``TerminologyEntry`` strings and slicerio terminology dicts <-> :class:`Terminology`.

Slicer stores the coded meaning of a segment in the segment tag ``TerminologyEntry``
(``vtkSegment::GetTerminologyEntryTagName()``), a string of seven parts joined by ``~``::

    <category/type context name>
    ~<category>~<type>~<type modifier>
    ~<anatomic context name>
    ~<anatomic region>~<anatomic region modifier>

Each coded part is ``CodingSchemeDesignator^CodeValue^CodeMeaning``; an absent code is
``^^``. Example (Slicer's default for a new segment)::

    Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue
    ~SCT^85756007^Tissue~^^~Anatomic codes - DICOM master list~^^~^^

slicerio (``slicerio.read_segmentation``) turns the same string into a dict::

    {"contextName": "...", "category": [scheme, value, meaning], "type": [...],
     "typeModifier": [...],            # only when present
     "anatomicContextName": "...",     # only when non-empty
     "anatomicRegion": [...],          # only when present
     "anatomicRegionModifier": [...]}  # only when present (and a region is present)

and ``slicerio.write_segmentation`` accepts that dict back (missing optional keys are
written as ``^^`` / empty).

Text that contains ``~`` or ``^`` (the separators) or ``|`` (the separator of the seg.nrrd
``SegmentN_Tags`` field) cannot be represented and is refused, as are coding scheme
designators we do not know (see :data:`KNOWN_CODING_SCHEMES`; private schemes starting with
``99`` are accepted).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.core.segment import (
    DEFAULT_ANATOMIC_CONTEXT,
    DEFAULT_CATEGORY_CONTEXT,
    TISSUE,
    Code,
    Terminology,
)

__all__ = [
    "KNOWN_CODING_SCHEMES",
    "TerminologyError",
    "check_code",
    "check_coding_scheme",
    "format_terminology_entry",
    "parse_terminology_entry",
    "parse_terminology_text",
    "same_codes",
    "terminology_from_slicerio",
    "terminology_to_slicerio",
]

#: Coding scheme designators accepted without complaint (DICOM PS3.16 Table 8-1 subset
#: that segment terminologies use). Private schemes whose designator starts with ``99``
#: (e.g. ``99SLICER``) are accepted as well.
KNOWN_CODING_SCHEMES: frozenset[str] = frozenset(
    {
        "SCT",  # SNOMED CT (the DICOM default for segmentation terms)
        "SRT",  # SNOMED-RT style codes (retired, still found in older files)
        "SNM3",  # SNOMED version 3 (retired)
        "DCM",  # DICOM Controlled Terminology
        "FMA",  # Foundational Model of Anatomy
        "UMLS",  # Unified Medical Language System
        "LN",  # LOINC
        "RADLEX",  # RadLex
        "NCIt",  # NCI Thesaurus
        "UCUM",  # units
        "MDC",  # ISO/IEEE 11073
    }
)

_PRIVATE_SCHEME = re.compile(r"^99[A-Za-z0-9_.\-]{1,14}$")
#: Characters that corrupt Slicer's TerminologyEntry string or the seg.nrrd Tags field.
_FORBIDDEN = ("~", "^", "|")
_N_PARTS = 7


class TerminologyError(UserError):
    """A terminology string, dict or code is malformed or cannot be represented."""


# ----------------------------------------------------------------------------- codes
def check_coding_scheme(scheme: str, where: str = "code") -> str:
    """Return ``scheme`` if it is a known or private (``99...``) coding scheme designator.

    Parameters
    ----------
    scheme : str
        CodingSchemeDesignator, e.g. ``"SCT"``.
    where : str
        What the scheme belongs to, used in the error message.

    Raises
    ------
    TerminologyError
        ``unknown coding scheme`` when it is neither known nor private.
    """
    if scheme in KNOWN_CODING_SCHEMES or _PRIVATE_SCHEME.match(scheme):
        return scheme
    known = ", ".join(sorted(KNOWN_CODING_SCHEMES))
    raise TerminologyError(
        f"{where}: unknown coding scheme {scheme!r}; use one of {known} or a private scheme starting with '99'"
    )


def check_code(code: Code, where: str = "code") -> Code:
    """Validate one code for use in Slicer strings and DICOM.

    Checks that value, scheme and meaning are non-empty, that none contains ``~``, ``^``
    or ``|``, and that the scheme is known (:func:`check_coding_scheme`).

    Raises
    ------
    TerminologyError
        Naming ``where`` and the offending part.
    """
    for part, text in (("coding scheme", code.scheme), ("code value", code.value), ("code meaning", code.meaning)):
        if not isinstance(text, str) or not text.strip():
            raise TerminologyError(f"{where}: {part} is empty in {code}")
        bad = [c for c in _FORBIDDEN if c in text]
        if bad:
            raise TerminologyError(
                f"{where}: {part} {text!r} contains {' and '.join(repr(c) for c in bad)}, which Slicer's "
                "TerminologyEntry format cannot hold; remove it"
            )
    check_coding_scheme(code.scheme, where)
    return code


def _check_context(name: str, where: str) -> None:
    bad = [c for c in _FORBIDDEN if c in name]
    if bad:
        raise TerminologyError(
            f"{where}: context name {name!r} contains {' and '.join(repr(c) for c in bad)}, which Slicer's "
            "TerminologyEntry format cannot hold"
        )


def _code_from_parts(parts: Sequence[Any], where: str, optional: bool) -> Code | None:
    """[scheme, value, meaning] (all empty -> None when optional) -> Code.

    Raises
    ------
    TerminologyError
        Not three parts, empty when required, or incomplete (naming ``where``).
    """
    items = ["" if p is None else str(p) for p in parts]
    if len(items) != 3:
        raise TerminologyError(
            f"{where}: expected 'scheme^value^meaning' (3 parts), got {len(items)} part(s): {'^'.join(items)!r}"
        )
    scheme, value, meaning = (p.strip() for p in items)
    if not scheme and not value and not meaning:
        if optional:
            return None
        raise TerminologyError(f"{where}: required code is empty")
    if not (scheme and value and meaning):
        raise TerminologyError(
            f"{where}: incomplete code {'^'.join(items)!r}; scheme, value and meaning are all required"
        )
    return check_code(Code(value=value, scheme=scheme, meaning=meaning), where)


def _format_code(code: Code | None, where: str) -> str:
    if code is None:
        return "^^"
    check_code(code, where)
    return f"{code.scheme}^{code.value}^{code.meaning}"


# ------------------------------------------------------------------- TerminologyEntry
def parse_terminology_entry(entry: str) -> Terminology:
    """Parse a Slicer ``TerminologyEntry`` tag value.

    Parameters
    ----------
    entry : str
        Seven ``~``-separated parts (see module docstring).

    Returns
    -------
    Terminology

    Raises
    ------
    TerminologyError
        When the string does not have seven parts, a code is incomplete, category or type
        is empty, or a coding scheme is unknown; the message quotes the string.
    """
    if not isinstance(entry, str):
        raise TerminologyError(f"TerminologyEntry must be a string, got {type(entry).__name__}")
    parts = entry.strip().split("~")
    if len(parts) != _N_PARTS:
        raise TerminologyError(
            f"TerminologyEntry {entry!r}: expected 7 parts separated by '~' (context~category~type~"
            f"modifier~anatomic context~region~region modifier), got {len(parts)}"
        )
    where = f"TerminologyEntry {entry!r}"
    names = ("category", "type", "type modifier", "", "anatomic region", "anatomic region modifier")
    codes: list[Code | None] = []
    for idx in (1, 2, 3, 5, 6):
        codes.append(
            _code_from_parts(parts[idx].split("^"), f"{where} ({names[idx - 1]})", optional=idx not in (1, 2))
        )
    category, type_, modifier, region, region_modifier = codes
    if region is None and region_modifier is not None:
        raise TerminologyError(f"{where}: anatomic region modifier given without an anatomic region")
    assert category is not None and type_ is not None
    return Terminology(
        category=category,
        type=type_,
        type_modifier=modifier,
        anatomic_region=region,
        anatomic_region_modifier=region_modifier,
        context_name=parts[0].strip(),
        anatomic_context_name=parts[4].strip(),
    )


def parse_terminology_text(text: str) -> Terminology:
    """A Slicer ``TerminologyEntry`` (seven ``~`` parts) or a short code.

    Short forms (what a person types in a segment table):

    * ``SCT^52988006^Lesion`` -- the segmented property *type*; the category is then
      SCT 85756007 "Tissue" (DICOM requires one; no lookup of the "right" category is
      guessed);
    * ``SCT^49755003^Morphologically Altered Structure~SCT^52988006^Lesion`` -- category
      and type.

    Each code is ``CodingSchemeDesignator^CodeValue^CodeMeaning``; context names are
    Slicer's defaults.

    Raises
    ------
    TerminologyError
        Not 1, 2 or 7 ``~`` parts, an incomplete code or an unknown coding scheme.
    """
    if not isinstance(text, str):
        raise TerminologyError(f"terminology must be a string, got {type(text).__name__}")
    parts = text.strip().split("~")
    if len(parts) == _N_PARTS:
        return parse_terminology_entry(text)
    if len(parts) not in (1, 2):
        raise TerminologyError(
            f"terminology {text!r}: expected a code 'SCT^52988006^Lesion' (type), 'category~type', "
            f"or a Slicer TerminologyEntry (7 parts separated by '~'), got {len(parts)} parts"
        )
    where = f"terminology {text!r}"
    codes = [_code_from_parts(p.split("^"), where, optional=False) for p in parts]
    assert all(c is not None for c in codes)
    if len(codes) == 1:
        return Terminology(category=TISSUE, type=codes[0])  # type: ignore[arg-type]
    return Terminology(category=codes[0], type=codes[1])  # type: ignore[arg-type]


def format_terminology_entry(terminology: Terminology) -> str:
    """Format a :class:`Terminology` as a Slicer ``TerminologyEntry`` tag value.

    Raises
    ------
    TerminologyError
        When a code or context name contains ``~``, ``^`` or ``|`` or a scheme is unknown.
    """
    t = terminology
    where = "terminology"
    _check_context(t.context_name, where)
    _check_context(t.anatomic_context_name, where)
    if t.anatomic_region is None and t.anatomic_region_modifier is not None:
        raise TerminologyError(f"{where}: anatomic region modifier given without an anatomic region")
    return "~".join(
        [
            t.context_name,
            _format_code(t.category, f"{where} category"),
            _format_code(t.type, f"{where} type"),
            _format_code(t.type_modifier, f"{where} type modifier"),
            t.anatomic_context_name,
            _format_code(t.anatomic_region, f"{where} anatomic region"),
            _format_code(t.anatomic_region_modifier, f"{where} anatomic region modifier"),
        ]
    )


# ------------------------------------------------------------------------- slicerio
def terminology_from_slicerio(data: Mapping[str, Any]) -> Terminology | None:
    """Convert slicerio's ``segment["terminology"]`` dict to a :class:`Terminology`.

    Returns None when category and type are both absent/empty (no terminology chosen).
    Missing context names get Slicer's DICOM master list defaults.

    Raises
    ------
    TerminologyError
        On incomplete codes or unknown coding schemes.
    """
    if not isinstance(data, Mapping):
        raise TerminologyError(f"slicerio terminology must be a dict, got {type(data).__name__}")
    where = "slicerio terminology"

    def code(key: str, optional: bool = True) -> Code | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            value = value.split("^")
        return _code_from_parts(list(value), f"{where} {key!r}", optional=optional)

    category, type_ = code("category"), code("type")
    if category is None and type_ is None:
        return None
    if category is None or type_ is None:
        raise TerminologyError(f"{where}: 'category' and 'type' must both be given, got {dict(data)!r}")
    region = code("anatomicRegion")
    region_modifier = code("anatomicRegionModifier") if region is not None else None
    return Terminology(
        category=category,
        type=type_,
        type_modifier=code("typeModifier"),
        anatomic_region=region,
        anatomic_region_modifier=region_modifier,
        context_name=str(data.get("contextName") or DEFAULT_CATEGORY_CONTEXT),
        anatomic_context_name=str(data.get("anatomicContextName") or DEFAULT_ANATOMIC_CONTEXT),
    )


def terminology_to_slicerio(terminology: Terminology) -> dict[str, Any]:
    """Convert a :class:`Terminology` to the dict ``slicerio.write_segmentation`` expects.

    Optional codes are only included when present (slicerio writes ``^^`` for missing
    keys), so ``terminology_from_slicerio(terminology_to_slicerio(t)) == t``.

    Raises
    ------
    TerminologyError
        A context name Slicer cannot hold, an anatomic region modifier without a region, or
        a code with an empty or unsupported part.
    """
    t = terminology
    _check_context(t.context_name, "terminology")
    _check_context(t.anatomic_context_name, "terminology")
    if t.anatomic_region is None and t.anatomic_region_modifier is not None:
        raise TerminologyError("terminology: anatomic region modifier given without an anatomic region")

    def parts(c: Code, what: str) -> list[str]:
        check_code(c, f"terminology {what}")
        return [c.scheme, c.value, c.meaning]

    out: dict[str, Any] = {
        "contextName": t.context_name,
        "category": parts(t.category, "category"),
        "type": parts(t.type, "type"),
    }
    if t.type_modifier is not None:
        out["typeModifier"] = parts(t.type_modifier, "type modifier")
    out["anatomicContextName"] = t.anatomic_context_name
    if t.anatomic_region is not None:
        out["anatomicRegion"] = parts(t.anatomic_region, "anatomic region")
        if t.anatomic_region_modifier is not None:
            out["anatomicRegionModifier"] = parts(t.anatomic_region_modifier, "anatomic region modifier")
    return out


def same_codes(a: Terminology | None, b: Terminology | None) -> bool:
    """True when both terminologies have the same five codes (context names ignored).

    DICOM has no place for Slicer's context names, so a terminology read back from a SEG
    carries the default context names; compare with this function.
    """
    if a is None or b is None:
        return a is b

    def key(t: Terminology) -> tuple[Any, ...]:
        return tuple(
            None if c is None else (c.scheme, c.value)
            for c in (t.category, t.type, t.type_modifier, t.anatomic_region, t.anatomic_region_modifier)
        )

    return key(a) == key(b)
