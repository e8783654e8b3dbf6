# Week 7: Advanced Transformers. `make book` builds the site, `make test` runs every test.
# Both create the environment (.venv) when it is missing and reuse it when present.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1
# Never reach for a model hub at run time: the course ships its models.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: book test env vendor system exercises clean-book clean help
.DEFAULT_GOAL := help

help:
	@echo "make book       build the site into _build/html (executes every chapter; cached between builds)"
	@echo "make test       run every test (sets up the environment, assets and chromium first)"
	@echo "make env        create or update .venv only"
	@echo "make exercises  regenerate exercises/ (student versions) from solutions/ with nbgrader"
	@echo "make clean-book remove _build (the next build executes every chapter again)"

env:
	@PYTHON=$(PYTHON) VENV=$(VENV) bash tools/setup_env.sh

vendor: env
	@$(BIN)/python tools/vendor_assets.py

system:
	@bash tools/ensure_system.sh

book: env vendor
	@$(BIN)/python tools/build_book.py

test: env vendor system
	@$(BIN)/python -m pytest

exercises: env
	@$(BIN)/python -m autograder generate --all

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf site_assets/vendor .pytest_cache test-artifacts
