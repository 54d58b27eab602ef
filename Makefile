# Two commands on a fresh Debian machine with only Python: `make serve`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test lint clean bench fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

$(TEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP) $(TEST_STAMP)

serve: $(STAMP)
	$(VENV)/bin/pillarbox serve

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

test: $(TEST_STAMP) lint
	scripts/install-test-tools
	$(VENV)/bin/pytest -q -p no:cacheprovider -n auto --dist loadgroup

# One long coverage-guided fuzz run (tests/fuzz/README.md), one process on one core:
# make fuzz TARGET=imap RUNS=1000000. Crashing inputs land in var/fuzz/.
fuzz: $(TEST_STAMP)
	@test -n "$(TARGET)" || { echo "usage: make fuzz TARGET=name [RUNS=n]" >&2; exit 2; }
	$(PY) -m tests.fuzz.run $(TARGET) -runs=$(or $(RUNS),1000000)

# Pillarbox against Postfix + Dovecot on this machine (Debian packages installed when
# missing; needs root). QUICK=1: scaled-down sizes, under 3 minutes. Table on stdout,
# JSON in var/bench.json (var/bench-quick.json).
bench: $(STAMP)
	mkdir -p var
	$(PY) -m bench --reference $(if $(QUICK),--quick) --json var/bench$(if $(QUICK),-quick).json

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
