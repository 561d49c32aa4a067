# The two commands of the README (run, test) set everything up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean mutation docs metrics-doc config-doc fuzz

# Set-up shows one line per step and pip's own progress (the first install takes a minute or
# two); `make run` then prints the dashboard URL as its first line.
$(STAMP): pyproject.toml
	@echo "venueguard set-up [1/3]: virtual environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "venueguard set-up [2/3]: upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "venueguard set-up [3/3]: installing venueguard and its extras (pip's progress below)"
	@$(PY) -m pip install --progress-bar on -e '.[dev,report,docs,bench,nautilus,redis]'
	@touch $(STAMP)
	@echo "venueguard set-up: done"

run: $(STAMP)
	@$(VENV)/bin/venueguard monitor

# Most system tests wait on sockets and timers rather than compute, so the suite runs in
# TEST_WORKERS processes (pytest-xdist); TEST_WORKERS=0 runs it in this process. Tests marked
# `slow` are collected first (tests/conftest.py) and handed out one at a time
# (--maxschedchunk 1: by default each worker is first given a contiguous quarter of its share,
# which put every slow test on one worker), so the workers start the long ones together and the
# short ones fill the gaps. Five workers on two cores: 4 min 43 s, against 5 min 31 s with four
# and 7 min 7 s with three (the same 3,018 tests, one after the other on a quiet 2-core machine).
# promtool (Debian's prometheus package) checks deploy/; without it those tests skip saying why.
TEST_WORKERS ?= 5
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --maxschedchunk 1 --durations=15
	$(MAKE) docs

# The documentation site; --strict turns every warning (a broken link, a bad docstring) into an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir $(VENV)/site

# The two generated reference pages (tests fail while they are out of date).
metrics-doc: $(STAMP)
	$(PY) -m venueguard.telemetry.metrics_doc > docs/metrics.md

config-doc: $(STAMP)
	$(PY) -m venueguard.config_doc > docs/configuration.md

# The fuzz suite of `make test`, run long (FUZZ_EXAMPLES per property), then atheris over the
# frame path when it installs (FUZZ_RUNS executions); without atheris it says so and goes on.
FUZZ_EXAMPLES ?= 20000
FUZZ_RUNS ?= 200000
fuzz: $(STAMP)
	VENUEGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/fuzz
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet -e '.[fuzz]' \
		|| echo "atheris did not install (no wheel for this Python/platform): skipping it"
	@if $(PY) -c "import atheris" 2>/dev/null; then \
		$(PY) tests/fuzz/atheris_frames.py -atheris_runs=$(FUZZ_RUNS); fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench examples

typecheck: $(STAMP)
	$(VENV)/bin/mypy

check: lint typecheck test

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Mutation testing of the sans-I/O core against tests/core (README, "Mutation testing"). Not part
# of `make test`: it takes about half an hour on two cores. One module at a time, each mutant
# re-tested (a name glob makes mutmut rerun it); MODULES="backoff budget" limits the run.
MUTATION_CHILDREN ?= 2
MODULES ?= $(sort $(basename $(notdir $(wildcard src/venueguard/core/*.py))))
mutation: $(STAMP)
	$(PY) -m pip install --quiet -e '.[mutation]'
	@mkdir -p mutants; for m in $(MODULES); do \
	  if grep -q "def " src/venueguard/core/$$m.py; then \
	    echo "== core/$$m.py"; \
	    $(VENV)/bin/mutmut run "venueguard.core.$$m.*" --max-children $(MUTATION_CHILDREN) \
	      > mutants/run-$$m.log 2>&1 || { tail -20 mutants/run-$$m.log; exit 1; }; \
	  fi; \
	done
	$(PY) scripts/mutation_report.py --min 90
