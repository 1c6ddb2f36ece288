# sipsim — two commands on a fresh clone: `make demo` and `make test`.
# The interpreter that makes .venv: the first of PY_CANDIDATES that is Python 3.11 or newer and has
# venv (else python3). A distribution's CPython is built with PGO and LTO; a version manager's
# default build (pyenv's, without --enable-optimizations) gives ~20 % lower call rates
# (docs/performance.md, round 8). `make which-python` shows the choice; `make PY=...` overrides it.
PY_CANDIDATES ?= /usr/bin/python3 python3
ifeq ($(origin PY),undefined)
PY := $(shell for p in $(PY_CANDIDATES); do \
	  $$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
	  && { echo $$p; break; }; done)
endif
ifeq ($(strip $(PY)),)
PY := python3
endif
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/seed-000-self-signed.toml

.PHONY: demo test install certs bench clean which-python

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || { echo "making $(VENV) with $(PY) ($$($(PY) -V 2>&1))"; $(PY) -m venv $(VENV); }
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

## make which-python: the interpreter that makes .venv (PY, or the first fit of PY_CANDIDATES)
which-python:
	@echo $(PY)

bench: install
	@$(BIN)/python bench/_common.py
	@for b in bench/[!_]*.py; do [ -f "$$b" ] && $(BIN)/python $$b || true; done

clean:
	rm -rf out .pytest_cache certs/seed-* certs/one-in-* certs/tls* certs/mismatch-*
