# Everything a fresh clone needs: `make demo` and `make test` set themselves up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser demo test test-unit test-integration lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

# headless Chromium for the brief's browser test and `pantau report --pdf`, from Debian's packages
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium chromium-driver)

demo: $(STAMP)
	$(BIN)/pantau demo

test: $(STAMP) browser
	$(BIN)/ruff check pipeline schemas tests
	$(BIN)/ruff format --check pipeline schemas tests
	$(BIN)/mypy pipeline schemas
	$(BIN)/python -m pytest -q --durations=15

test-unit: $(STAMP) browser
	$(BIN)/python -m pytest -q -m "not integration"

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration --durations=15

lint: $(STAMP)
	$(BIN)/ruff check pipeline schemas tests
	$(BIN)/ruff format --check pipeline schemas tests
	$(BIN)/mypy pipeline schemas

format: $(STAMP)
	$(BIN)/ruff format pipeline schemas tests
	$(BIN)/ruff check --fix pipeline schemas tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
