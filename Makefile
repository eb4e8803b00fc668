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

.PHONY: install demo test test-fast lint bench clean promtool

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

test: lint promtool
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

test-fast: install
	$(PY) -m pytest -m "not integration"

lint: install
	$(VENV)/bin/ruff check llmops tests bench
	$(VENV)/bin/ruff format --check llmops tests bench
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .llmops .pytest_cache .mypy_cache
