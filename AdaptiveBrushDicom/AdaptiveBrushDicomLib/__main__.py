"""``python -m AdaptiveBrushDicomLib`` = ``abdicom``."""

import sys

from AdaptiveBrushDicomLib.cli.main import main

sys.exit(main())
