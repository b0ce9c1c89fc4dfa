# The two commands a fresh machine needs: `make run` (set up + main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
export RAY_USAGE_STATS_ENABLED := 0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[cpu,dev]'
	touch $@

# Headless Chromium (Debian's package) checks the drift dashboard; tests skip only where it is absent.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

.PHONY: setup run test lint bench proto bento chromium
setup: $(VENV)/.installed
chromium: $(CHROMIUM)

run: setup
	$(VENV)/bin/apparel run

test: setup chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

bench: setup
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

# gRPC stubs from serving/apparel.proto (tests/serving/test_proto.py fails when they are stale).
proto: setup
	$(VENV)/bin/python -m apparel.serving.proto

# A Bento of the service: the project wheel plus serving/bentofile.yaml (`bentoml containerize apparel:latest`).
bento: setup
	rm -rf serving/wheels && $(VENV)/bin/pip wheel -q --no-deps --no-build-isolation -w serving/wheels . && rm -rf build
	cd serving && ../$(VENV)/bin/bentoml build
