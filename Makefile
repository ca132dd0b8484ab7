# aioudata developer tasks. Everything runs in .venv (made by `make install` from pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast codegen codegen-check spec lint typecheck check bench bench-quick udata-venv clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The local real udata server used by the end-to-end tests lives in its own venv.
udata-venv:
	$(PYTHON) tests/udata_server/venv.py

# The full suite, end-to-end tests against the real udata server included.
test: install udata-venv
	$(PY) -m pytest

# Without the real udata server (no udata venv needed).
test-fast: install
	$(PY) -m pytest -m "not udata_server"

# Regenerate src/aioudata/_generated/ from openapi/.
codegen: install
	$(PY) -m codegen

# Fail when src/aioudata/_generated/ is not what openapi/ generates.
codegen-check: install
	$(PY) -m codegen --check

# Re-vendor openapi/ from the pinned udata release's own swagger (throwaway venv), then codegen.
spec: install
	$(PYTHON) codegen/spec/build.py
	$(PY) -m codegen

lint: install
	$(PY) -m ruff check src codegen tests benchmarks
	$(PY) -m ruff format --check src codegen tests benchmarks

typecheck: install
	$(PY) -m mypy

check: lint typecheck codegen-check

bench: install
	$(PY) benchmarks/run.py --out benchmarks/RESULTS.md

# A few repeats only: keeps the benchmarks working (no timing is asserted).
bench-quick: install
	$(PY) benchmarks/run.py --quick --out .cache/bench-quick.md

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
