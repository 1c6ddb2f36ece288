# sipsim — two commands on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/seed-000-self-signed.toml

.PHONY: demo test install certs bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-extras: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

## make demo: install, make the seed lab's certificates, run the seed-000 lab and print its report
demo: install
	$(BIN)/sipsim certs init $(SCENARIO)
	$(BIN)/sipsim run $(SCENARIO) --report out/seed-000.json

## make test: install the test extras and run the whole suite
test: $(VENV)/.test-extras
	$(BIN)/python -m pytest

bench: install
	@for b in bench/*.py; do [ -f "$$b" ] && $(BIN)/python $$b || true; done

clean:
	rm -rf out .pytest_cache certs/seed-* certs/one-in-* certs/tls* certs/mismatch-*
