# aioudata developer tasks. Everything runs in .venv (made by `make install` from pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast codegen codegen-check spec lint typecheck check bench bench-quick udata-venv mirror demo clean package docs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The local real udata server used by the end-to-end tests lives in its own venv.
udata-venv:
	$(PYTHON) tests/udata_server/venv.py

# The full suite, end-to-end tests against the real udata server included. In Python's
# development mode (asyncio debug, ResourceWarning shown; pyproject.toml makes it an error).
test: install udata-venv
	$(PY) -X dev -m pytest

# Without the real udata server (no udata venv needed).
test-fast: install
	$(PY) -X dev -m pytest -m "not udata_server"

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
	$(PY) -m ruff check src codegen tests benchmarks docs
	$(PY) -m ruff format --check src codegen tests benchmarks docs

typecheck: install
	$(PY) -m mypy

check: lint typecheck codegen-check

bench: install
	$(PY) benchmarks/run.py --out benchmarks/RESULTS.md

# A few repeats only: keeps the benchmarks working (no timing is asserted).
bench-quick: install
	$(PY) benchmarks/run.py --quick --out .cache/bench-quick.md

# The package as users get it: sdist and wheel built (python -m build) and checked (twine), then
# the wheel installed alone in a fresh venv, where the command and the import must work.
DIST        := .cache/dist
WHEEL_VENV  := .cache/wheel-venv

package: install
	rm -rf $(DIST) $(WHEEL_VENV)
	$(PY) -m build --outdir $(DIST) .
	$(PY) -m twine check --strict $(DIST)/*
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/python -m pip install --quiet $(DIST)/*.whl
	cd $(WHEEL_VENV) && bin/aioudata --help >/dev/null && bin/aioudata get --help >/dev/null
	cd $(WHEEL_VENV) && bin/python -c 'import aioudata, sys; \
		assert sys.prefix in aioudata.__file__, aioudata.__file__; \
		print("wheel ok: aioudata", aioudata.__version__, "from", aioudata.__file__)'

# The reference site into .cache/site (open .cache/site/index.html): mkdocs.yml, with the guide
# (README.md), docs/schema.md and pages docs/hooks.py writes from the code. Offline, warnings as
# errors. NO_MKDOCS_2_WARNING: the theme's end-of-life banner, printed on every build, is silenced.
SITE := .cache/site

docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(SITE)

# The main job: mirror data.gouv.fr (or ARGS="--base-url URL ...") into udata-mirror.sqlite.
mirror: install
	$(VENV)/bin/aioudata mirror $(ARGS)

# Offline demo of `aioudata mirror`: boots the local real udata server (the test harness, seeded),
# mirrors it into .cache/demo.sqlite, mirrors again (incremental), queries the result, stops it.
DEMO_DB      := .cache/demo.sqlite
DEMO_SERVER  := .cache/demo-server
DEMO_MIRROR  := $(VENV)/bin/aioudata mirror --db $(DEMO_DB) --rate 0 \
	--entities datasets,organizations,reuses,harvest_sources,topics,posts,discussions
DEMO_QUERIES := import sqlite3; db = sqlite3.connect("$(DEMO_DB)"); \
	show = lambda title, sql: print(title, *(f"  {row}" for row in db.execute(sql)), sep="\n"); \
	show("rows per table:", "SELECT (SELECT COUNT(*) FROM datasets), (SELECT COUNT(*) FROM resources), (SELECT COUNT(*) FROM organizations), (SELECT COUNT(*) FROM reuses)"); \
	show("datasets per organization:", "SELECT o.name, COUNT(*) FROM datasets d JOIN organizations o ON o.id = d.organization_id GROUP BY o.id ORDER BY 2 DESC"); \
	show("resource formats:", "SELECT format, COUNT(*) FROM resources GROUP BY format ORDER BY 2 DESC LIMIT 5"); \
	show("last modified datasets:", "SELECT last_modified, title FROM datasets ORDER BY last_modified DESC LIMIT 3")

demo: install udata-venv
	@mkdir -p .cache && rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm $(DEMO_SERVER).out
	@set -e; \
	udata_python=$$($(PYTHON) tests/udata_server/venv.py 2>/dev/null | tail -n 1); \
	$$udata_python tests/udata_server/serve.py --datasets 300 --exit-with-parent \
		--manifest $(DEMO_SERVER).manifest.json >$(DEMO_SERVER).out 2>$(DEMO_SERVER).log & \
	server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null || true' EXIT HUP INT PIPE TERM; \
	for second in $$(seq 1 180); do \
		grep -q UDATA_SERVER_READY $(DEMO_SERVER).out && break; \
		kill -0 $$server 2>/dev/null || { tail -n 20 $(DEMO_SERVER).log; exit 1; }; \
		sleep 1; \
	done; \
	base_url=$$(awk '/^UDATA_SERVER_READY/ {print $$2}' $(DEMO_SERVER).out); \
	test -n "$$base_url" || { echo "udata server not ready, see $(DEMO_SERVER).log"; exit 1; }; \
	echo "== local udata server at $$base_url (pid $$server)"; \
	echo "== first run: a full mirror"; \
	$(DEMO_MIRROR) --base-url $$base_url; \
	echo "== second run: incremental (only what changed since the first)"; \
	$(DEMO_MIRROR) --base-url $$base_url; \
	echo "== queries on $(DEMO_DB)"; \
	$(PY) -c '$(DEMO_QUERIES)'

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
