# Set-up commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv when missing. torch is pinned through constraints.txt;
# override with `make test CONSTRAINTS=my-constraints.txt`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS ?= constraints.txt

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# one stamp per set of extras, redone when pyproject.toml or the constraints change
$(VENV)/.installed-%: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/torchbend demo

test: $(VENV)/.installed-dev $(VENV)/.browser
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest

# Chromium for the studio's browser tests (Playwright cannot download its own browser here)
$(VENV)/.browser: $(BIN)/python
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "make test: installing Debian's chromium (apt-get, with its dependencies) for the studio's browser tests"; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "make test: could not install chromium: the studio's browser tests will be skipped"; \
	else echo "make test: no /usr/bin/chromium (and no root apt-get to install it): the studio's browser tests will be skipped"; fi
	touch $@

bench: $(VENV)/.installed-demo
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/activation_io.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache
