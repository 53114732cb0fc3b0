# berth: the two commands in the README's first block are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAGE ?= dev

.PHONY: venv demo local test test-fast lint provision bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) -m tools.demo

local: venv
	$(PY) -m tools.local_mode

test: venv lint
	$(PY) -m pytest -q --durations=15

# The inner loop: the pure core, the services on in-memory fakes, and the fakes' side of their contracts; nothing that
# needs the embedded AWS (the contracts' moto side is marked slow), an engine or a package build.
test-fast: venv
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow and not engine" tests/unit tests/service tests/contracts

lint: venv
	$(PY) -m ruff check .
	$(PY) -m mypy

provision: venv
	$(PY) -m tools.provision --stage $(STAGE)

bench: venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
