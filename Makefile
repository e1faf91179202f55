# The README's commands. Each target bootstraps .venv itself (python3 -m venv + pip).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Slicer 5.12 bundles highdicom 0.27 + pydicom 3.0.2: the core is tested against both.
COMPAT_VENV  ?= .venv-hd027
COMPAT_STAMP := $(COMPAT_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-compat test-slicer bench interop clean-demo

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	@echo "installing AdaptiveBrushDicom and its dependencies into $(VENV) (about a minute the first time)"
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -e '.[test,remote,fast,slicer,plot]'
	touch $(STAMP)

$(COMPAT_STAMP): pyproject.toml
	$(PY) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/pip install -q -e '.[test,remote,fast,plot]' 'highdicom==0.27.0' 'pydicom==3.0.2'
	touch $(COMPAT_STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# only the real-Slicer suite (Slicer 5.10.0 / 5.12.0 / main files on the slicer-core wheel)
test-slicer: $(STAMP)
	ABD_REQUIRE_SLICER=1 $(BIN)/python -m pytest Testing/Python/test_slicer_real.py -q $(PYTEST_ARGS)

test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py
	$(BIN)/python benchmarks/bench_index.py
	$(BIN)/python benchmarks/bench_slicer_load.py
	$(BIN)/python benchmarks/bench_compare.py

# local readers (pydicom, highdicom, dcmqi, DCMTK, dcmjs/Cornerstone3D in node) -> docs/interoperability.md;
# Orthanc + DICOMweb + Cornerstone3D/OHIF in headless chromium -> docs/interop-remote.md
# (needs Debian orthanc orthanc-dicomweb chromium and node/npm; ~5 min)
interop: $(STAMP)
	cd interop/js && npm ci --no-audit --no-fund
	$(BIN)/python scripts/interop_matrix.py
	$(BIN)/python interop/run_interop.py

clean-demo:
	rm -rf demo-output
