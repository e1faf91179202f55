#!/bin/sh
# Run the real-Slicer suite for one Slicer version: run_one.sh v5.12.0 [pytest args]
here=$(dirname "$0")
version=$1; shift
ABD_SLICER_VERSION=$version PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python}" -m pytest \
  -p slicer_real_fixtures -p no:cacheprovider -o python_files='real_*.py' "$here" "$@"
