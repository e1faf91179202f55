#!/usr/bin/env python
"""Migrate optimization runs and gold standards to DICOM: same as ``abdicom migrate``.

    python scripts/migrate_to_dicom.py optimization_results/ GoldStandards/ --volumes-dir volumes/

See docs/migration.md.
"""

import sys
from pathlib import Path

try:
    from AdaptiveBrushDicomLib.cli.migrate import main
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "AdaptiveBrushDicom"))
    from AdaptiveBrushDicomLib.cli.migrate import main

if __name__ == "__main__":
    sys.exit(main())
