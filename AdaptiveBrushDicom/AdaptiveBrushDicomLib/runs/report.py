"""What a migration did: per item (:class:`ItemRecord`), per folder (:class:`JobReport`,
= ``migration_report.json`` / ``.md``) and per command (:class:`MigrationSummary`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION
from AdaptiveBrushDicomLib.runs.status import FolderKind, FolderStatus, ItemStatus, ReasonCode

REPORT_FORMAT = "adaptivebrush-dicom-migration-report/1"


@dataclass
class ItemRecord:
    """Outcome for one trial (or the gold segmentation) -- one row of the report.

    ``value`` / ``params`` are the trial's objective value and parameters from
    results.json, shown next to the UIDs so a report row says which SEG is which trial."""

    key: str
    trial_number: int | None
    status: ItemStatus
    reason_code: ReasonCode | None = None
    reason: str | None = None
    source: str | None = None
    source_sha256: str | None = None
    source_bytes: int | None = None
    output: str | None = None
    output_sha256: str | None = None
    size_bytes: int | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    voxels_verified: int | None = None
    labelled_voxels: int | None = None
    segments: int | None = None
    already_present: bool = False
    value: Any = None
    params: dict[str, Any] | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def is_new(self) -> bool:
        """Migrated by this run (the trial had no SEG before)."""
        return self.status == ItemStatus.MIGRATED and not self.already_present

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ItemRecord":
        names = cls.__dataclass_fields__.keys()
        rec = cls(**{k: v for k, v in d.items() if k in names})
        try:
            rec.status = ItemStatus(rec.status)
        except ValueError:
            pass
        return rec


def _params_text(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}".replace('"', "") for k, v in params.items())


@dataclass
class JobReport:
    """Outcome for one run or gold standard folder (= migration_report.json)."""

    kind: FolderKind
    folder: Path
    name: str
    status: FolderStatus = FolderStatus.PENDING
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    volume: dict[str, Any] = field(default_factory=dict)
    items: list[ItemRecord] = field(default_factory=list)
    compression: str = DEFAULT_COMPRESSION.cli_name
    wall_time_seconds: float = 0.0
    results_json: str = "unchanged"  # written | unchanged | not written
    run_key: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(ItemStatus(i.status).is_problem for i in self.items)

    def totals(self) -> dict[str, Any]:
        def count(s: ItemStatus) -> int:
            return sum(1 for i in self.items if i.status == s)

        ok = [i for i in self.items if i.status == ItemStatus.MIGRATED]
        return {
            "items": len(self.items),
            "migrated": count(ItemStatus.MIGRATED),
            "new": sum(1 for i in self.items if i.is_new),
            "skipped": count(ItemStatus.SKIPPED),
            "failed": count(ItemStatus.FAILED),
            "changed": count(ItemStatus.CHANGED),
            "planned": count(ItemStatus.PLANNED),
            "already_present": sum(1 for i in self.items if i.already_present),
            "bytes_in": sum(i.source_bytes or 0 for i in ok),
            "bytes_out": sum(i.size_bytes or 0 for i in ok),
            "voxels_verified": sum(i.voxels_verified or 0 for i in ok),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "tool": f"AdaptiveBrushDicom {__version__}",
            "kind": self.kind,
            "name": self.name,
            "run_key": self.run_key,
            "folder": str(self.folder),
            "status": self.status,
            "compression": self.compression,
            "volume": {k: v for k, v in self.volume.items() if not k.startswith("_")},
            "errors": list(self.errors),
            "notes": list(self.notes),
            "totals": self.totals(),
            "wall_time_seconds": round(self.wall_time_seconds, 3),
            "results_json": self.results_json,
            "items": [asdict(i) for i in self.items],
        }

    def to_markdown(self) -> str:
        t = self.totals()
        kind = "Optimization run" if self.kind == FolderKind.RUN else "Gold standard"
        lines = [
            f"# DICOM migration report: {self.name}",
            "",
            f"{kind} `{self.folder}` -- status **{FolderStatus(self.status).value}**, "
            f"{t['migrated']} migrated ({t['new']} new, {t['already_present']} already present), "
            f"{t['skipped']} skipped, {t['failed']} failed, {t['changed']} changed, "
            f"wall time {self.wall_time_seconds:.2f} s.",
            "",
        ]
        lines += self._volume_lines()
        if self.errors:
            lines += ["## Errors", ""] + [f"- {e}" for e in self.errors] + [""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        lines += [
            "## Items",
            "",
            "| item | status | value | parameters | SeriesInstanceUID | SOPInstanceUID | output | "
            "source (sha256) | bytes | voxels verified | reason |",
            "|---|---|---|---|---|---|---|---|---:|---:|---|",
        ]
        lines += [self._item_row(i) for i in self.items]
        lines += [
            "",
            f"Totals: {t['items']} items, {t['bytes_in']:,} bytes in, {t['bytes_out']:,} bytes out, "
            f"{t['voxels_verified']:,} voxels verified.",
            "",
        ]
        return "\n".join(lines)

    def _volume_lines(self) -> list[str]:
        if not self.volume:
            return []
        v = self.volume
        return [
            "## Source image",
            "",
            f"- sample: `{v.get('sample')}` from `{v.get('source')}` ({v.get('volume_source')})",
            f"- PatientID `{v.get('patient_id')}`, Modality `{v.get('modality')}`, "
            f"StudyInstanceUID `{v.get('study_instance_uid')}`",
            f"- volume series `{v.get('series_instance_uid')}` ({v.get('files')} files in `{v.get('folder')}`)",
            "",
        ]

    @staticmethod
    def _item_row(i: ItemRecord) -> str:
        src = f"`{i.source}` ({i.source_sha256[:12]}...)" if i.source and i.source_sha256 else (i.source or "")
        reason = "; ".join([i.reason or ""] + list(i.notes)).strip("; ").replace("|", "/")
        if i.already_present:
            reason = ("already present; " + reason).rstrip("; ")
        cells = [i.key, ItemStatus(i.status).value, "" if i.value is None else str(i.value),
                 _params_text(i.params).replace("|", "/"), i.series_instance_uid or "", i.sop_instance_uid or "",
                 i.output or "", src, "" if i.size_bytes is None else str(i.size_bytes),
                 "" if i.voxels_verified is None else str(i.voxels_verified), reason]
        return "| " + " | ".join(cells) + " |"


@dataclass
class MigrationSummary:
    """What :func:`migrate_paths` did, for every folder."""

    reports: list[JobReport]
    dry_run: bool = False
    wall_time_seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when any folder or item failed (or changed)."""
        return 1 if any(r.failed for r in self.reports) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "wall_time_seconds": round(self.wall_time_seconds, 3),
            "folders": [r.to_dict() for r in self.reports],
        }

    def to_text(self) -> str:
        lines: list[str] = []
        for r in self.reports:
            t = r.totals()
            if r.status == FolderStatus.ALREADY_MIGRATED:
                lines.append(f"{r.folder}: already migrated, nothing changed ({t['migrated']} SEG file(s))")
                continue
            lines.append(
                f"{r.folder}: {FolderStatus(r.status).value} -- {t['migrated']} migrated ({t['new']} new, "
                f"{t['already_present']} already present), {t['skipped']} skipped, {t['failed']} failed, "
                f"{t['changed']} changed, {t['planned']} planned, {r.wall_time_seconds:.2f} s"
            )
            lines += [f"  error: {e}" for e in r.errors]
            for i in r.items:
                if ItemStatus(i.status).is_problem or (i.status == ItemStatus.SKIPPED
                                                       and i.reason_code != ReasonCode.PRUNED):
                    lines.append(f"  {i.key}: {ItemStatus(i.status).value}: {i.reason}")
            lines += [f"  note: {n}" for n in r.notes]
        return "\n".join(lines)


__all__ = ["REPORT_FORMAT", "ItemRecord", "JobReport", "MigrationSummary"]
