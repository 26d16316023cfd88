# kb: two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
KB := $(VENV)/bin/kb
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export NO_MKDOCS_2_WARNING ?= 1

.PHONY: setup demo test lint lock dist-check schemas bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check pipeline tests bench
	$(VENV)/bin/ruff format --check pipeline tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# Regenerate requirements/lock.txt (what `make setup` installs) after changing dependencies.
lock: setup
	@bash scripts/lock.sh

# Build the sdist and wheel, install the wheel into a clean venv, run kb there (package data included).
dist-check: setup
	@bash scripts/check_dist.sh

schemas: setup
	$(KB) schemas

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build dist .kb .pytest_cache
