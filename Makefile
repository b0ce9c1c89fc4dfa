# The two commands a fresh machine needs: `make run` (set up + main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
export RAY_USAGE_STATS_ENABLED := 0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[cpu,dev]'
	touch $@

.PHONY: setup run test lint bench
setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/apparel run

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

bench: setup
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done
