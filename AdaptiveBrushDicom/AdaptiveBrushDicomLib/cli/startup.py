"""Start-up cost of a command-line process.

pydicom 3 imports ``pydicom.data.download`` while it is being imported (its pixel
processing module loads bundled palette data), and that module imports ``requests`` when
it is installed, only to download pydicom's own test files. ``requests`` (with urllib3,
idna, charset_normalizer) is then ~20 % of pydicom's import time, paid by every
``abdicom export``/``decode``. The CLI never downloads pydicom test data, so it imports
pydicom once with ``requests`` hidden; ``requests`` itself is importable again right after
(the DICOMweb commands use it). Slicer and library users are not affected: only
:func:`~AdaptiveBrushDicomLib.cli.main.main` calls this.
"""

from __future__ import annotations

import sys


def import_pydicom_without_requests() -> None:
    """Import pydicom while ``import requests`` fails; no-op when either is imported already."""
    if "pydicom" in sys.modules or "requests" in sys.modules:
        return
    sys.modules["requests"] = None  # type: ignore[assignment]  # makes `import requests` raise ImportError
    try:
        import pydicom  # noqa: F401
    except ImportError:  # pragma: no cover - pydicom missing: the command reports it itself
        pass
    finally:
        if "requests" in sys.modules and sys.modules["requests"] is None:
            del sys.modules["requests"]
