"""What a pull writes and how it is reported, whatever the transport (DICOMweb WADO-RS or DIMSE C-GET).

:func:`store_pulled` puts one received instance in place: an identical file is left alone
(a pull can be repeated), a different one is replaced only with ``force``, every write is
atomic. :class:`PullReport` is the report of both :func:`~.dicomweb.retrieve.pull` and
:func:`~.dimse.retrieve.pull`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.io.atomic import atomic_output


@dataclass
class PullReport:
    """Summary of a pull (:func:`~.dicomweb.retrieve.pull`, :func:`~.dimse.retrieve.pull`).

    Attributes
    ----------
    series_instance_uid, study_instance_uid : str
    out_dir : folder written into.
    files : the Part 10 files (one per instance, ``<SOPInstanceUID>.dcm``), by InstanceNumber.
    written, unchanged : files written / already present with identical bytes.
    transcoded : instances the server would not send as stored (a transcoded copy was
        written instead; bytes differ from what was pushed).
    bytes : bytes written; seconds : wall time.
    """

    series_instance_uid: str
    study_instance_uid: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    transcoded: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (``--json``)."""
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["files"] = [str(p) for p in self.files]
        d["seconds"] = round(self.seconds, 3)
        return d

    def to_text(self) -> str:
        """The report for people: one summary line, then notes."""
        lines = [f"{len(self.files)} instances of series {self.series_instance_uid} in {self.out_dir}: "
                 f"{self.written} written, {self.unchanged} already present ({self.bytes:,} bytes, "
                 f"{self.seconds:.2f} s)"]
        if self.transcoded:
            lines.append(f"  note: the server sent {len(self.transcoded)} instances in another transfer syntax "
                         "than stored (it refused transfer-syntax=*)")
        return "\n".join(lines)


def store_pulled(target: Path, blob: bytes, report: PullReport, *, force: bool) -> None:
    """Put one pulled instance at ``target``: an identical file is left alone (a pull can
    be repeated), a different one is replaced only with ``force``; written atomically.
    Counts it in ``report`` (DICOMweb and DIMSE pulls).

    Raises
    ------
    OutputExistsError
        A different file exists at ``target`` and ``force`` is not given.
    """
    from AdaptiveBrushDicomLib.errors import OutputExistsError

    if target.exists() and target.read_bytes() == blob:
        report.unchanged += 1
    elif target.exists() and not force:
        raise OutputExistsError("a different file with this name exists; choose another --out or "
                                "pass --force", target)
    else:
        with atomic_output(target) as tmp:
            tmp.write_bytes(blob)
        report.written += 1
        report.bytes += len(blob)
    report.files.append(target)
