"""Checks of top-level DICOM text values a user gives (descriptions, names, IDs).

A value that does not fit its VR is refused with one line naming the attribute, its tag,
the limit and the command-line option that set it; nothing is cut silently and nothing
reaches highdicom / pydicom to fail there with a traceback.
"""

from __future__ import annotations

from AdaptiveBrushDicomLib.errors import UserError

#: keyword -> (tag text, VR, maximum characters, option that usually sets it)
SERIES_TEXT: dict[str, tuple[str, str, int, str]] = {
    "SeriesDescription": ("(0008,103E)", "LO", 64, "--series-description"),
    "StudyDescription": ("(0008,1030)", "LO", 64, "--study-description"),
    "ContentDescription": ("(0070,0081)", "LO", 64, "content description"),
    "ContentLabel": ("(0070,0080)", "CS", 16, "content label"),
    "PatientID": ("(0010,0020)", "LO", 64, "--patient-id"),
    "ContentCreatorName": ("(0070,0084)", "PN", 64, "ContentCreatorName of --metadata"),
}


def check_series_text(keyword: str, value: str | None) -> None:
    """Raise :class:`UserError` when ``value`` does not fit ``keyword``'s VR.

    Limits are characters (PS3.5 Table 6.2-1); LO / PN values must not contain a
    backslash or control characters. ``None`` and ``""`` are accepted.

    Raises
    ------
    UserError
        ``value`` is longer than the VR allows, or an LO / PN value holds a backslash or
        control characters; the message names the attribute, its tag and the option.
    """
    if not value:
        return
    tag, vr, limit, option = SERIES_TEXT[keyword]
    text = str(value)
    if len(text) > limit:
        raise UserError(
            f"{keyword} {tag} is {vr}, at most {limit} characters; {option} has {len(text)}: "
            f"{text[:40]!r}...; shorten it"
        )
    if "\\" in text or any(ord(c) < 32 for c in text):
        raise UserError(f"{keyword} {tag} ({vr}) must not contain a backslash or control characters "
                        f"({option}): {text!r}")
