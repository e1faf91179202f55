"""The files a run / gold standard is described by: ``results.json`` / ``metadata.json``
(read with the limits of :mod:`~AdaptiveBrushDicomLib.io.limits`, checked against
``resources/results.schema.json``) and ``config.yaml``."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.errors import InputFileError
from AdaptiveBrushDicomLib.runs.layout import GOLD_METADATA_NAME, LEGACY_RESULTS_NAME, RESULTS_NAME


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema of a migrated ``results.json`` (``resources/results.schema.json``)."""
    path = Path(__file__).with_name("resources") / "results.schema.json"
    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def _legacy_schema() -> dict[str, Any]:
    """The same schema without the migration-only requirement of a ``dicom`` block."""
    schema = copy.deepcopy(load_schema())
    schema["required"] = [r for r in schema.get("required", []) if r != "dicom"]
    return schema


def _gold_schema() -> dict[str, Any]:
    """Schema of a migrated gold standard's ``metadata.json`` (only the ``dicom`` block is ours)."""
    base = load_schema()
    return {
        "$schema": base["$schema"],
        "type": "object",
        "required": ["dicom"],
        "properties": {
            "dicom": {
                "allOf": [
                    {"$ref": "#/$defs/dicom"},
                    {
                        "type": "object",
                        "required": ["seg_series_uid", "seg_sop_instance_uid", "seg_path"],
                        "properties": {
                            "seg_series_uid": {"$ref": "#/$defs/uid"},
                            "seg_sop_instance_uid": {"$ref": "#/$defs/uid"},
                            "seg_path": {"$ref": "#/$defs/relative_path"},
                        },
                    },
                ]
            }
        },
        "$defs": base["$defs"],
    }


def _validate(data: Any, schema: dict[str, Any], path: Path | str, what: str) -> None:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for err in errors[:5]:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        lines.append(f"{where}: {err.message}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    raise InputFileError(f"{what} does not match the schema: {'; '.join(lines)}{more}; fix these fields", path)


def validate_results(data: Any, path: Path | str = RESULTS_NAME, *, migrated: bool = True) -> None:
    """Check ``data`` against ``results.schema.json``.

    Parameters
    ----------
    data : parsed results.json
    path : file name used in the error message
    migrated : require the ``dicom`` block (False for a legacy results.json)

    Raises
    ------
    InputFileError
        Naming the file and up to five offending fields (JSON path) and what is wrong.
    """
    _validate(data, load_schema() if migrated else _legacy_schema(), path, "results.json")


def validate_gold_metadata(data: Any, path: Path | str = GOLD_METADATA_NAME) -> None:
    """Check a migrated gold standard's ``metadata.json`` (its ``dicom`` block)."""
    _validate(data, _gold_schema(), path, "metadata.json")




def read_json(path: str | Path, *, root: str | Path | None = None) -> Any:
    """Parse a JSON file with the limits of :mod:`~.io.limits` (regular file, size cap,
    depth and number limits); :class:`InputFileError` naming the file and line if it is not JSON.

    ``root``: the folder the user gave (default: the file's own folder); a symlink may not
    lead out of it.

    Raises
    ------
    InputFileError
        Not valid JSON (line and column named), or beyond the limits (too large, too deep,
        not a regular file, a symlink out of ``root``).
    """
    from AdaptiveBrushDicomLib.io import limits

    path = Path(path)
    text = limits.read_text(path, limits.FileKind.JSON, root=root if root is not None else path.parent)
    try:
        return limits.loads_json(text, path)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); repair the file "
            f"(a copy may exist as {LEGACY_RESULTS_NAME})",
            path,
        ) from None


def read_config(path: str | Path, *, root: str | Path | None = None) -> dict[str, Any]:
    """Parse ``config.yaml`` (empty dict when the file does not exist) with the limits of
    :mod:`~.io.limits`: a regular file (not a FIFO or device), at most 4 MiB, no YAML aliases.

    Raises
    ------
    InputFileError
        Not YAML, not a mapping at the top level, or beyond the limits.
    """
    from AdaptiveBrushDicomLib.io import limits

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    text = limits.read_text(path, limits.FileKind.YAML, root=root if root is not None else path.parent)
    data = limits.loads_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputFileError("expected a mapping (key: value) at the top level", path)
    return data


__all__ = ["load_schema", "validate_results", "validate_gold_metadata", "read_json", "read_config"]
