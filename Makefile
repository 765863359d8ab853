# Two commands do all the set-up on a fresh machine:
#   make run   - Steward on its embedded broker, with demo traffic
#   make test  - everything the tests need, then the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.steward-installed

.PHONY: run test lint bench system-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Optional system tools the tests use when present (kcat: an independent Kafka client).
system-deps:
	@command -v kcat >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq kcat >/dev/null) \
	      || echo "note: could not install kcat; tests fall back to kafka-python's consumer"; \
	  else echo "note: kcat not installed; tests fall back to kafka-python's consumer"; fi; }

run: $(STAMP)
	$(BIN)/steward up --demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: $(STAMP)
	@ls bench/*.py >/dev/null 2>&1 && for f in bench/*.py; do $(BIN)/python $$f || exit 1; done || echo "no benchmarks yet"

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
