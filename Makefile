# Two commands do everything on a fresh machine:
#   make demo   set up .venv (first time only) and run the whole WIML chain on the synthetic demo set
#   make test   set up .venv (first time only) and run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo

.PHONY: setup demo test test-fast lint format gui clean-venv

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) -m wiml.cli.main pipeline --config configs/demo.yaml --out $(RUN)

test: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -rs tests

test-fast: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -rs -m "not slow" tests

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

gui: setup
	$(PY) WIA/main.py

clean-venv:
	rm -rf $(VENV)
