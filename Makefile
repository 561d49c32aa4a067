# The two commands of the README (run, test) set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean docs metrics-doc config-doc

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,report,docs,bench,nautilus,redis]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/venueguard monitor

# promtool (Debian's prometheus package) checks deploy/; without it those tests skip saying why.
test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) docs

# The documentation site; --strict turns every warning (a broken link, a bad docstring) into an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $(VENV)/site

# The two generated reference pages (tests fail while they are out of date).
metrics-doc: $(STAMP)
	$(PY) -m venueguard.telemetry.metrics_doc > docs/metrics.md

config-doc: $(STAMP)
	$(PY) -m venueguard.config_doc > docs/configuration.md

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
