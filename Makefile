# Two commands do all the set-up on a fresh machine:
#   make run   - Steward on its embedded broker, with demo traffic
#   make test  - everything the tests need, then the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.steward-installed

.PHONY: run test lint bench soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/steward up --demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP)
	$(BIN)/ruff check .
	@# the dashboard tests run a real Prometheus: install it where we can (root, apt-get)
	@command -v prometheus >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; } >/dev/null 2>&1; } \
	  || echo "prometheus is not installed: the real-Prometheus dashboard test will be skipped"
	@# the chart page's test drives Debian's headless Chromium: the same
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; } \
	  || echo "chromium is not installed: the chart page's browser test will be skipped"
	$(BIN)/pytest -q

# every bench/ script, one after another, into one table: bench/REPORT.md (~20 min)
bench: $(STAMP)
	$(BIN)/python bench/report.py

# a soak: the whole stack under steady load for 10 minutes (longer: SOAK_SECONDS=3600)
SOAK_SECONDS ?= 600
SOAK_RATE    ?= 5000
soak: $(STAMP)
	$(BIN)/steward bench load --rate $(SOAK_RATE) --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
